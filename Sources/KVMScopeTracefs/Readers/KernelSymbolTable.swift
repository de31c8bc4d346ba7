import Foundation

/// A symbol an address resolved to: `name+offset/size [module]`, as the kernel's `%pS` prints it.
public struct KernelSymbol: Equatable, Sendable {
    public let name: String
    public let address: UInt64
    public let offset: UInt64
    /// Distance to the next symbol (what `%pS` prints after the slash); nil for the last one.
    public let size: UInt64?
    public let module: String?

    public var text: String {
        var s = name + "+0x" + String(offset, radix: 16)
        if let size { s += "/0x" + String(size, radix: 16) }
        if let module { s += " [\(module)]" }
        return s
    }
}

/// `/proc/kallsyms` (or a copy of it from the host a capture came from), read once, sorted
/// by address once, and searched by bisection. Names live in one byte arena, so the 100 000+
/// symbols of a distribution kernel cost a few MB, not an object each.
///
/// When `kernel.kptr_restrict` hides addresses (non-root readers, or kptr_restrict=2) every
/// address reads as zero: `addressesHidden` says so, and nothing is symbolized — reports then
/// fall back to the `%pS` text the tracepoint printed, when it printed one.
public final class KernelSymbolTable: @unchecked Sendable {
    private let addresses: [UInt64]
    private let nameStart: [UInt32]
    private let nameLength: [UInt16]
    private let moduleIndex: [UInt16]
    private let arena: [UInt8]
    private let modules: [String]
    /// Every address in the file was zero (kptr_restrict).
    public let addressesHidden: Bool
    /// Lines that were not `ADDRESS TYPE NAME [MODULE]`.
    public let skippedLines: Int
    public let name: String

    /// Offsets larger than this are not attributed to the symbol before them: such an
    /// address lies in a gap (between the kernel image and modules, say).
    static let maxPlausibleOffset: UInt64 = 1 << 20

    public var count: Int { addresses.count }

    public static func load(path: String = "/proc/kallsyms") throws -> KernelSymbolTable {
        try KernelSymbolTable(parsing: FileByteSource(path: path))
    }

    public init(parsing stream: ByteStream) throws {
        var addrs: [UInt64] = []
        var starts: [UInt32] = []
        var lengths: [UInt16] = []
        var mods: [UInt16] = []
        var arena: [UInt8] = []
        var moduleNames: [String] = [""]
        var moduleIDs: [String: UInt16] = [:]
        var skipped = 0
        var sawLine = false
        var anyNonZero = false
        var splitter = LineSplitter()
        arena.reserveCapacity(1 << 20)
        try splitter.forEachLine(in: stream) { line, _ in
            guard !line.isEmpty else { return }
            sawLine = true
            // `ffffffff82046a90 T __udp4_lib_rcv` or `ffffffffc0a0c000 t nft_do_chain\t[nf_tables]`
            guard let (addr, afterAddr) = line.hex(at: 0), afterAddr < line.count, line[afterAddr] == 0x20,
                  afterAddr + 3 < line.count, line[afterAddr + 2] == 0x20 else { skipped += 1; return }
            let type = line[afterAddr + 1]
            let nameRange = line.token(at: afterAddr + 3, stop: 0x09)
            guard !nameRange.isEmpty, nameRange.count < Int(UInt16.max) else { skipped += 1; return }
            if addr != 0 { anyNonZero = true }
            // Absolute and undefined symbols are not code; address 0 cannot be resolved.
            if type == 0x41 || type == 0x61 || type == 0x55 || addr == 0 { return }
            var module: UInt16 = 0
            if let open = line.find(byte: 0x5B, from: nameRange.upperBound),
               let close = line.find(byte: 0x5D, from: open + 1) {
                let m = line.string(open + 1..<close)
                if let id = moduleIDs[m] { module = id } else {
                    module = UInt16(truncatingIfNeeded: moduleNames.count)
                    moduleNames.append(m)
                    moduleIDs[m] = module
                }
            }
            addrs.append(addr)
            starts.append(UInt32(arena.count))
            lengths.append(UInt16(nameRange.count))
            mods.append(module)
            arena.append(contentsOf: UnsafeBufferPointer(rebasing: line.bytes[nameRange]))
        }
        guard sawLine else { throw TracefsError.emptySymbolTable(source: stream.name) }
        // Sort by address, keeping file order among aliases: the kernel reports the first
        // symbol of an address (kallsyms get_symbol_pos walks back to it).
        let order = addrs.indices.sorted { addrs[$0] != addrs[$1] ? addrs[$0] < addrs[$1] : $0 < $1 }
        self.addresses = order.map { addrs[$0] }
        self.nameStart = order.map { starts[$0] }
        self.nameLength = order.map { lengths[$0] }
        self.moduleIndex = order.map { mods[$0] }
        self.arena = arena
        self.modules = moduleNames
        self.addressesHidden = !anyNonZero
        self.skippedLines = skipped
        self.name = stream.name
    }

    private func symbolName(_ i: Int) -> String {
        arena.withUnsafeBufferPointer { a in
            String(decoding: UnsafeBufferPointer(rebasing: a[Int(nameStart[i])..<Int(nameStart[i]) + Int(nameLength[i])]), as: UTF8.self)
        }
    }

    /// The symbol containing `address`, or nil (hidden table, before the first symbol, or in a gap).
    public func lookup(_ address: UInt64) -> KernelSymbol? {
        guard !addressesHidden, !addresses.isEmpty, address >= addresses[0] else { return nil }
        // Last index with addresses[i] <= address.
        var lo = 0, hi = addresses.count
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if addresses[mid] <= address { lo = mid } else { hi = mid }
        }
        // First alias of that address.
        var i = lo
        while i > 0, addresses[i - 1] == addresses[lo] { i -= 1 }
        var next = lo + 1
        while next < addresses.count, addresses[next] == addresses[lo] { next += 1 }
        let offset = address - addresses[i]
        let size = next < addresses.count ? addresses[next] - addresses[i] : nil
        if offset > Self.maxPlausibleOffset { return nil }
        let m = Int(moduleIndex[i])
        return KernelSymbol(name: symbolName(i), address: addresses[i], offset: offset, size: size,
                            module: m == 0 ? nil : modules[m])
    }

    /// Address ranges of every symbol called `name` (static functions can repeat), for
    /// turning `--location NAME` into a kernel-side filter.
    public func ranges(named name: String) -> [Range<UInt64>] {
        let wanted = Array(name.utf8)
        var result: [Range<UInt64>] = []
        arena.withUnsafeBufferPointer { a in
            for i in addresses.indices where Int(nameLength[i]) == wanted.count {
                let s = Int(nameStart[i])
                if memcmp(a.baseAddress! + s, wanted, wanted.count) == 0 {
                    var next = i + 1
                    while next < addresses.count, addresses[next] == addresses[i] { next += 1 }
                    let end = next < addresses.count ? addresses[next] : addresses[i] + 1
                    result.append(addresses[i]..<end)
                }
            }
        }
        return result
    }
}
