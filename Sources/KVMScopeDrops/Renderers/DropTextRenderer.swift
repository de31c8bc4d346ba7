import Foundation

/// What a whole `kvmscope drops` run saw, for the final summary.
public struct DropRunSummary: Sendable {
    /// `tracefs`, `tracefs-text`, `netdm` or `file`.
    public var source: String
    /// One line: `tracefs instance kvmscope-123 (binary per-CPU buffers)`, `perf-script-drops from x.txt`.
    public var sourceDetail: String
    public var seconds: Double?
    public var tally: DropTally
    public var filteredOut: Int
    /// Drops `--netns` could not attribute to a namespace (idle CPU, exited task).
    public var unattributed: Int
    public var notes: [String]
    public var input: DropTraceStats?

    public init(source: String, sourceDetail: String, seconds: Double?, tally: DropTally, filteredOut: Int = 0,
                unattributed: Int = 0, notes: [String] = [], input: DropTraceStats? = nil) {
        self.source = source
        self.sourceDetail = sourceDetail
        self.seconds = seconds
        self.tally = tally
        self.filteredOut = filteredOut
        self.unattributed = unattributed
        self.notes = notes
        self.input = input
    }
}

/// dropwatch-style text: one block per interval, lines sorted by count
/// (`3 drops at __udp4_lib_rcv+0x4bc (0xffffffff82046f4c) [software] reason NO_SOCKET`),
/// a per-reason line and a total; a final summary explains each reason in a sentence.
public struct DropTextRenderer {
    public var grouping: DropGrouping
    public var style: TerminalStyle
    /// Lines per block before the rest is summed into one "... more" line.
    public var top: Int

    public init(grouping: DropGrouping = .location, style: TerminalStyle = .plain, top: Int = 20) {
        self.grouping = grouping
        self.style = style
        self.top = max(1, top)
    }

    static func drops(_ n: Int) -> String { n == 1 ? "1 drop" : "\(n) drops" }

    /// The dropwatch line of one location/reason/origin.
    public func locationLine(_ k: DropKey, count: Int) -> String {
        var s = style.bold(Self.drops(count))
        if k.origin == .hardware {
            if let trap = k.hardwareTrap { s += " at \(trap)" } else if k.location.isKnown { s += " at \(k.location.displayText)" }
            s += " [hardware]"
            if k.hardwareTrap == nil && !k.location.isKnown { s += " (a device's receive-drop counter rose)" }
        } else {
            s += " at \(k.location.displayText) [software]"
        }
        if let r = k.reason { s += " reason " + style.yellow(r.displayName) }
        return s
    }

    func lines(_ t: DropTally) -> [String] {
        var out: [String] = []
        func capped<T>(_ rows: [(label: T, count: Int)], _ line: (T, Int) -> String, what: String) {
            for r in rows.prefix(top) { out.append(line(r.label, r.count)) }
            if rows.count > top {
                let rest = rows.dropFirst(top)
                out.append("... \(rest.count) more \(what) (\(Self.drops(rest.reduce(0) { $0 + $1.count })))")
            }
        }
        switch grouping {
        case .location:
            capped(t.byLocation, { locationLine($0, count: $1) }, what: "locations")
        case .reason:
            capped(t.byReason, { r, n in
                let name = r?.displayName ?? "(no reason: kernel before 5.17)"
                var s = "\(style.bold(Self.drops(n))) reason \(style.yellow(name))"
                if let e = r?.name.flatMap(DropReasonExplanations.explanation(for:)) { s += ": " + e }
                return s
            }, what: "reasons")
        case .protocol:
            capped(t.byProtocol, { p, n in
                "\(style.bold(Self.drops(n))) protocol " + (p.map { "\(EtherType.name($0)) (\(EtherType.hex($0)))" } ?? "unknown")
            }, what: "protocols")
        case .comm:
            capped(t.byComm, { c, n in "\(style.bold(Self.drops(n))) in task \(c ?? "(unknown)")" }, what: "tasks")
        }
        return out
    }

    func reasonsLine(_ t: DropTally) -> String? {
        let r = t.byReason
        guard !(r.count == 1 && r[0].label == nil) else { return nil }
        return "by reason: " + r.map { "\($0.label?.displayName ?? "(no reason)") \($0.count)" }.joined(separator: ", ")
    }

    func lostLine(_ t: DropTally) -> String? {
        guard t.lost > 0 || t.lostUnknown else { return nil }
        let n = t.lost > 0 ? "\(t.lost) events" : "events (count not reported)"
        return style.red("LOST \(n) before kvmscope read them: the counts are too low")
    }

    /// One interval's block. `label` is the time it covers.
    public func interval(_ t: DropTally, label: String) -> String {
        var out = ["--- \(label) ---"]
        out += lines(t)
        if t.total > 0, grouping != .reason, let r = reasonsLine(t) { out.append(r) }
        if let l = lostLine(t) { out.append(l) }
        out.append("total: \(Self.drops(t.total))")
        return out.joined(separator: "\n") + "\n"
    }

    public func summary(_ s: DropRunSummary) -> String {
        let t = s.tally
        var head = "=== \(Self.drops(t.total))"
        if let secs = s.seconds, secs > 0 {
            head += String(format: " in %.1f s", secs)
            if secs >= 0.1 { head += String(format: " (%.1f/s)", Double(t.total) / secs) }
        }
        head += " — \(s.sourceDetail) ==="
        var out = [style.bold(head)]
        out += lines(t)
        let reasons = t.byReason
        if grouping != .reason, !reasons.isEmpty, !(reasons.count == 1 && reasons[0].label == nil) {
            out.append("by reason:")
            for (r, n) in reasons {
                let name = r?.displayName ?? "(no reason)"
                var line = "  \(n) \(style.yellow(name))"
                if let e = r?.name.flatMap(DropReasonExplanations.explanation(for:)) { line += ": " + e }
                out.append(line)
            }
        }
        let protocols = t.byProtocol
        if grouping != .protocol, !protocols.isEmpty, !(protocols.count == 1 && protocols[0].label == nil) {
            out.append("by protocol: " + protocols.map { p, n in
                (p.map { "\(EtherType.name($0)) (\(EtherType.hex($0)))" } ?? "unknown") + " \(n)"
            }.joined(separator: ", "))
        }
        if let l = lostLine(t) { out.append(l) } else if s.source.hasPrefix("tracefs") || s.source == "netdm" {
            out.append("lost events: 0")
        }
        if s.filteredOut > 0 { out.append("filtered out: \(Self.drops(s.filteredOut))") }
        if s.unattributed > 0 {
            out.append("not attributable to a namespace (idle CPU or exited task): \(Self.drops(s.unattributed))")
        }
        if let i = s.input {
            var skipped: [String] = []
            if i.consumed > 0 { skipped.append("\(i.consumed) consume_skb (normal frees, not drops)") }
            if i.otherEvents > 0 { skipped.append("\(i.otherEvents) other events") }
            if i.skippedLines > 0 { skipped.append("\(i.skippedLines) unreadable lines") }
            if i.overlongLines > 0 { skipped.append("\(i.overlongLines) overlong lines") }
            if !skipped.isEmpty { out.append("not counted: " + skipped.joined(separator: ", ")) }
        }
        for n in s.notes { out.append("note: " + n) }
        return out.joined(separator: "\n") + "\n"
    }
}
