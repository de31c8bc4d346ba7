import Foundation

/// The human report of `kvmscope exits`: summary, the three statistics tables (per reason, per
/// vCPU, per reason×vCPU), the slowest exits with their context, and the heatmap.
public enum ExitsTextRenderer {
    public struct Options {
        public var width = 100
        public var maxPairRows = 40
        public var heatmap = true
        public init() {}
    }

    public static func render(_ r: ExitsReport, style: TerminalStyle, options: Options = Options()) -> String {
        var out = summary(r, style: style)
        guard r.total.count > 0 else { return out }
        out += "\n" + style.bold("By exit reason") + "\n"
        out += table(r.byReason.map { ($0.reason, $0.stats) }, style: style)
        out += "\n" + style.bold("By vCPU") + "\n"
        out += table(r.byVCPU.map { row in
            let who = row.threads.count == 1 ? "tid \(row.threads[0])" : "tids " + row.threads.map(String.init).joined(separator: ",")
            return (row.vcpu < 0 ? "vCPU ? (\(who))" : "vCPU \(row.vcpu) (\(who))", row.stats)
        }, style: style)
        if r.byVCPU.count > 1 || r.byReasonAndVCPU.count != r.byReason.count {
            out += "\n" + style.bold("By exit reason and vCPU") + "\n"
            let rows = r.byReasonAndVCPU.prefix(options.maxPairRows).map { ("\($0.reason) / vCPU \($0.vcpu)", $0.stats) }
            out += table(Array(rows), style: style)
            if r.byReasonAndVCPU.count > options.maxPairRows {
                out += "  (\(r.byReasonAndVCPU.count - options.maxPairRows) more rows: --json has them all)\n"
            }
        }
        if !r.slowest.isEmpty { out += "\n" + slowest(r.slowest, style: style) }
        if let t = r.overThreshold { out += "\n" + overThreshold(t, style: style) }
        if options.heatmap {
            out += "\n" + HeatmapTerminalRenderer.render(r.heatmap, title: style.bold("Heatmap: all exits"),
                                                         width: options.width, style: style)
            for m in r.reasonHeatmaps ?? [] {
                out += "\n" + HeatmapTerminalRenderer.render(m.heatmap, title: style.bold("Heatmap: \(m.reason)"),
                                                             width: options.width, style: style)
            }
        }
        return out
    }

    static func summary(_ r: ExitsReport, style: TerminalStyle) -> String {
        let isa = ["VMX": "Intel VMX", "SVM": "AMD SVM"][r.isa] ?? r.isa
        var out = style.bold("kvmscope exits") + ": \(r.input) (\(r.format), \(isa))\n"
        var span = ""
        if let a = r.firstTimestampNs, let b = r.lastTimestampNs {
            span = " over \(DurationFormat.short(Double(b - a))) of trace (\(DurationFormat.timestamp(a)) to \(DurationFormat.timestamp(b)))"
        }
        let vcpus = r.byVCPU.count
        out += "  \(DurationFormat.count(r.pairing.pairs)) exit->entry pairs\(span), \(vcpus) vCPU\(vcpus == 1 ? "" : "s")"
        if let v = r.vcpuFilter { out += " (only vCPU \(v))" }
        out += "\n"
        if r.lost.any {
            var what: [String] = []
            if r.lost.markerLines > 0 { what.append("\(DurationFormat.count(r.lost.events)) events in \(r.lost.markerLines) [LOST] markers") }
            if let o = r.lost.ringBufferOverruns, o > 0 { what.append("\(DurationFormat.count(o)) ring-buffer overruns") }
            out += "  " + style.red("events were lost: " + what.joined(separator: ", ") + "; counts are low and some pairs are wrong") + "\n"
        } else {
            out += "  no events lost\n"
        }
        var notes: [String] = []
        let p = r.pairing
        if p.exitsWithoutEntryAtEnd > 0 { notes.append("\(p.exitsWithoutEntryAtEnd) exits still waiting for their entry at the end (counted apart)") }
        if p.entriesWithoutExit > 0 { notes.append("\(p.entriesWithoutExit) entries without a preceding exit (trace started mid-exit)") }
        if p.exitsFollowedByExit > 0 { notes.append("\(p.exitsFollowedByExit) exits followed by another exit (entry missing), dropped") }
        if p.outOfOrder > 0 { notes.append("\(p.outOfOrder) entries timestamped before their exit, dropped") }
        if p.filteredOut > 0 { notes.append("\(p.filteredOut) pairs of other vCPUs or reasons not counted (--vcpu, --reason)") }
        let l = r.lines
        var skipped: [String] = []
        if l.unrecognized > 0 { skipped.append("\(l.unrecognized) unrecognized") }
        if l.malformedKVM > 0 { skipped.append("\(l.malformedKVM) malformed kvm_exit/kvm_entry") }
        if l.binary > 0 { skipped.append("\(l.binary) binary") }
        if l.overlong > 0 { skipped.append("\(l.overlong) overlong") }
        if !skipped.isEmpty { notes.append("skipped lines: " + skipped.joined(separator: ", ")) }
        for n in notes { out += "  " + n + "\n" }
        if r.total.count == 0 {
            out += "  no kvm_exit/kvm_entry pairs found (\(l.kvmExit) kvm_exit, \(l.kvmEntry) kvm_entry lines)\n"
        }
        return out
    }

