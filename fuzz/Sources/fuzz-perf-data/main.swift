import FuzzSupport

/// libFuzzer entry: perf.data files (first byte: read chunk size), through the perf.data reader.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    PerfDataFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
