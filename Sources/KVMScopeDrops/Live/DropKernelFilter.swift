import KVMScopeTracefs

/// The tracefs event filter (`events/skb/kfree_skb/filter`) for the drops a user asked for, so
/// the kernel drops the rest before they reach the ring buffer. The expression grammar is
/// the kernel's (kernel/trace/trace_events_filter.c): `field == value`, `&&`, `||`, parentheses.
enum DropKernelFilter {
    /// Reason names are turned into this kernel's own numbers (its format file's
    /// `__print_symbolic` table), protocols into EtherType numbers, and functions into their
    /// address ranges from kallsyms. nil: nothing to filter.
    public static func expression(reasons: [String], protocols: [String], locations: [String],
                                  format: TracepointFormat, symbols: KernelSymbolTable?) throws -> String? {
        var groups: [String] = []
        if !reasons.isEmpty {
            guard format.field("reason") != nil else { throw DropsError.reasonsNeedNewerKernel }
            let table = format.symbolTables["reason"] ?? [:]
            var byName: [String: UInt64] = [:]
            for (v, n) in table { byName[n] = v }
            let codes = try reasons.map { r -> String in
                guard let v = byName[DropReason.canonicalName(r)] else {
                    throw DropsError.unknownReason(name: r, known: table.count)
                }
                return "reason == \(v)"
            }
            groups.append(codes.joined(separator: " || "))
        }
        if !protocols.isEmpty {
            groups.append(protocols.compactMap(EtherType.parse).map { "protocol == \($0)" }.joined(separator: " || "))
        }
        if !locations.isEmpty {
            guard let symbols, !symbols.addressesHidden else { throw DropsError.locationNeedsAddresses }
            var parts: [String] = []
            for pattern in locations.compactMap(DropFilter.LocationPattern.init) {
                switch pattern {
                case let .address(a): parts.append("location == 0x\(String(a, radix: 16))")
                case let .function(name), let .spot(name, _):
                    let ranges = symbols.ranges(named: name)
                    guard !ranges.isEmpty else { throw DropsError.unknownFunction(name: name) }
                    if case let .spot(_, off) = pattern {
                        parts += ranges.map { "location == 0x\(String($0.lowerBound + off, radix: 16))" }
                    } else {
                        parts += ranges.map { "(location >= 0x\(String($0.lowerBound, radix: 16)) && location < 0x\(String($0.upperBound, radix: 16)))" }
                    }
                }
            }
            groups.append(parts.joined(separator: " || "))
        }
        guard !groups.isEmpty else { return nil }
        return groups.count == 1 ? groups[0] : groups.map { "(\($0))" }.joined(separator: " && ")
    }
}
