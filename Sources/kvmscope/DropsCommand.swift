import ArgumentParser
import Foundation
import KVMScope

extension DropGrouping: ExpressibleByArgument {}

struct DropsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drops",
        abstract: "Where and why the kernel drops packets: dropwatch that works on today's kernels, with drop reasons.",
        discussion: """
        Live (as root): counts skb:kfree_skb drops in a private tracefs instance, reading the binary \
        per-CPU ring buffers (--source tracefs), or trace_pipe text (tracefs-text), or the NET_DM \
        drop monitor dropwatch uses (netdm); auto picks the first that works. consume_skb (normal \
        frees) is never counted. Offline: reads trace-cmd's trace.dat (v6, v7; zstd/zlib) directly, \
        ftrace `trace`/`trace_pipe` text, `trace-cmd report` \
        (also -l, -t, -R) or `perf script` output of skb:kfree_skb, from this or another host.

        --netns is not exact: the tracepoint has no namespace field, so kvmscope counts drops that \
        happened while a task of that namespace was running (the sender, for loopback and veth traffic \
        received in its softirq; for a packet crossing a veth pair, the sending side). Drops on an idle \
        CPU or in a task that has exited cannot be attributed and are reported separately. --by comm \
        names the task as the kernel recorded it (tracefs saved_cmdlines, else /proc): a task that \
        exec'd since shows its new name.

        Examples:
          $ kvmscope drops trace.txt                 # a capture from any host
          === 7 drops in 0.5 s (13.9/s) — ftrace-drops from trace.txt ===
          3 drops at __udp4_lib_rcv+0x4bc [software] reason NO_SOCKET
          2 drops at __udp6_lib_rcv+0xe1 [software] reason NO_SOCKET
          2 drops at nft_do_chain+0x3e8 [software] reason NETFILTER_DROP
          $ sudo kvmscope drops                      # live, a block per second
          $ sudo kvmscope drops --duration 10s --by reason
          $ sudo kvmscope drops --netns vm1 --reason NETFILTER_DROP --json
          $ sudo kvmscope drops --location __udp4_lib_rcv --protocol ipv6
          $ perf script | kvmscope drops --kallsyms kallsyms.txt -
          $ kvmscope drops trace.dat                 # trace-cmd record -e skb:kfree_skb
          $ trace-cmd report -R trace.dat | kvmscope drops --format-file fmt -
        Exit status: 0 no drops (or stopped by Ctrl-C/SIGTERM), 1 drops were seen in a bounded run \
        (a file or --duration) or failure, 2 usage error.
        """
    )

    enum SourceChoice: String, ExpressibleByArgument, CaseIterable {
        case auto, tracefs, tracefsText = "tracefs-text", netdm
    }

    @Argument(help: "A kfree_skb capture to analyse ('-' for stdin) instead of watching live.")
    var file: String?

    @Option(name: .long, help: "Live source: auto, tracefs (binary buffers), tracefs-text (trace_pipe), netdm (NET_DM).")
    var source: SourceChoice = .auto

    @Option(name: .long, help: "Length of each report block (live default 1s; files: one summary unless given).")
    var interval: DurationArgument?

    @Option(name: .long, help: "Watch for this long (10s, 2m), then print the summary. Default: until Ctrl-C.")
    var duration: DurationArgument?

    @Option(name: .long, help: "Group lines by location (dropwatch's view), reason, protocol or comm (the task).")
    var by: DropGrouping = .location

    @Option(name: .long, help: "Only this drop reason (NO_SOCKET, NETFILTER_DROP, ...). Repeatable.")
    var reason: [String] = []

    @Option(name: .long, help: "Only drops in this kernel function (__udp4_lib_rcv), spot (__udp4_lib_rcv+0x4bc) or address. Repeatable.")
    var location: [String] = []

    @Option(name: .long, help: "Only this protocol: ipv4, ipv6, arp, 802.1Q, or a number (2048, 0x86dd). Repeatable.")
    var `protocol`: [String] = []

    @Option(name: .long, help: "Only drops in tasks of this network namespace: an `ip netns` name, a path, or pid:N (live; see above).")
    var netns: String?

    @Option(name: .long, help: "Symbols for bare addresses: /proc/kallsyms of the host and boot that made the capture.")
    var kallsyms: String?

    @Option(name: .long, help: "The capturing kernel's events/skb/kfree_skb/format, to name numeric reasons (trace-cmd report -R).")
    var formatFile: String?

    @Option(name: .long, help: "Lines per block before the rest is summed.")
    var top: Int = 20

    @Option(name: .long, help: "Live tracefs: ring buffer per CPU, in KiB.")
    var bufferKb: Int = 8192

    @Option(name: .long, help: "Live tracefs: where tracefs is.")
    var tracefs: String = Tracefs.defaultRoot

    @OptionGroup var output: OutputOptions

    func validate() throws {
        let stdinUses = [file, kallsyms, formatFile].filter { $0 == "-" }.count
        if stdinUses > 1 { throw ValidationError("only one input can be standard input ('-')") }
        if file != nil {
            if source != .auto { throw ValidationError("--source is for live watching; a FILE is read as it is") }
            if duration != nil { throw ValidationError("--duration is for live watching, not a FILE") }
            if netns != nil { throw ValidationError("--netns needs live watching: a capture has no namespaces") }
        } else if formatFile != nil {
            throw ValidationError("--format-file is for reading a FILE (live watching reads this kernel's own)")
        }
        if top < 1 || top > 100_000 { throw ValidationError("--top must be 1...100000") }
        if bufferKb < 64 || bufferKb > 4 << 20 { throw ValidationError("--buffer-kb must be 64...4194304") }
        if let i = interval, i.seconds < 0.05 { throw ValidationError("--interval must be at least 50ms") }
        for r in reason where r.isEmpty || !r.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
            throw ValidationError("--reason '\(r)' is not a drop reason name (like NO_SOCKET)")
        }
        for l in location where DropFilter.LocationPattern(l) == nil {
            throw ValidationError("--location '\(l)' is not a function, function+0xOFFSET or 0xADDRESS")
        }
        for p in `protocol` where EtherType.parse(p) == nil {
            throw ValidationError("--protocol '\(p)' is not a protocol name (ipv4, ipv6, arp, ...) or number")
        }
    }

    var filter: DropFilter {
        DropFilter(reasons: Set(reason), locations: location.compactMap(DropFilter.LocationPattern.init),
                   protocols: Set(`protocol`.compactMap(EtherType.parse)))
    }

    func run() throws {
        let renderer = DropTextRenderer(grouping: by, style: output.style, top: top)
        let summary: DropRunSummary
        let bounded: Bool
        if let file {
            summary = try runFile(file, renderer: renderer)
            bounded = true
        } else {
            let (s, interrupted) = try runLive(renderer: renderer)
            summary = s
            bounded = !interrupted
        }
        if output.json {
            CLIOutput.write(try DropJSONRenderer.summary(summary))
        } else {
            CLIOutput.write(renderer.summary(summary))
        }
        if bounded && summary.tally.total > 0 { throw ExitCode.failure }
    }

    // MARK: files

    func runFile(_ path: String, renderer: DropTextRenderer) throws -> DropRunSummary {
        var analysis = DropFileAnalysis()
        analysis.filter = filter
        analysis.grouping = by
        analysis.interval = interval?.seconds
        if let formatFile {
            let text = try Self.readSmallText(formatFile)
            do {
                analysis.reasonNames = try TracepointFormat.parse(text).symbolTables["reason"] ?? [:]
            } catch {
                throw DropsError.badFormatFile(path: formatFile, detail: "\(error)")
            }
        }
        if let kallsyms { analysis.symbols = try KernelSymbolTable.load(path: kallsyms) }
        let stream = try FileByteSource(path: path)
        let result = try analysis.run(stream) { tally in
            if output.json { CLIOutput.write(try DropJSONRenderer.interval(tally)) }
            else { CLIOutput.write(renderer.interval(tally, label: Self.traceClockLabel(tally))) }
        }
        // Not one kfree_skb or consume_skb line: a trace of other events (or no format at all) says
        // nothing about drops, so it is refused rather than reported as "0 drops".
        if let i = result.summary.input, i.drops == 0, i.consumed == 0, i.lines > i.headerLines,
           i.otherEvents == 0 || result.formatName == nil {
            let others = i.otherEvents > 0 ? ", only \(i.otherEvents) other trace events: was skb:kfree_skb enabled?" : ""
            throw KVMScopeError.unsupportedFormat(path: stream.name, detail:
                "no skb:kfree_skb events in \(i.lines) lines (expected ftrace trace text, trace-cmd report or perf script of skb:kfree_skb\(others))")
        }
        return result.summary
    }

    /// A small text input (a tracepoint format file: a few KiB) read like every other input:
    /// `-` is stdin, compressed copies are decompressed, an empty one is refused.
    static func readSmallText(_ path: String, limit: Int = 1 << 20) throws -> String {
        let source = try FileByteSource(path: path)
        let bytes = try source.readAll(limit: limit) {
            KVMScopeError.unsupportedFormat(path: source.name, detail: "larger than \(limit >> 20) MiB, not a tracepoint format file")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func traceClockLabel(_ t: DropTally) -> String {
        guard let s = t.start, let e = t.end else { return "interval" }
        return String(format: "%.6f–%.6f s (trace clock)", s, e)
    }

    static func wallClockLabel(_ t: DropTally) -> String {
        guard let s = t.start, let e = t.end else { return "interval" }
        var time = time_t(e)
        var tmv = tm()
        localtime_r(&time, &tmv)
        return String(format: "%02d:%02d:%02d (%.1f s)", tmv.tm_hour, tmv.tm_min, tmv.tm_sec, e - s)
    }

    // MARK: live

    func runLive(renderer: DropTextRenderer) throws -> (DropRunSummary, Bool) {
        var options = LiveDropMonitor.Options()
        options.interval = interval?.seconds ?? 1
        options.duration = duration?.seconds
        options.filter = filter
        options.grouping = by
        var netnsPath: String?
        if let netns {
            let (inode, path) = try TaskContextResolver.resolveNamespace(netns)
            options.netnsInode = inode
            netnsPath = path
        }
        let symbols = try loadLiveSymbols()
        let source = try openSource(symbols: symbols)
        let monitor = LiveDropMonitor(source: source, symbols: symbols, options: options)
        var what = "watching drops via \(monitor.sourceDetail)"
        if let netnsPath { what += ", tasks in \(netnsPath)" }
        monitor.onReady = {
            CLIOutput.error(what + (options.duration.map { String(format: " for %.1f s", $0) } ?? "") + "; Ctrl-C to stop")
        }
        defer { if case let .tracefs(t) = source { try? t.close() } }
        let summary = try monitor.run { tally in
            if output.json {
                CLIOutput.write(try DropJSONRenderer.interval(tally))
            } else if tally.total > 0 || tally.lost > 0 || tally.lostUnknown {
                CLIOutput.write(renderer.interval(tally, label: Self.wallClockLabel(tally)))
            }
        }
        if case let .tracefs(t) = source { try t.close() }
        if case let .netdm(n) = source { n.stop() }
        return (summary, StopSignals.requested)
    }

    func loadLiveSymbols() throws -> KernelSymbolTable? {
        if let kallsyms { return try KernelSymbolTable.load(path: kallsyms) }
        return try? KernelSymbolTable.load()
    }

    func openSource(symbols: KernelSymbolTable?) throws -> LiveDropMonitor.Source {
        var request = DropSourceSelection.Request()
        request.preference = DropSourceSelection.Preference(rawValue: source.rawValue) ?? .auto
        request.tracefs.tracefsRoot = tracefs
        request.tracefs.bufferKB = bufferKb
        request.reasons = reason
        request.protocols = `protocol`
        request.locations = location
        request.netnsFilter = netns != nil
        request.symbols = symbols
        return try DropSourceSelection.open(request) { CLIOutput.warning($0) }
    }
}
