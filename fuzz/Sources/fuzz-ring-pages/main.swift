import FuzzSupport

/// libFuzzer entry: tracefs trace_pipe_raw ring-buffer pages with kfree_skb records.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    RingPageFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
