import FuzzSupport

/// libFuzzer entry: see QMPMonitorFuzz.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    QMPMonitorFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
