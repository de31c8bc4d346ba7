import Foundation
import KVMScopeQMP
import KVMScopeTrace
import KVMScopeGuestLog

/// `kvmscope explain` as text (verdict first, then the evidence) and as JSON.
public enum ExplainRenderer {
    public static func json(_ report: ExplainReport) throws -> String { try JSONReport.encode(report) }

    public static func text(_ r: ExplainReport, style: TerminalStyle, width: Int = 100) -> String {
        var out = ""
        func line(_ s: String = "") { out += s + "\n" }
        func section(_ title: String) { line(); line(style.bold(title)) }
        func bullet(_ s: String) { for (i, l) in wrap(s, width - 4).enumerated() { line((i == 0 ? "  - " : "    ") + l) } }

        let given = [r.inputs.guest.map { "guest log \($0)" }, r.inputs.trace.map { "QEMU trace \($0)" },
                     r.inputs.qmp.map { "QMP events \($0)" }, r.inputs.hostLog.map { "host kernel log \($0)" },
                     r.inputs.qemuCommandLine.map { "QEMU command line \($0)" }].compactMap { $0 }
        line("kvmscope explain: " + given.joined(separator: ", "))
        for u in r.inputs.understood { line("  read " + u.summary) }

        for n in r.inputs.notes { line("  note: " + n) }
        section("VERDICT: " + originWords(r.verdict.origin))
        let colored: (String) -> String = r.verdict.origin == .unknown ? { $0 } : { style.red($0) }
        for l in wrap(r.verdict.summary, width - 2) { line("  " + (r.hasFindings ? colored(l) : style.green(l))) }

        if !r.evidence.isEmpty {
            section("EVIDENCE (guest ↔ host ↔ QMP)")
            for e in r.evidence.prefix(50) { line("  " + e) }
            if r.evidence.count > 50 { line("  ... \(r.evidence.count - 50) more in --json") }
        }
        if r.timeline.count > 1 {
            // The times are UTC, with the day said once (and again wherever it changes), so they
            // can be looked up in other logs of that day.
            let firstDay = r.timeline.first.flatMap { ExplainStory.day($0.time) }
            let clock = "host clock, UTC" + (firstDay.map { ", \($0)" } ?? "")
            section(r.timeline.contains { $0.source == .hostKernel }
                    ? "TIMELINE (\(clock); guest and host kernel log times converted with their estimated offsets)"
                    : "TIMELINE (\(clock); guest times converted with the estimated offset)")
            var day = firstDay
            for t in r.timeline.prefix(30) {
                if let d = ExplainStory.day(t.time), d != day {
                    line("  -- \(d)")
                    day = d
                }
                // The host kernel's entries are labelled by the command admins read them with.
                let label = t.source == .hostKernel ? "dmesg" : t.source.rawValue
                line("  " + ExplainStory.clock(t.time) + "  " + label.padding(toLength: 5, withPad: " ", startingAt: 0) + " " + t.what)
            }
            if r.timeline.count > 30 { line("  ... \(r.timeline.count - 30) more in --json") }
        }
        if !r.unmatched.isEmpty {
            section("NOT MATCHED ONE-TO-ONE")
            var seen: [String: Int] = [:]
            var reasons: [String] = []
            for u in r.unmatched {
                let what: String
                if u.side == .guest {
                    let g = r.guestBlockErrors[u.index]
                    what = "guest line \(g.line): \(g.device) sector \(g.sector) \(g.operation ?? "")"
                } else if u.side == .host, let f = r.host?.failures[u.index] {
                    what = "host \(f.operation.rawValue)" + (f.sector.map { " sector \($0)" } ?? "") + (f.errnoName.map { " \($0)" } ?? "")
                } else if u.side == .qmp, let e = r.qmp?.ioErrors[u.index] {
                    what = "QMP line \(e.line) BLOCK_IO_ERROR \(e.operation) \(e.action)" + (e.device.isEmpty ? "" : " on \(e.device)")
                } else { continue }
                if seen[u.reason] == nil { reasons.append(u.reason) }
                seen[u.reason, default: 0] += 1
                if seen[u.reason]! <= 5 { bullet("\(what): \(u.reason)") }
            }
            // In the order the reasons first appear: a Dictionary's order changes from run to run.
            for reason in reasons where seen[reason]! > 5 { bullet("... and \(seen[reason]! - 5) more: \(reason)") }
        }
        if !r.coverage.isEmpty {
            section("COVERAGE (what the host inputs can see of each guest disk with trouble)")
            func yesNo(_ b: Bool?) -> String { b.map { $0 ? "yes" : "no" } ?? "unknown" }
            for c in r.coverage {
                var l = "\(c.guestDevice) (\(c.bus.rawValue)): "
                l += r.inputs.trace == nil ? "no trace" : "trace has its events: \(yesNo(c.traceHasBusEvents)), covers the time: \(yesNo(c.traceCoversTime))"
                if r.inputs.qmp != nil { l += "; QMP covers the time: \(yesNo(c.qmpCoversTime))" }
                l += c.covered ? " → covered" : " → not covered"
                bullet(l)
                for why in c.toCover { bullet("  " + why) }
            }
            for p in r.errorPolicies {
                bullet("error policy of \(p.device) (\(p.operation)s): \(p.words) (\(p.from.joined(separator: "; ")))")
            }
        }
        let hostClock = hostClockLine(r)
        if r.clockOffsetSeconds == nil, let h = hostClock {
            section("CLOCKS")
            line("  " + h)
        }
        if let offset = r.clockOffsetSeconds {
            section("CLOCKS")
            let boot: String
            if case .wall? = r.guestClock {
                boot = abs(offset) < 1 ? "the guest's clock agrees with the host's (within a second)"
                    : String(format: "the guest's clock reads %.3f s %@ the host's (time zone, or clock drift)", abs(offset), offset > 0 ? "behind" : "ahead of")
            } else if offset > 946_684_800 {
                boot = "the guest booted at \(wallClock(offset)) UTC by the host's clock"
            } else {
                boot = String(format: "host clock − guest uptime = %.6f s", offset)
            }
            let coarse = (r.guestStampPrecisionSeconds ?? 0) > 0.001
            let agree = coarse ? String(format: " (the guest's stamps are whole seconds: known to ±%.0f s)", r.guestStampPrecisionSeconds ?? 1)
                : r.clockOffsetSpreadSeconds.map { $0 < 0.001 ? "" : String(format: "; matched pairs agree within %.3f s", $0) } ?? ""
            line("  " + boot + agree)
            for b in r.bootClockOffsets where b.clockOffsetSeconds > 946_684_800 {
                line("  boot \(b.boot) started at \(wallClock(b.clockOffsetSeconds)) UTC by the host's clock")
            }
            if let h = hostClock { line("  " + h) }
        }
        if !r.disagreements.isEmpty {
            section("INPUTS THAT DISAGREE")
            for d in r.disagreements { bullet(style.yellow(d)) }
        }
        if !r.nextSteps.isEmpty {
            section("WHAT TO LOOK AT NEXT")
            for s in r.nextSteps { bullet(s) }
        }
        if !r.missing.isEmpty {
            section("NOT GIVEN, AND WHAT IT WOULD HAVE TOLD")
            for m in r.missing { bullet(m) }
        }
        return out
    }

