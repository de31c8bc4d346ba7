import FuzzSupport

/// libFuzzer entry: the guest kernel log reader and disk analysis.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    GuestLogFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
