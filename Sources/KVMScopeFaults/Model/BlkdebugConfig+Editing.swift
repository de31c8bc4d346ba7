/// Rule sets edited while a server runs (`nbd serve --control`): another file's rules added, the
/// rules one file line defines removed, those of other files kept, and a one-line description
/// of each rule in force.
extension BlkdebugConfig {
    /// These rules followed by `other`'s, in that order (blkdebug checks rules in file order, so
    /// added rules come last).
    public func adding(_ other: BlkdebugConfig) -> BlkdebugConfig {
        var c = self
        c.injectErrors += other.injectErrors
        c.setStates += other.setStates
        c.kvmscope.errorRates += other.kvmscope.errorRates
        c.kvmscope.delays += other.kvmscope.delays
        c.kvmscope.stalls += other.kvmscope.stalls
        c.kvmscope.badBlocks += other.kvmscope.badBlocks
        c.kvmscope.bitFlips += other.kvmscope.bitFlips
        c.kvmscope.flakeys += other.kvmscope.flakeys
        c.kvmscope.rates += other.kvmscope.rates
        return c
    }

    /// Without the rules that start at `location`; also how many went.
    public func removing(at location: RuleLocation) -> (config: BlkdebugConfig, removed: Int) {
        let c = keeping { $0 != location }
        return (c, ruleCount - c.ruleCount)
    }

    /// Only the rules whose section starts where `keep` says (`reload` keeps those not from
    /// the file it re-reads).
    public func keeping(_ keep: (RuleLocation) -> Bool) -> BlkdebugConfig {
        var c = self
        c.injectErrors.removeAll { !keep($0.location) }
        c.setStates.removeAll { !keep($0.location) }
        c.kvmscope.errorRates.removeAll { !keep($0.location) }
        c.kvmscope.delays.removeAll { !keep($0.location) }
        c.kvmscope.stalls.removeAll { !keep($0.location) }
        c.kvmscope.badBlocks.removeAll { !keep($0.location) }
        c.kvmscope.bitFlips.removeAll { !keep($0.location) }
        c.kvmscope.flakeys.removeAll { !keep($0.location) }
        c.kvmscope.rates.removeAll { !keep($0.location) }
        return c
    }

    public var ruleCount: Int { injectErrors.count + setStates.count + kvmscope.count }

    /// One rule as `nbd control list` shows it: where its section starts, the section (with its
    /// `[name "id"]` id), and for [inject-error] what it matches and does.
    public struct RuleEntry: Sendable, Equatable {
        public var location: RuleLocation
        public var id: String?
        public var text: String
    }

    /// Every rule, in the order the engine applies them ([inject-error], [set-state], then
    /// kvmscope's sections in file order): `list` numbers them 1, 2, ... in this order.
    public func ruleEntries() -> [RuleEntry] {
        func section(_ name: String, _ id: String?) -> String { id.map { "[\(name) \"\($0)\"]" } ?? "[\(name)]" }
        var entries: [RuleEntry] = []
        for r in injectErrors {
            var parts = ["event=\(r.event.rawValue)"]
            if r.state != 0 { parts.append("state=\(r.state)") }
            if r.iotypeMask != BlkdebugIOType.defaultMask {
                parts.append("iotype=" + BlkdebugIOType.allCases.filter { r.iotypeMask & $0.bit != 0 }.map(\.rawValue).joined(separator: ","))
            }
            if let s = r.sector { parts.append("sector=\(s)") }
            parts.append("errno=\(r.errno)")
            if r.once { parts.append("once=on") }
            entries.append(RuleEntry(location: r.location, id: r.id,
                                     text: "\(r.location) \(section("inject-error", r.id)) " + parts.joined(separator: " ")))
        }
        for r in setStates {
            entries.append(RuleEntry(location: r.location, id: r.id,
                                     text: "\(r.location) \(section("set-state", r.id)) event=\(r.event.rawValue) state=\(r.state) new_state=\(r.newState)"))
        }
        for e in kvmscope.entries {
            entries.append(RuleEntry(location: e.location, id: e.id, text: "\(e.location) \(section(e.section, e.id))"))
        }
        return entries
    }

    /// One line per rule (`ruleEntries`' texts).
    public func ruleLines() -> [String] { ruleEntries().map(\.text) }
}
