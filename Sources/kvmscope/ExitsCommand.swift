import ArgumentParser
import Foundation
import KVMScope

/// A duration argument: `10s`, `500ms`, `2m`, `250us`, or plain seconds (`1.5`).
struct DurationArgument: ExpressibleByArgument {
    let nanoseconds: UInt64
    var seconds: Double { Double(nanoseconds) / 1e9 }

    init?(argument: String) {
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        var number = Substring(argument), scale = 1e9
        for (suffix, s) in units where argument.hasSuffix(suffix) {
            number = argument.dropLast(suffix.count); scale = s; break
        }
        guard let v = Double(number), v > 0, v.isFinite, v * scale >= 1, v * scale < 1e18 else { return nil }
        nanoseconds = UInt64(v * scale)
    }
}

struct ExitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exits",
        abstract: "vm-exit → vm-entry latency per exit reason and per vCPU, the slowest exits with their context, and a heatmap.",
        discussion: """
        Reads kvm:kvm_exit / kvm:kvm_entry traces: trace-cmd's trace.dat (v6, v7; zstd/zlib) directly, \
        ftrace text (/sys/kernel/tracing/trace or trace_pipe, \
        linux <=5.9 and 5.10+ formats), trace-cmd report (with the kvm plugin, -N or -R), perf script; \
        or records live in a private tracefs instance (--record, as root). Each exit is paired with the \
        next entry of the same thread.

        Examples:
          $ kvmscope exits trace.txt
          $ kvmscope exits --top 5 --svg heatmap.svg trace.txt
          $ kvmscope exits --than 500us trace.txt      # every exit of 500 µs or more, with its guest RIP
          $ kvmscope exits --perf-compat trace.txt      # perf kvm stat report's table
          $ kvmscope exits trace.dat                     # trace-cmd record -e kvm:kvm_exit -e kvm:kvm_entry
          $ sudo kvmscope exits --record 10s --pid $(pidof qemu-system-x86_64)
          $ sudo kvmscope exits --live --by vm --sort p99      # a top view of every VM's exits
          $ sudo kvmscope exits --live --reason EPT_VIOLATION --vcpu 2 --pid 4242
          $ kvmscope exits --json trace.txt
        Real output lines:
          EXTERNAL_INTERRUPT              3        60.00%   ...
                                 VM-EXIT    Samples  Samples%     Time%    Min Time    Max Time         Avg time
        Exit status: 0 ok (also a recording in which no exit fired: a warning says so), 1 events were lost (the counts are too low), a --vcpu or --reason that matches no exit, or failure, 2 usage error (also an input with no kvm_exit/kvm_entry events).
        """
    )

    @Argument(help: "Trace file: text, or trace-cmd's trace.dat ('-' for stdin). Not with --record.")
    var file: String?

    @Option(name: .long, help: "Input format instead of detecting it: trace-dat, ftrace, trace-cmd, trace-cmd-raw, perf-script.")
    var format: String?

    @Option(name: .long, help: "Record live for this long (10s, 500ms, 2m) in a private tracefs instance. Needs root.")
    var record: DurationArgument?

    @Option(name: .long, help: "With --record: only this process's threads (QEMU's pid).")
    var pid: Int32?

    @Option(name: .long, help: "With --record: where tracefs is.")
    var tracefs: String = Tracefs.defaultRoot

    @Option(name: .long, help: "With --record: ring buffer per CPU, in KiB.")
    var bufferKb: Int = 4096

    @Option(name: .long, help: "Log the N slowest exits with the trace lines around them (0: none).")
    var top: Int = 10

    @Option(name: .long, help: "List every exit at least this slow (100us, 1ms), in trace order, with its RIP, info fields and the lines before it on its CPU.")
    var than: DurationArgument?

    @Option(name: .long, help: "Lines of context before and after each slow exit.")
    var context: Int = 4

    @Option(name: .long, help: "Heatmap time bucket (e.g. 10ms); default: 1 ms, doubled as needed to fit.")
    var interval: DurationArgument?

    @Option(name: .long, help: "Count only this vCPU.")
    var vcpu: Int32?

    @Option(name: .long, help: "Count only exits of this reason (HLT, IO_INSTRUCTION, npf, ...; case-insensitive). Repeatable. With --live, filtered in the kernel.")
    var reason: [String] = []

    @Option(name: .long, help: "Also draw one heatmap per exit reason, for the N most frequent reasons.")
    var reasonHeatmaps: Int = 0

    @Option(name: .long, help: "Write the heatmap(s) as an SVG image to FILE.")
    var svg: String?

    @Flag(name: .long, help: "Print perf kvm stat report's table instead of kvmscope's report, in the layout of the installed perf (perf --version), or of --perf-compat=VERSION.")
    var perfCompat = false

    @Option(name: .long, help: ArgumentHelp("The perf version whose table --perf-compat copies (6.1: 20-column names; 6.4+: 40). Also written --perf-compat=VERSION.", valueName: "VERSION"))
    var perfVersion: String?

    @Flag(name: .long, help: "Leave the heatmap out of the text report.")
    var noHeatmap = false

    @Option(name: .long, help: "Width of the terminal heatmap in characters (default: $COLUMNS or 100).")
    var width: Int?

    @OptionGroup var live: ExitsLiveOptions

    @OptionGroup var output: OutputOptions

    func validate() throws {
        if live.live { return try live.validate(file: file, record: record, perfCompat: perfCompat, svg: svg, reasons: reason) }
        if record == nil && file == nil { throw ValidationError("give a trace FILE ('-' for stdin), --record DURATION or --live") }
        if record != nil && file != nil { throw ValidationError("use either a FILE or --record, not both") }
        if pid != nil && record == nil { throw ValidationError("--pid works with --record or --live (a text trace has no process ids, only thread ids)") }
        if let f = format, FormatRegistry.named(f)?.kind != .kvmExits {
            throw ValidationError("unknown --format '\(f)' (trace-dat, perf-data, ftrace, trace-cmd, trace-cmd-raw, perf-script)")
        }
        if top < 0 || top > 10_000 { throw ValidationError("--top must be 0...10000") }
        if context < 0 || context > 50 { throw ValidationError("--context must be 0...50") }
        if reasonHeatmaps < 0 || reasonHeatmaps > 64 { throw ValidationError("--reason-heatmaps must be 0...64") }
        if bufferKb < 4 || bufferKb > 4 << 20 { throw ValidationError("--buffer-kb must be 4...4194304") }
        if let w = width, w < 30 || w > 1000 { throw ValidationError("--width must be 30...1000") }
        if perfCompat && output.json { throw ValidationError("use either --json or --perf-compat") }
        if let v = perfVersion {
            guard PerfKVMStatRenderer.parseNumbers(Substring(v)) != nil else {
                throw ValidationError("--perf-compat=\(v): not a perf version like 6.1 or 6.8")
            }
            if !perfCompat { throw ValidationError("--perf-version goes with --perf-compat") }
        }
        for r in reason where r.isEmpty || r.contains(where: { $0.isWhitespace }) {
            throw ValidationError("--reason '\(r)' is not an exit reason name (like HLT or IO_INSTRUCTION)")
        }
    }

    func run() throws {
        if live.live { return try runLive() }
        var analysis = ExitAnalysisOptions()
        analysis.top = top
        analysis.contextLines = context
        analysis.intervalNs = interval?.nanoseconds
        analysis.vcpu = vcpu
        analysis.reasons = Set(reason)
        analysis.reasonHeatmaps = reasonHeatmaps
        analysis.thresholdNs = than?.nanoseconds

        let report: ExitsReport
        if let record {
            var options = KVMExitRecorder.Options()
            options.seconds = record.seconds
            options.pid = pid
            options.tracefsRoot = tracefs
            options.bufferKB = bufferKb
            let recorder = KVMExitRecorder(options: options)
            _ = try recorder.preflight()
            FileHandle.standardError.write(Data("kvmscope: recording kvm_exit/kvm_entry for \(record.seconds)s (Ctrl-C to stop early)...\n".utf8))
            report = try recorder.record(analysis: analysis)
        } else {
            let source = try FileByteSource(path: file!)
            let meter = ProgressMeter(label: source.name, total: source.knownSize)
            report = try KVMExitTraceReader.analyze(source, format: format.flatMap(FormatRegistry.named),
                                                    options: analysis, onProgress: meter.update)
            meter.finish()
            if report.lines.kvmExit == 0 && report.lines.kvmEntry == 0 && report.format == "trace-dat" {
                throw KVMScopeError.unsupportedFormat(path: source.name, detail:
                    "this trace.dat holds the kvm_exit/kvm_entry formats but none of their events (\(report.lines.total) events in all): no guest exited while it was recorded, or this host's KVM does not emit them")
            }
            if report.lines.kvmExit == 0 && report.lines.kvmEntry == 0, report.format == "perf-data" {
                throw KVMScopeError.unsupportedFormat(path: source.name, detail:
                    "no kvm_exit or kvm_entry samples among its \(report.lines.total) tracepoint samples (record them with: perf record -e kvm:kvm_exit -e kvm:kvm_entry, or perf kvm stat record)")
            }
            if report.lines.kvmExit == 0 && report.lines.kvmEntry == 0 {
                throw KVMScopeError.unsupportedFormat(path: source.name, detail:
                    "no kvm_exit or kvm_entry events in \(report.lines.total) lines (record them with: trace-cmd record -e kvm:kvm_exit -e kvm:kvm_entry, or kvmscope exits --record 10s)")
            }
        }

        try Self.checkFilters(report, vcpu: vcpu, reasons: reason)

        if let svg {
            var panels = [HeatmapSVGRenderer.Panel(title: "All exits (\(DurationFormat.count(report.total.count)))", heatmap: report.heatmap)]
            for m in report.reasonHeatmaps ?? [] {
                let n = report.byReason.first { $0.reason == m.reason }?.stats.count ?? 0
                panels.append(.init(title: "\(m.reason) (\(DurationFormat.count(n)))", heatmap: m.heatmap))
            }
            let subtitle = "\(report.input) — \(report.format), \(report.isa); colour: number of exits in the cell (log scale)"
            do {
                try HeatmapSVGRenderer.render(panels: panels, subtitle: subtitle).write(toFile: svg, atomically: true, encoding: .utf8)
            } catch {
                throw KVMScopeError.cannotWrite(path: svg, reason: error.localizedDescription)
            }
            // On stderr, so the report on stdout stays what it was (a pipe, --json).
            CLIOutput.error("heat map written to \(svg) (\(panels.count) panel\(panels.count == 1 ? "" : "s"))")
        }

        if output.json {
            CLIOutput.write(try JSONReport.encode(report))
        } else if perfCompat {
            CLIOutput.write(PerfKVMStatRenderer.render(report, pid: pid.map(String.init), nameWidth: perfNameWidth()))
        } else {
            var options = ExitsTextRenderer.Options()
            options.width = width ?? Int(ProcessInfo.processInfo.environment["COLUMNS"] ?? "") ?? 100
            options.heatmap = !noHeatmap
            CLIOutput.write(ExitsTextRenderer.render(report, style: output.style, options: options))
        }
        if let note = report.recording?.note { CLIOutput.warning(note) }
        if report.recording?.interrupted == true { CLIOutput.warning("recording stopped early by a signal") }
        if report.lost.any {
            CLIOutput.warning("events were lost while tracing: the counts are too low (enlarge --buffer-kb or trace fewer events)")
            throw ExitCode.failure
        }
    }

    /// A --vcpu or --reason that matched no exit: say what the trace has, and fail (exit 1)
    /// rather than print an empty report as if the trace had no exits.
    static func checkFilters(_ r: ExitsReport, vcpu: Int32?, reasons: [String]) throws {
        guard vcpu != nil || !reasons.isEmpty, r.total.count == 0, r.pairing.filteredOut > 0 else { return }
        var what: [String] = []
        if let vcpu { what.append("--vcpu \(vcpu)") }
        if !reasons.isEmpty { what.append(reasons.map { "--reason \($0)" }.joined(separator: " ")) }
        var has: [String] = []
        if vcpu != nil { has.append(r.vcpusSeen.isEmpty ? "no vCPU numbers (its kvm_exit lines do not name them)" : "vCPU " + r.vcpusSeen.map(String.init).joined(separator: ", ")) }
        if !reasons.isEmpty { has.append(r.reasonsSeen.isEmpty ? "no exits" : "reasons " + r.reasonsSeen.joined(separator: ", ")) }
        CLIOutput.warning("\(what.joined(separator: " ")) matches no exit in \(r.input): it has \(has.joined(separator: "; "))")
        throw ExitCode.failure
    }

    /// perf kvm stat's name column for --perf-compat: the given version's, else the installed
    /// perf's (`perf --version`), else perf ≥ 6.4's with a note.
    func perfNameWidth() -> Int {
        if let v = perfVersion.flatMap({ PerfKVMStatRenderer.parseNumbers(Substring($0)) }) {
            return PerfKVMStatRenderer.nameWidth(perfVersion: v)
        }
        if let v = Self.installedPerfVersion() { return PerfKVMStatRenderer.nameWidth(perfVersion: v) }
        CLIOutput.warning("perf not found (perf --version): using perf 6.4+'s table layout; give --perf-compat=VERSION for another")
        return 40
    }

    static func installedPerfVersion() -> (major: Int, minor: Int)? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["perf", "--version"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return nil }
        return PerfKVMStatRenderer.parseVersion(String(decoding: data, as: UTF8.self))
    }
}
