import FuzzSupport

/// libFuzzer entry: QMP events as virsh qemu-monitor-event records (--pretty, --timestamp).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    QMPFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
