import FuzzSupport

/// libFuzzer entry: the QEMU trace reader for format `qemu-simpletrace`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    TraceFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)), format: "qemu-simpletrace")
    return 0
}
