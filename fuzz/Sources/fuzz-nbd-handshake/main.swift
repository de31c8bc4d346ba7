import FuzzNBD

/// libFuzzer entry: the NBD server from the client's first byte (handshake and beyond).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    NBDFuzz.runHandshake(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
