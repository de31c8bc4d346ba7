import FuzzSupport

/// libFuzzer entry: see QEMUCommandLineFuzz.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    QEMUCommandLineFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
