import Foundation

/// `kvmscope trace` output, text and JSON, from one `TraceReport`. Text: failures first
/// (grouped when there are many), then requests still in flight, VM pauses, the latency
/// table, throughput, and what the reader skipped.
public enum TraceReportRenderer {
    /// Failures listed one by one up to this many; beyond, the exact groups are listed.
    public static let detailedFailureLimit = 20

    public static func json(_ report: TraceReport) throws -> String {
        try JSONReport.encode(report)
    }

    public static func text(_ report: TraceReport, style: TerminalStyle = .plain) -> String {
        var out = ""
        let stats = report.input.stats
        var head = "\(report.input.name): \(formatDescription(stats.format))"
        if stats.lines > 0 { head += ", \(stats.lines) lines" }
        if let span = report.timeSpan {
            head += String(format: ", %.3f s", span.seconds)
            if span.clock == .wall { head += " from \(clockTime(span.start, report, absolute: true))" }
        }
        out += style.bold(head) + "\n"
        for d in report.devices {
            out += "  device \(d.device)" + (d.queues.isEmpty ? ": " : " (queue\(d.queues.count == 1 ? "" : "s") \(d.queues.joined(separator: ", "))): ")
            out += "\(d.completed) completed, \(d.failed) failed, \(d.inFlightAtEnd) in flight at end"
            if d.discardedAtReset > 0 { out += ", \(d.discardedAtReset) discarded by resets" }
            out += "\n"
        }
        out += "\n"

        // A trace of another bus only: its sections, not an empty virtio-blk report.
        let virtioBlk = report.coverage.bus(.virtioBlk)?.covered == true || !report.devices.isEmpty
            || report.failuresTotal > 0 || report.inFlightTotal > 0
        if !virtioBlk {
            out += "virtio-blk: no events in this trace\n"
            if !report.vmPauses.isEmpty { out += vmPauseLines(report, style: style) }
            out += otherSections(report, style: style)
            return out
        }

        // Failures
        if report.failuresTotal == 0 {
            out += style.green("FAILURES: none") + "\n"
        } else {
            out += style.red(style.bold("FAILURES: \(report.failuresTotal)")) + "\n"
            if report.failuresTotal <= detailedFailureLimit && report.failures.count == report.failuresTotal {
                for f in report.failures { out += failureLines(f, report) }
            } else {
                out += "  grouped (exact counts):\n"
                for g in report.failureGroups { out += groupLine(g, report) }
                out += "  first \(min(5, report.failures.count)) of \(report.failuresTotal) in detail (--json keeps \(report.failuresShown)):\n"
                for f in report.failures.prefix(5) { out += failureLines(f, report) }
            }
        }
        out += "\n"

        // In flight
        if report.inFlightTotal == 0 {
            out += style.green("IN FLIGHT AT END: none") + "\n"
        } else {
            let title = "IN FLIGHT AT END: \(report.inFlightTotal) (\(report.leakedTotal) counted as leaks)"
            out += (report.leakedTotal > 0 ? style.yellow(style.bold(title)) : style.bold(title)) + "\n"
            for r in report.inFlight.prefix(50) {
                var line = "  \(r.request)  \(r.operation?.words ?? "unknown")"
                if let s = r.sector { line += " sector \(s)+\(r.sectors ?? 0)" }
                line += "  device \(r.device)"
                if let age = r.ageSeconds { line += String(format: "  age %.3f s", age) }
                line += "\n    \(r.state)"
                if let e = r.errnoName { line += ", \(e)" }
                if r.attempts > 1 { line += ", \(r.attempts) attempts" }
                out += line + "\n"
            }
            if report.inFlight.count > 50 { out += "  … \(report.inFlightTotal - 50) more (--json)\n" }
        }
        if report.requests.discardedAtReset > 0 {
            out += "  \(report.requests.discardedAtReset) outstanding at a device reset were discarded (not leaks)\n"
        }

        if !report.vmPauses.isEmpty { out += vmPauseLines(report, style: style) }

        // Latency
        out += "\n" + style.bold("LATENCY") + "  (pop→fill: what the guest waited; handle→rw: storage)\n"
        let ops = VirtioBlkOperation.allCases.filter { report.latency[$0.rawValue] != nil }
        if ops.isEmpty {
            out += "  no completed requests with timestamps\n"
        } else {
            out += "  " + pad("", 22) + ["count", "min", "mean", "p50", "p90", "p99", "p99.9", "max", "stddev"]
                .map { pad($0, 9, right: true) }.joined() + "\n"
            for op in ops {
                let l = report.latency[op.rawValue]!
                if let s = l.popToFill { out += latencyRow("\(op.rawValue) pop→fill", s) }
                if let s = l.handleToComplete { out += latencyRow("\(op.rawValue) handle→rw", s) }
                if l.popToFill == nil && l.handleToComplete == nil {
                    out += "  " + pad("\(op.rawValue)", 22) + pad("\(l.requests)", 9, right: true) + "  (no timestamps or pop not traced)\n"
                }
            }
        }
        if let t = report.throughput {
            out += String(format: "THROUGHPUT: %.1f requests/s, %@/s over %.3f s\n",
                          t.requestsPerSecond, byteCount(t.bytesPerSecond), t.seconds)
        }
        out += otherSections(report, style: style)
        return out
    }

