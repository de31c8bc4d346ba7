import FuzzSupport

/// libFuzzer entry: trace-cmd trace.dat files (v6, v7, compressed) → events, drops and exits.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    TraceDatFuzz.run(FuzzCheck.bytes(data, size))
    return 0
}
