import FuzzSupport

/// libFuzzer entry: kvm_exit/kvm_entry traces in every exits format.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    ExitsFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