    static func vmPauseLines(_ report: TraceReport, style: TerminalStyle) -> String {
        let total = report.vmPauses.compactMap(\.seconds).reduce(0, +)
        var out = "\n" + style.bold("VM PAUSES (io-error): \(report.vmPauses.count)") + String(format: ", %.3f s in total", total) + "\n"
        for p in report.vmPauses.prefix(10) {
            out += "  \(clockTime(p.start, report)) " + (p.seconds.map { String(format: "paused %.3f s", $0) } ?? "still paused at the end") + "\n"
        }
        return out
    }

    /// SCSI, backend, bus coverage, input accounting and notes.
    static func otherSections(_ report: TraceReport, style: TerminalStyle) -> String {
        var out = ""
        if report.scsi.seen { out += "\n" + scsiSection(report, style: style) }
        out += "\n" + backendSection(report, style: style)
        out += coverageLines(report.coverage)
        out += "\n" + inputLine(report) + "\n"
        for w in report.warnings { out += style.yellow("note: ") + w + "\n" }
        return out
    }

    /// `BUSES: virtio-blk 24 events (analysed), virtio-scsi/SCSI none, …`
    static func coverageLines(_ c: TraceCoverageReport) -> String {
        let parts = c.buses.map { b in
            "\(b.bus.words) " + (b.covered ? "\(b.events) events" + (b.analysed ? "" : " (not analysed)") : "none")
        }
        return "BUSES: " + parts.joined(separator: ", ") + "\n"
    }

    static func scsiSection(_ report: TraceReport, style: TerminalStyle) -> String {
        let s = report.scsi
        var out = ""
        let r = s.requests
        var head = "SCSI: \(r.completed) completed, \(r.failed) failed, \(r.inFlightAtEnd) in flight at end"
        if r.cancelled > 0 { head += ", \(r.cancelled) cancelled" }
        if r.unitAttentions > 0 { head += ", \(r.unitAttentions) unit attentions" }
        if r.rejectedProbes > 0 { head += ", \(r.rejectedProbes) probes rejected" }
        if r.outcomeUnknown > 0 { head += ", \(r.outcomeUnknown) with no end traced" }
        out += style.bold(head) + "\n"
        for d in s.devices {
            out += "  " + scsiDevice(d.target, d.lun) + ": \(d.completed) completed, \(d.failed) failed, \(d.inFlightAtEnd) in flight"
            if let b = d.blockSize { out += ", \(b)-byte blocks" }
            out += "\n"
        }
        if s.failuresTotal > 0 {
            out += style.red(style.bold("SCSI FAILURES: \(s.failuresTotal)")) + "\n"
            for f in s.failures.prefix(detailedFailureLimit) {
                var line = "  \(f.time.map { clockTime($0, report) } ?? "(no time)")  \(f.command?.name ?? "command")"
                if let sec = f.sector { line += " sector \(sec)" + (f.sectors.map { "+\($0)" } ?? "") }
                line += "  \(scsiDevice(f.target, f.lun)) tag \(f.tag)  [\(f.statusName ?? f.responseName ?? "error")"
                if let sense = f.sense { line += ", " + sense.keyName + String(format: " %02x/%02x", sense.asc, sense.ascq) }
                line += "]\n    \(f.explanation)\n"
                out += line
            }
            if s.failures.count > detailedFailureLimit { out += "  … \(s.failuresTotal - detailedFailureLimit) more (--json)\n" }
        }
        for i in s.inFlight.prefix(20) {
            out += "  in flight: \(i.command?.name ?? "command")" + (i.sector.map { " sector \($0)" } ?? "")
                + "  \(scsiDevice(i.target, i.lun)) tag \(i.tag)" + (i.ageSeconds.map { String(format: "  age %.3f s", $0) } ?? "") + "\n"
        }
        return out
    }

