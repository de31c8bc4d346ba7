import FuzzNBD

/// libFuzzer entry: NBD transmission-phase requests after a fixed handshake.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    NBDFuzz.runRequests(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
