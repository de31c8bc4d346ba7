import FuzzSupport

/// libFuzzer entry: see HostLogFuzz.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    HostLogFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
