import FuzzSupport

/// libFuzzer entry: kfree_skb text captures (ftrace, trace-cmd, perf script).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    DropsTextFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
