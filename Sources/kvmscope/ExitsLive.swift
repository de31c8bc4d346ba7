import ArgumentParser
import Foundation
import KVMScope

/// `kvmscope exits --live`: the options, and the loop that prints frames.
struct ExitsLiveOptions: ParsableArguments {
    @Flag(name: .long, help: "A live top view (like perf kvm stat live / kvm_stat) from a private tracefs instance, refreshed every --refresh, until Ctrl-C or --duration. Needs root.")
    var live = false

    @Option(name: .long, help: "With --live: refresh interval (default 1s).")
    var refresh: DurationArgument?

    @Option(name: .long, help: "With --live: stop after this long (default: until Ctrl-C).")
    var duration: DurationArgument?

    @Option(name: .long, help: "With --live: rows per reason, vcpu or vm (VM names from QEMU's -name).")
    var by: String = "reason"

    @Option(name: .long, help: "With --live: sort by count, rate, time, mean, p99 or max.")
    var sort: String = "count"

    @Option(name: .long, help: "With --live: at most N rows per frame.")
    var rows: Int = 40

    /// `reasons`: the command's --reason filters, which --live applies in the kernel.
    func validate(file: String?, record: DurationArgument?, perfCompat: Bool, svg: String?, reasons: [String]) throws {
        if file != nil || record != nil { throw ValidationError("--live records by itself: not with a FILE or --record") }
        if perfCompat || svg != nil { throw ValidationError("--perf-compat and --svg are for reports, not --live") }
        guard ExitLiveGrouping(rawValue: by) != nil else { throw ValidationError("--by must be reason, vcpu or vm (got '\(by)')") }
        guard ExitLiveSort(rawValue: sort) != nil else { throw ValidationError("--sort must be count, rate, time, mean, p99 or max (got '\(sort)')") }
        if rows < 1 || rows > 10_000 { throw ValidationError("--rows must be 1...10000") }
        if let r = refresh, r.seconds < 0.1 || r.seconds > 3600 { throw ValidationError("--refresh must be 100ms...1h") }
        do { _ = try KVMExitLiveSession.reasonFilter(reasons) } catch let e as ExitLiveError { throw ValidationError(e.description) }
    }
}

extension ExitsCommand {
    func runLive() throws {
        var o = KVMExitLiveSession.Options()
        o.recorder.pid = pid
        o.recorder.tracefsRoot = tracefs
        o.recorder.bufferKB = bufferKb
        o.refreshSeconds = live.refresh?.seconds ?? 1
        o.durationSeconds = live.duration?.seconds
        if let v = vcpu {
            guard v >= 0 else { throw ValidationError("--vcpu must be 0 or more") }
            o.vcpu = UInt32(v)
        }
        o.reasons = reason
        o.grouping = ExitLiveGrouping(rawValue: live.by)!
        o.sort = ExitLiveSort(rawValue: live.sort)!
        o.rowLimit = live.rows
        let terminal = isatty(STDOUT_FILENO) == 1 && !output.json
        var filters: [String] = []
        if let p = pid { filters.append("pid \(p)") }
        if let v = vcpu { filters.append("vcpu \(v)") }
        if !reason.isEmpty { filters.append("reason " + reason.joined(separator: "|")) }
        let header = "kvmscope exits --live" + (filters.isEmpty ? "" : " (" + filters.joined(separator: ", ") + ")")
        var frames = 0
        var lost: UInt64 = 0
        try KVMExitLiveSession(options: o).run { frame in
            frames += 1
            lost = frame.lostEvents
            if output.json {
                if let line = try? JSONReport.encode(frame, pretty: false) {
                    CLIOutput.write(line.hasSuffix("\n") ? line : line + "\n")
                }
            } else {
                let text = ExitLiveRenderer.text(frame, style: output.style, header: header)
                CLIOutput.write(terminal ? ExitLiveRenderer.clearScreen + text : (frames > 1 ? "\n" : "") + text)
            }
        }
        if lost > 0 {
            CLIOutput.warning("events were lost while tracing: the counts are too low (enlarge --buffer-kb or filter more)")
            throw ExitCode.failure
        }
    }
}
