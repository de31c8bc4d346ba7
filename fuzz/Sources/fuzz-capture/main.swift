import FuzzSupport

/// libFuzzer entry: see CaptureFuzz.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    CaptureFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
