import KVMScopeTracefs
/// Gives addresses their symbols (`0xffffffff82046f4c` → `__udp4_lib_rcv+0x4bc/0xd00`) with a
/// kernel symbol table, once per distinct address. Locations that already carry a symbol
/// (`%pS` text) are kept as the kernel printed them; hashed pointers cannot be resolved.
public final class LocationSymbolizer {
    public let table: KernelSymbolTable?
    private var cache: [UInt64: DropLocation] = [:]
    /// Distinct addresses no symbol covered.
    public private(set) var unresolved = Set<UInt64>()

    public init(table: KernelSymbolTable?) { self.table = table }

    public func resolve(_ location: DropLocation) -> DropLocation {
        guard location.symbol == nil, !location.hashed, let address = location.address, address != 0,
              let table, !table.addressesHidden else { return location }
        if let hit = cache[address] { return hit }
        var out = location
        if let s = table.lookup(address) {
            out.symbol = s.name
            out.offset = s.offset
            out.size = s.size
            out.module = s.module
        } else {
            unresolved.insert(address)
        }
        cache[address] = out
        return out
    }
}