    static func scsiDevice(_ target: Int?, _ lun: Int?) -> String {
        (target.map { "target \($0) " } ?? "") + "lun " + (lun.map(String.init) ?? "?")
    }

    static func backendSection(_ report: TraceReport, style: TerminalStyle) -> String {
        let b = report.backend
        var out = "BACKEND: " + (b.kinds.isEmpty ? "unknown (no nbd_*, qcow2_* or file_* events)" : b.kinds.joined(separator: " over "))
        out += "\n"
        guard let n = b.nbd else { return out }
        var line = "  NBD client"
        if let e = n.export { line += " export '\(e)'" }
        line += ": \(n.handshakesSucceeded) of \(n.handshakes) handshakes succeeded"
        out += line + "\n"
        if n.connectionLossesTotal > 0 {
            out += style.red("  connection lost \(n.connectionLossesTotal) time\(n.connectionLossesTotal == 1 ? "" : "s")") + "\n"
            for l in n.connectionLosses.prefix(5) {
                out += "    \(l.time.map { clockTime($0, report) } ?? "(no time)")  \(l.reason.isEmpty ? "no message" : l.reason) (ret \(l.ret)\(l.errnoName.map { " " + $0 } ?? ""))\n"
            }
        }
        if n.reconnectAttempts > 0 {
            out += "  \(n.reconnectAttempts) reconnect attempts, \(n.reconnectsSucceeded) succeeded"
            if !n.reconnectFailures.isEmpty {
                out += "; failed: " + n.reconnectFailures.map { "\($0.count) × \($0.errnoName ?? "ret \($0.ret)")" }.joined(separator: ", ")
            }
            out += "\n"
        }
        if n.guestRequestsFailedWhileDisconnected > 0 {
            out += style.red("  \(n.guestRequestsFailedWhileDisconnected) guest request failures while disconnected") + "\n"
        }
        if n.failedRequestsTotal > 0 {
            out += style.red("  \(n.failedRequestsTotal) requests failed by the NBD client") + "\n"
            for g in n.failedRequests.prefix(10) {
                out += "    \(g.count) × \(g.type) \(g.errnoName ?? "ret \(g.ret)")" + (g.reason.map { ": \($0)" } ?? "")
                    + "  bytes \(g.lowestOffset)…\(g.endOffset)\n"
            }
        }
        return out
    }

    static func formatDescription(_ name: String) -> String {
        switch name {
        case "qemu-log": return "QEMU log backend"
        case "qemu-simpletrace": return "QEMU simpletrace v4"
        case "qemu-stap-log": return "SystemTap log"
        default: return name
        }
    }

    static func failureLines(_ f: VirtioBlkFailure, _ report: TraceReport) -> String {
        var line = "  \(f.time.map { clockTime($0, report) } ?? "(no time)")  \(f.operation.words)"
        if let s = f.sector { line += " sector \(s)+\(f.sectors ?? 0)" }
        line += "  device \(f.device)  [\(f.cause.rawValue)"
        if let e = f.errnoName { line += ", \(e)" }
        line += ", guest: \(f.guestStatus ?? "no status")]\n"
        line += "    \(f.explanation)\n"
        return line
    }

    static func groupLine(_ g: VirtioBlkFailureGroup, _ report: TraceReport) -> String {
        var line = "  \(pad(String(g.count), 8, right: true)) × \(g.operation.words) \(g.cause.rawValue)"
        if let e = g.errnoName { line += " \(e)" }
        line += " → \(g.guestStatus ?? "no status")"
        if let r = g.retrySucceeded { line += r ? " (retry succeeded)" : " (retry failed)" }
        line += "  device \(g.device)"
        if let lo = g.sectorMin, let hi = g.sectorEnd { line += "  sectors \(lo)…\(hi)" }
        if let a = g.firstTime, let b = g.lastTime { line += "  \(clockTime(a, report))–\(clockTime(b, report))" }
        return line + "\n"
    }

    static func latencyRow(_ label: String, _ s: LatencySummary) -> String {
        "  " + pad(label, 22) + pad("\(s.count)", 9, right: true)
            + [s.minUs, s.meanUs, s.p50Us, s.p90Us, s.p99Us, s.p999Us, s.maxUs, s.stddevUs]
            .map { pad(duration($0), 9, right: true) }.joined() + "\n"
    }