    /// The host kernel log's clock against QEMU's, from the failures seen in both.
    static func hostClockLine(_ r: ExplainReport) -> String? {
        guard let o = r.hostClockOffsetSeconds else { return nil }
        let tied = r.layers.filter { $0.hostFinding != nil }.count
        let how = "from \(tied) \(tied == 1 ? "failure" : "failures") in both"
        switch r.hostClockBasis {
        case "uptime":
            return "the host booted at \(wallClock(o)) UTC by QEMU's clock (the host log's stamps are its uptime; \(how))"
        case "wall-clock-no-zone":
            return "the host log's zone-less stamps are " + String(format: "%+.3f", o) + " s from QEMU's clock (read as UTC, so the zone is in the offset; \(how))"
        default:
            if abs(o) < 0.001 { return "the host kernel log's clock agrees with QEMU's (\(how))" }
            return "the host kernel log's stamps are " + String(format: "%.3f", abs(o)) + " s \(o > 0 ? "behind" : "ahead of") QEMU's clock (\(how)); both are this host's clocks: dmesg derives wall-clock stamps from the boot time and printk's clock, which drift apart"
        }
    }

    static func originWords(_ o: ExplainReport.Origin) -> String {
        switch o {
        case .hostStorage: return "the host's storage failed"
        case .qemuRejected: return "QEMU rejected the guest's requests"
        case .guestInternal: return "the error arose inside the guest (the host saw its requests succeed)"
        case .notCovered: return "not covered: the host inputs cannot see the failing disk"
        case .unknown: return "not enough evidence"
        }
    }

    static func wallClock(_ t: Double) -> String {
        UTCDateFormat.string(.wallClock, Date(timeIntervalSince1970: t))
    }

    /// Greedy word wrap; words longer than the width stay whole.
    static func wrap(_ s: String, _ width: Int) -> [String] {
        var lines: [String] = []
        var current = ""
        for word in s.split(separator: " ", omittingEmptySubsequences: false) {
            if current.isEmpty { current = String(word) }
            else if current.count + 1 + word.count <= width { current += " " + word }
            else { lines.append(current); current = String(word) }
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }
}
