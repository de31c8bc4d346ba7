import FuzzSupport

/// libFuzzer entry: blkdebug rules files, checker and rule engine.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    BlkdebugFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
