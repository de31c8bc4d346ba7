import FuzzSupport

/// libFuzzer entry: the QEMU trace reader for format `qemu-stap-log`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    TraceFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)), format: "qemu-stap-log")
    return 0
}
