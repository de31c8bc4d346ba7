import ArgumentParser
import Foundation
import KVMScope

/// Set by the SIGINT handler in `--follow` mode; read by the input's poll loop.
// A signal handler may only touch a sig_atomic_t, so this is a plain global, not an actor or lock.
nonisolated(unsafe) private var interruptRequested: sig_atomic_t = 0

struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Rebuild every virtio-blk and virtio-scsi request from QEMU's own trace events: failures and their cause, requests stuck in flight, latency, buses covered, the backend.",
        discussion: """
        Reads the log backend (stderr or -D file; with or without -msg timestamp=on; ISO prefix of \
        QEMU ≥ 10.1), simpletrace v4 binary files and SystemTap log output (qemu-trace-stap), \
        detected automatically. Events are decoded with QEMU's own definitions: --events FILE, else \
        /usr/share/qemu/trace-events-all when installed, always completed by a bundled set covering \
        today's and old qemu-kvm signatures of the events analysed. Enable in QEMU with:
          \(TraceCoverage.qemuOptions(for: [.virtioBlk]))
          \(TraceCoverage.qemuOptions(for: [.virtioScsi]))          (virtio-scsi disks)
          \(TraceCoverage.backendPatterns.map { "-trace '\($0)'" }.joined(separator: " "))    (the backend; the last three print a line per request)

        Examples:
          $ kvmscope trace lab/scenarios/write-eio/trace.log
          FAILURES: 1
            16:06:32.754736  write sector 2048+8  device 0x564184f66810  [backend-error, EIO, guest: IOERR]
              the storage under QEMU failed the write with EIO (Input/output error); QEMU passed it to the guest as IOERR (werror=report, or enospc (the default), which reports all but ENOSPC)
          $ kvmscope trace --json trace.log | jq '.failures[] | {operation, sector, errnoName, cause}'
          $ kvmscope trace --events-only --filter 'virtio_blk_*' --grep ret=-5 lab/scenarios/write-eio/trace.log
          virtio_blk_rw_complete 0.000 tid=21601 vdev=0x564184f66810 req=0x56418437e2c0 ret=0xfffffffffffffffb
          $ tail -f qemu.log | kvmscope trace --follow -
        Exit status: 0 no failures and nothing stuck (always with --events-only), 1 failures or leaked requests (or an unreadable input), 2 usage error (also an input that is not a QEMU trace).
        """
    )

    @Argument(help: "Trace file, or - for standard input.")
    var file: String

    @Option(name: .long, help: "QEMU trace-events file with the event definitions (default: installed trace-events-all, else bundled).")
    var events: String?

    @Option(name: .long, help: "Input format instead of detection: qemu-log, qemu-simpletrace, qemu-stap-log.")
    var format: String?

    @Flag(name: .long, help: "Print the events instead of the analysis, in QEMU simpletrace.py's line format (JSON Lines with --json).")
    var eventsOnly = false

    @Option(name: .long, parsing: .singleValue, help: "Only events whose name matches (QEMU -trace pattern, e.g. 'virtio_blk_*'); repeatable. Implies --events-only.")
    var filter: [String] = []

    @Option(name: .long, parsing: .singleValue, help: "Only events whose argument FIELD equals VALUE (ret=-5, sector=0x800, req=0x55…); repeatable, all must match. Implies --events-only.")
    var grep: [String] = []

    @Flag(name: .long, help: "Keep reading (tail -f for files, until EOF for pipes); print failures as they happen and the summary at EOF or Ctrl-C.")
    var follow = false

    @Option(name: .long, help: "Failures kept in detail in the report (the total and groups stay exact).")
    var maxFailures = 1000

    @Option(name: .long, help: "Seconds after which a request still in flight at the end counts as leaked.")
    var leakAge = 1.0

    @OptionGroup var output: OutputOptions

    var dumping: Bool { eventsOnly || !filter.isEmpty || !grep.isEmpty }

    func validate() throws {
        if let f = format, !["qemu-log", "qemu-simpletrace", "qemu-stap-log"].contains(f) {
            throw ValidationError("unknown --format '\(f)' (use qemu-log, qemu-simpletrace or qemu-stap-log)")
        }
        for g in grep where TraceFieldMatch(g) == nil {
            throw ValidationError("--grep needs FIELD=VALUE, got '\(g)'")
        }
        if maxFailures < 0 { throw ValidationError("--max-failures must be 0 or more") }
        if file == "-" && events == "-" { throw ValidationError("only one input can be standard input ('-'): the trace or --events") }
        if !(leakAge >= 0) { throw ValidationError("--leak-age must be 0 or more seconds") }
    }

    func run() throws {
        // SIGPIPE is ignored for every command in main.swift
        let catalog = try TraceEventCatalog.load(eventsFile: events)
        for name in filter where catalog.names(matching: name).isEmpty {
            CLIOutput.warning("--filter '\(name)' matches no event in the definitions (\(catalog.sources.first ?? "bundled"))")
        }
        let stream: ByteStream
        if follow {
            installInterruptHandler()
            stream = try FollowingByteSource(path: file) { interruptRequested != 0 }
        } else {
            stream = try FileByteSource(path: file)
        }
        let meter = ProgressMeter(label: stream.name, total: stream.knownSize, enabled: !follow && isatty(STDERR_FILENO) == 1)
        defer { meter.finish() }

        // All output goes through one buffer that treats a closed pipe (`| head`) as the end.
        let out = BufferedOutput()
        do {
            if dumping {
                _ = try TraceSession.dump(stream, catalog: catalog, format: format,
                                          selection: .patterns(filter), matches: grep.compactMap(TraceFieldMatch.init),
                                          style: output.json ? .jsonLines : .simpletrace, output: out,
                                          flushEachLine: follow, onProgress: meter.update)
                return
            }
            let style = output.style
            var options = VirtioBlkRequestTracker.Options()
            options.maxFailuresKept = maxFailures
            options.leakAgeSeconds = leakAge
            // --follow: a line the moment something fails, flushed at once (line-buffered).
            var noticeError: Error?
            let onNotice: ((VirtioBlkRequestTracker.Notice) -> Void)? = follow && !output.json ? { notice in
                guard noticeError == nil else { return }
                do {
                    out.buffer += TraceReportRenderer.followLine(notice, style: style).utf8
                    try out.flush()
                } catch { noticeError = error }
            } : nil
            let report = try TraceSession.analyse(stream, catalog: catalog, format: format, options: options,
                                                  onNotice: onNotice, onProgress: meter.update, live: follow)
            if let noticeError { throw noticeError }
            meter.finish()
            if output.json {
                try out.write(try TraceReportRenderer.json(report))
            } else {
                if follow { try out.write("\n") }
                try out.write(TraceReportRenderer.text(report, style: style))
            }
            try out.flush()
            if report.exitStatus != 0 { throw ExitCode(report.exitStatus) }
        } catch is BufferedOutput.BrokenPipe {
            return
        }
    }

    private func installInterruptHandler() {
        interruptRequested = 0
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in interruptRequested = 1 }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0          // no SA_RESTART: a blocked poll/read returns EINTR
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
        // A parent may have started us with these blocked (they are inherited): unblock them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
}
