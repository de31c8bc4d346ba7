import FuzzSupport

/// libFuzzer entry: QMP events as raw JSON lines (the reader tells the formats apart per line; seeds and dictionary differ).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    QMPFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
