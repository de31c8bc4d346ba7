import FuzzSupport

/// libFuzzer entry: NET_DM generic-netlink datagrams.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    NetDropMonitorFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