    static func inputLine(_ report: TraceReport) -> String {
        let s = report.input.stats
        var parts: [String] = ["\(s.events) events decoded"]
        let skipped = s.eventCounts.filter { !TraceSession.analysedEventNames.contains($0.key) }
            .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }   // ties by name: stable output
        if s.skippedEvents > 0 {
            parts.append("\(s.skippedEvents) other known events counted ("
                + skipped.prefix(4).map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                + (skipped.count > 4 ? ", …" : "") + ")")
        }
        if s.unknownEvents > 0 { parts.append("\(s.unknownEvents) unknown events") }
        if s.malformedEvents > 0 { parts.append("\(s.malformedEvents) malformed events") }
        if s.otherLines > 0 { parts.append("\(s.otherLines) non-trace lines") }
        if s.binaryLines > 0 { parts.append("\(s.binaryLines) binary lines") }
        if s.overlongLines > 0 { parts.append("\(s.overlongLines) overlong lines") }
        if s.truncatedRecords > 0 { parts.append("\(s.truncatedRecords) truncated record") }
        if let off = s.corruptAtOffset { parts.append("unreadable from byte \(off) on") }
        if s.unmappedEvents > 0 { parts.append("\(s.unmappedEvents) records without id mapping") }
        return "INPUT: " + parts.joined(separator: "; ")
    }

    /// Wall-clock times as UTC time of day (the date once, in the header); monotonic ones
    /// (simpletrace) as seconds since the trace started.
    static func clockTime(_ seconds: Double, _ report: TraceReport, absolute: Bool = false) -> String {
        guard let span = report.timeSpan else { return String(format: "%.6f", seconds) }
        if span.clock == .monotonic { return String(format: "+%.6fs", seconds - span.start) }
        let whole = floor(seconds)
        let micros = Int(((seconds - whole) * 1e6).rounded())
        var t = time_t(whole)
        var tm = tm()
        gmtime_r(&t, &tm)
        let day = String(format: "%04d-%02d-%02d ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday)
        return (absolute ? day : "") + String(format: "%02d:%02d:%02d.%06d", tm.tm_hour, tm.tm_min, tm.tm_sec, min(micros, 999_999))
            + (absolute ? " UTC" : "")
    }

    static func duration(_ us: Double) -> String {
        if us < 1000 { return String(format: "%.1fµs", us) }
        if us < 1_000_000 { return String(format: "%.2fms", us / 1000) }
        return String(format: "%.3fs", us / 1_000_000)
    }

    static func byteCount(_ b: Double) -> String {
        if b < 1000 { return String(format: "%.0f B", b) }
        if b < 1e6 { return String(format: "%.1f kB", b / 1e3) }
        if b < 1e9 { return String(format: "%.1f MB", b / 1e6) }
        return String(format: "%.2f GB", b / 1e9)
    }

    static func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
        let n = s.count
        guard n < width else { return right ? " " + s : s + " " }
        let spaces = String(repeating: " ", count: width - n)
        return right ? spaces + s : s + spaces
    }

    /// One line for `--follow`, printed the moment a failure is known.
    public static func followLine(_ notice: VirtioBlkRequestTracker.Notice, style: TerminalStyle) -> String {
        switch notice {
        case let .failure(f):
            var line = "\(f.time.map { String(format: "%.6f", $0) } ?? "-") FAILURE \(f.operation.words)"
            if let s = f.sector { line += " sector \(s)+\(f.sectors ?? 0)" }
            line += " device \(f.device) [\(f.cause.rawValue)\(f.errnoName.map { ", " + $0 } ?? ""), guest: \(f.guestStatus ?? "no status")]: \(f.explanation)"
            return style.red(line) + "\n"
        case let .vmPaused(at, waiting):
            var line = "\(at.map { String(format: "%.6f", $0) } ?? "-") VM PAUSED (io-error)"
            for r in waiting {
                line += "; waiting: \(r.operation?.words ?? "request") \(r.sector.map { "sector \($0)+\(r.sectors ?? 0)" } ?? r.request)"
                if let e = r.errnoName { line += " after \(e)" }
            }
            return style.yellow(line) + "\n"
        case let .vmResumed(at, seconds):
            return "\(at.map { String(format: "%.6f", $0) } ?? "-") VM RESUMED" + (seconds.map { String(format: " after %.3f s", $0) } ?? "") + "\n"
        }
    }
}