    static let columns = ["count", "samples%", "time%", "min", "p50", "p90", "p99", "p99.9", "max", "mean", "stddev", "+-rse%"]

    static func table(_ rows: [(String, ExitStats)], style: TerminalStyle) -> String {
        let nameWidth = max(24, (rows.map { $0.0.count }.max() ?? 0) + 1)
        var out = style.dim(pad("", nameWidth, left: true) + columns.map { pad($0, 9) }.joined(separator: " ")) + "\n"
        for (name, s) in rows {
            var cells = [String(s.count), String(format: "%.2f%%", s.samplesPercent), String(format: "%.2f%%", s.timePercent)]
            cells += [s.minNs, s.p50Ns, s.p90Ns, s.p99Ns, s.p999Ns, s.maxNs].map { DurationFormat.short($0) }
            cells += [DurationFormat.short(s.meanNs), DurationFormat.short(s.stddevNs),
                      String(format: "%.2f%%", s.relativeStandardErrorPercent)]
            out += pad(name, nameWidth, left: true) + cells.map { pad($0, 9) }.joined(separator: " ") + "\n"
        }
        return out
    }

    static func slowest(_ list: [SlowExit], style: TerminalStyle) -> String {
        var out = style.bold("Slowest exits (\(list.count))") + "\n"
        for (i, e) in list.enumerated() {
            out += String(format: "%3d. ", i + 1) + style.yellow(pad(DurationFormat.short(e.latencyNs), 8)) + "  \(e.reason)"
            out += "  vCPU \(e.vcpu < 0 ? "?" : String(e.vcpu))  \(e.comm)-\(e.tid) cpu \(e.cpu)"
            out += "  exit \(DurationFormat.timestamp(e.exitTimestampNs)) -> entry \(DurationFormat.timestamp(e.entryTimestampNs))\n"
            out += String(format: "       rip 0x%llx info1 0x%016llx info2 0x%016llx intr_info 0x%08x error_code 0x%08x\n",
                          e.rip, e.info1, e.info2, e.intrInfo, e.errorCode)
            for line in e.context { out += "       " + (line.hasPrefix(">") ? line : style.dim(line)) + "\n" }
        }
        return out
    }

    /// `--than`: every exit over the threshold, in the trace's order, one line each with its
    /// RIP and info fields, then the lines around it on its CPU (what the vCPU did between exit
    /// and entry: kvm_pio, kvm_mmio, kvm_msr, kvm_userspace_exit…).
    static func overThreshold(_ t: ThresholdLog, style: TerminalStyle) -> String {
        var out = style.bold("Exits of \(DurationFormat.short(t.thresholdNs)) or more: \(DurationFormat.count(t.count))")
            + (UInt64(t.exits.count) < t.count ? " (the first \(t.exits.count) listed, --json has the same)" : "") + "\n"
        for e in t.exits {
            out += "  \(DurationFormat.timestamp(e.exitTimestampNs))  " + style.yellow(pad(DurationFormat.short(e.latencyNs), 8))
                + "  vCPU \(e.vcpu < 0 ? "?" : String(e.vcpu))  \(e.reason)"
                + String(format: "  rip 0x%llx info1 0x%llx info2 0x%llx", e.rip, e.info1, e.info2) + "\n"
            // As the slowest exits show it: `>` marks the exit and its entry, the rest is context.
            for line in e.context { out += "      " + (line.hasPrefix(">") ? line : style.dim(line)) + "\n" }
        }
        return out
    }

    static func pad(_ s: String, _ w: Int, left: Bool = false) -> String {
        let n = max(0, w - s.count)
        return left ? s + String(repeating: " ", count: n) : String(repeating: " ", count: n) + s
    }
}
