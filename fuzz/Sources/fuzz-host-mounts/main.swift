import FuzzSupport

/// libFuzzer entry: see HostMountsFuzz.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    HostMountsFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
