import Foundation
import KVMScopeCore
import KVMScopeTrace
import KVMScopeTracefs
import KVMScopeHost

/// Attaches to a running QEMU through its monitor, turns on the trace events the analyses
/// read, points QEMU's log at a file kvmscope reads, records trace, QMP events, block stats and
/// the host kernel's messages into a capture directory `explain` reads — and leaves the VM as it
/// found it: exactly the events it turned on are turned off, the log goes back where it went.
///
/// It never pauses, resumes or changes the VM's disks: the only commands it sends are queries,
/// `trace-event-set-state` and HMP `logfile`.
public final class VMRecorder: @unchecked Sendable {
    public let monitor: QMPMonitor
    public let process: QEMUProcess
    public let options: RecordOptions
    public var onNotice: ((RecordNotice) -> Void)?
    /// Called once the VM is set up for recording (`record -- CMD` starts CMD here).
    public var onAttached: (() -> Void)?
    /// Polled each tick: a stop reason and its detail stop the recording (`record -- CMD`:
    /// `command-exited` when the command exited; `watch --auto-record`: `watch-stopped`, `disk-limit`).
    public var shouldStop: (() -> (reason: String, detail: String)?)?
    private let noticeLock = NSLock()

    public init(monitor: QMPMonitor, process: QEMUProcess, options: RecordOptions) {
        self.monitor = monitor; self.process = process; self.options = options
    }

    private func notify(_ n: RecordNotice) { noticeLock.lock(); onNotice?(n); noticeLock.unlock() }

    // MARK: - Run

    /// Records until a stop condition; returns the capture manifest (also saved as capture.json).
    /// The VM is restored on every path out of here, errors included.
    public func run() throws -> CaptureManifest {
        let dir = options.outputDirectory
        try Self.prepareOutput(dir)
        var state = RecordState(qmp: monitor.address, qemuPid: process.pid, logFileBefore: process.logFile)
        let started = CaptureManifest.now()
        var missing: [String] = []
        var counts = CaptureManifest.Counts()

        // What is there, before anything changes.
        _ = try monitor.execute("query-status")   // a monitor that answers queries, before anything changes
        let block = try monitor.execute("query-block")
        let devices = ((block as? [[String: Any]]) ?? []).compactMap { $0["device"] as? String ?? $0["qdev"] as? String }
        let states = try monitor.execute("trace-event-get-state", ["name": "*"])
        let plan = TraceEventPlan(states: states as? [[String: Any]] ?? [], wanted: options.events)

        let qmpFile = CaptureFile(directory: dir, base: "qmp", ext: "jsonl")
        let statsFile = CaptureFile(directory: dir, base: "blockstats", ext: "jsonl")
        let blockFile = CaptureFile(directory: dir, base: "query-block", ext: "jsonl")
        let segment = options.flightRecorderBytes.map { max(64 << 10, $0 / 4) } ?? options.rotateBytes
        let keep = options.flightRecorderBytes != nil ? 4 : options.rotateKeep
        let traceFile = CaptureFile(directory: dir, base: "trace", ext: "log", segmentBytes: segment, keep: keep)
        var hostFile: CaptureFile?
        var kmsg: KernelMessageDevice?
        if options.hostKernel {
            do {
                kmsg = try KernelMessageDevice(path: options.kmsgPath)
                hostFile = CaptureFile(directory: dir, base: "host-dmesg", ext: "log")
                if kmsg?.mark("kvmscope record: begin, host kernel messages for \(monitor.address)") != true {
                    missing.append("host kernel log marks: cannot write \(options.kmsgPath): where the host log is silent, its span is only that of the messages it has")
                }
            } catch {
                missing.append("host kernel messages: \(error) — the host layer is not covered by this capture")
            }
        }
        var blockTrace: HostBlockErrorTrace?
        var blockTraceFile: CaptureFile?
        if options.hostKernel {
            do {
                let t = try HostBlockErrorTrace(tracefs: try Tracefs.locate())
                blockTrace = t
                blockTraceFile = CaptureFile(directory: dir, base: "host-block-errors", ext: "log")
                t.writeMark("kvmscope record: begin, block_rq_error for \(monitor.address)")
            } catch {
                missing.append("host block_rq_error tracepoint: \(error) — failed host block requests are known only from the host kernel log, whose I/O error messages are rate-limited")
            }
        }
        var cmdlineName: String?
        if let pid = process.pid, let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") {
            cmdlineName = "qemu-cmdline"
            FileManager.default.createFile(atPath: (dir as NSString).appendingPathComponent("qemu-cmdline"), contents: raw,
                                           attributes: [.posixPermissions: 0o600])
        } else {
            missing.append("QEMU's command line: its pid is unknown over \(monitor.address) (give --pid): the disk map and werror/rerror settings are not captured")
        }
        try blockFile.append(Self.snapshotLine(block))
        try blockFile.flush()

        let stamping = !process.logsTimestamps
        let uid = (monitor as? QMPSocketMonitor)?.peerUID ?? process.userID()
        let logPlan = try TraceLogPlan.choose(process: process, uid: uid, gid: process.groupID())
        let tail: TraceLogSource
        switch logPlan {
        case let .redirect(staging):
            tail = try QEMULogTail(directory: staging, owner: uid, group: process.groupID())
            state.stagingDirectory = staging
        case let .follow(path, why):
            tail = QEMULogFollower(path: path)
            warnings.append(why)
        }

        func makeManifest(_ reason: String, _ detail: String) -> CaptureManifest {
            CaptureManifest(
                kvmscopeVersion: KVMScopeVersion.string, qmp: monitor.address, qemuVersion: monitor.qemuVersion,
                qemuPid: process.pid, startTime: started, endTime: CaptureManifest.now(),
                stopReason: reason, stopDetail: detail,
                files: .init(trace: traceFile.names.isEmpty ? [traceFile.firstName] : traceFile.names, qmpEvents: "qmp.jsonl",
                             hostKernelLog: hostFile.map { _ in "host-dmesg.log" },
                             hostBlockErrors: blockTraceFile.map { _ in "host-block-errors.log" },
                             blockStats: "blockstats.jsonl", queryBlock: "query-block.jsonl", qemuCommandLine: cmdlineName),
                traceEvents: .init(turnedOn: plan.toTurnOn, alreadyOn: plan.alreadyOn, notInThisQEMU: plan.notInThisQEMU),
                traceTimestamps: stamping ? "arrival" : "qemu", arrivalResolutionSeconds: stamping ? Self.tick : 0,
                hostKernelClock: kmsg.map { $0.calibrated ? "calibrated" : "estimated" },
                hostBlockTrace: blockTrace.map { .init(records: $0.records, lostRecords: $0.finalLost, wallOffsetMicroseconds: $0.wallOffsetMicroseconds,
                                                       devices: $0.devices) },
                counts: counts, missing: missing, restored: state.restored)
        }
        // Reserves the manifest's space, and says "recording" if record never gets to finish.
        try makeManifest("recording", "record was still recording (or was killed): `kvmscope record --restore -o DIR` undoes its changes").save(directory: dir)

        // Changes, each written to the state file before it is made (`record --restore`).
        state.eventsTurnedOn = plan.toTurnOn
        try state.save(directory: dir)
        var stopReason = "error", stopDetail = ""
        var live: LiveTracker?
        do {
            // The log first, then the events: no trace line of record's lands in the VM's own log.
            if case .redirect = logPlan {
                state.logFileRedirected = true
                try state.save(directory: dir)
            }
            try tail.start(monitor)
            for name in plan.toTurnOn { _ = try monitor.execute("trace-event-set-state", ["name": name, "enable": true]) }
            if options.live { live = try LiveTracker { [weak self] n in self?.noticeFromTrace(n) } }
            notify(.attached(qemu: monitor.qemuVersion, pid: process.pid, devices: devices, turnedOn: plan.toTurnOn.count,
                             alreadyOn: plan.alreadyOn.count, timestamps: stamping ? "arrival" : "qemu", missing: missing))
            if case let .follow(_, why) = logPlan { notify(.warning(why)) }
            onAttached?()
            (stopReason, stopDetail) = try loop(tail: tail, trace: traceFile, qmp: qmpFile, stats: statsFile, block: blockFile,
                                                kmsg: kmsg, host: hostFile, blockTrace: blockTrace, blockTraceFile: blockTraceFile,
                                                live: live, stamping: stamping,
                                                knownEvents: plan.allNames, counts: &counts)
        } catch {
            stopReason = error is KVMScopeError ? "output-failed" : "error"
            stopDetail = "\(error)"
        }
        // Restore first (QEMU closes our staging file), then read what QEMU wrote last.
        let restoreProblem = Self.restore(&state, monitor: monitor, directory: dir)
        let deliver = lineHandler(trace: traceFile, live: live, stamping: stamping, knownEvents: plan.allNames)
        try? tail.finish(lines: deliver.handle)
        counts.traceLines = deliver.lines
        tail.remove()
        live?.finish()
        if let k = kmsg, let host = hostFile {
            k.mark("kvmscope record: end, host kernel messages for \(monitor.address)")
            for line in k.readAvailable() { try? host.append(line) }
        }
        if let t = blockTrace, let f = blockTraceFile {
            t.writeMark("kvmscope record: end, block_rq_error for \(monitor.address)")
            for line in t.finish() { try? f.append(line) }
            if t.finalLost > 0 {
                missing.append("host block_rq_error tracepoint: \(t.finalLost) records lost (ring buffer overrun): the recording does not list every failed host block request")
            }
        }
        for f in [traceFile, qmpFile, statsFile, blockFile] + ([hostFile, blockTraceFile].compactMap { $0 }) { try? f.finish() }
        counts.traceBytesDropped = traceFile.droppedBytes
        if let k = kmsg { counts.hostKernelMessages = k.records }
        missing += warnings
        if let restoreProblem { missing.append("restore: \(restoreProblem)") }
        let manifest = makeManifest(stopReason, stopDetail)
        do { try manifest.save(directory: dir) } catch {
            missing.append("\(CaptureManifest.fileName): \(error)")
            notify(.stopped(makeManifest(stopReason, stopDetail)))
            throw error
        }
        notify(.stopped(manifest))
        return manifest
    }

    static let tick = 0.05

    private func noticeFromTrace(_ n: VirtioBlkRequestTracker.Notice) {
        if case .failure = n { flightTrigger.set() }
        notify(.failure(n))
    }

    private let flightTrigger = OnceFlag()

    /// One pass of the recording loop per tick (50 ms): QMP events as they come, the trace
    /// QEMU wrote, kernel messages, block stats every interval.
    private func loop(tail: TraceLogSource, trace: CaptureFile, qmp: CaptureFile, stats: CaptureFile, block: CaptureFile,
                      kmsg: KernelMessageDevice?, host: CaptureFile?, blockTrace: HostBlockErrorTrace?, blockTraceFile: CaptureFile?,
                      live: LiveTracker?, stamping: Bool,
                      knownEvents: Set<String>, counts: inout CaptureManifest.Counts) throws -> (String, String) {
        if options.handlesSignals { StopSignals.install() }
        let begin = Self.monotonic()
        var nextStats = begin
        var nextStatus = begin + 1
        var firstOps: Int64?
        var warnedNoTrace = false
        var afterDeadline: Double?
        let deliver = lineHandler(trace: trace, live: live, stamping: stamping, knownEvents: knownEvents)
        defer { counts.traceLines = deliver.lines }
        while true {
            if options.handlesSignals, StopSignals.requested { return ("signal", "interrupted (SIGINT/SIGTERM)") }
            if let why = shouldStop?() { return why }
            let now = Self.monotonic()
            if let d = options.duration, now - begin >= d { return ("duration", "recorded for \(Int(d)) s") }
            if let a = afterDeadline, now >= a {
                return ("flight-recorder", "a failure was seen; recorded \(Int(options.afterSeconds)) s after it")
            }
            var fds = [pollfd(fd: monitor.pollDescriptor, events: Int16(POLLIN), revents: 0)]
            if let k = kmsg { fds.append(pollfd(fd: k.pollDescriptor, events: Int16(POLLIN), revents: 0)) }
            if let t = blockTrace { fds.append(pollfd(fd: t.pollDescriptor, events: Int16(POLLIN), revents: 0)) }
            _ = poll(&fds, nfds_t(fds.count), Int32(Self.tick * 1000))

            let events: [QMPMessage]
            do { events = try monitor.takeEvents(waiting: 0) } catch QMPError.closed {
                try tail.poll(nil, lines: deliver.handle)
                return ("monitor-closed", "QEMU closed the monitor (the VM exited)")
            }
            var shutdown = false
            for e in events {
                try qmp.append(e.line + [0x0A])
                counts.qmpEvents += 1
                let name = e.eventName ?? "?"
                if name == "BLOCK_IO_ERROR" {
                    counts.blockIOErrors += 1
                    flightTrigger.set()
                    if let b = try? monitor.execute("query-block") { try block.append(Self.snapshotLine(b)) }
                }
                if name == "SHUTDOWN" { shutdown = true }
                if Self.eventsShown.contains(name) {
                    notify(.qmpEvent(e))
                }
            }
            try qmp.flush()
            try tail.poll(monitor, lines: deliver.handle)
            try trace.flush()
            if let k = kmsg, let host {
                for line in k.readAvailable() { try host.append(line) }
                try host.flush()
            }
            if let t = blockTrace, let f = blockTraceFile {
                for line in t.readAvailable() { try f.append(line) }
                try f.flush()
            }
            if shutdown { return ("vm-shutdown", "the guest shut down") }
            if options.flightRecorderBytes != nil, afterDeadline == nil, flightTrigger.isSet {
                trace.pin()
                afterDeadline = Self.monotonic() + options.afterSeconds
            }
            if now >= nextStats {
                if let s = try? monitor.execute("query-blockstats") {
                    try stats.append(Self.snapshotLine(s)); try stats.flush()
                    counts.blockStatsSnapshots += 1
                    // Disk requests with no trace line at all: the events are on, so this QEMU
                    // does not trace to its log (a dtrace/ust-only build) — say so, once.
                    let ops = Self.operations(s)
                    if firstOps == nil { firstOps = ops }
                    if !warnedNoTrace, let f = firstOps, ops - f >= 8, deliver.lines == 0, now - begin >= 3 {
                        warnedNoTrace = true
                        let text = Self.noLogBackendAdvice(requests: ops - f, pid: process.pid, binary: process.arguments.first)
                        warnings.append(text)
                        notify(.warning(text))
                    }
                }
                nextStats = now + options.statsInterval
            }
            if now >= nextStatus {
                notify(.status(seconds: now - begin, traceLines: deliver.lines, failures: live?.failures ?? 0,
                               blockIOErrors: counts.blockIOErrors))
                nextStatus = now + 1
            }
        }
    }

    /// Warnings found while recording, added to the manifest's `missing`.
    private var warnings: [String] = []

    /// Read, write and flush requests so far, summed over the devices of a query-blockstats reply.
    static func operations(_ reply: Any) -> Int64 {
        var total: Int64 = 0
        for d in reply as? [[String: Any]] ?? [] {
            let st = d["stats"] as? [String: Any] ?? [:]
            for k in ["rd_operations", "wr_operations", "flush_operations"] { total += (st[k] as? NSNumber)?.int64Value ?? 0 }
        }
        return total
    }

    static func noLogBackendAdvice(requests: Int64, pid: Int32?, binary: String?) -> String {
        "QEMU did \(requests) disk requests but wrote no trace line: this QEMU was built without the log trace backend "
            + "(`qemu-system-x86_64 -trace help` lists events either way; distributions that ship dtrace/ust-only builds need SystemTap). "
            + "Record its events with SystemTap instead and give the output to explain as the trace: "
            + "`qemu-trace-stap run \(pid.map { "-p \($0) " } ?? "")\(binary ?? "/usr/bin/qemu-system-x86_64") 'virtio_blk_*' 'virtqueue_*' 'runstate_set' > trace.stap`"
    }

    static let eventsShown: Set<String> = ["BLOCK_IO_ERROR", "STOP", "RESUME", "SHUTDOWN", "RESET", "BLOCK_JOB_ERROR",
                                           "DEVICE_DELETED", "GUEST_PANICKED"]

    /// Writes each trace line to the capture (stamped with its arrival time when QEMU does not
    /// stamp its lines) and to the live tracker.
    private final class LineHandler {
        let trace: CaptureFile
        let live: LiveTracker?
        let stamping: Bool
        let knownEvents: Set<String>
        let pid: Int32
        var lines: Int64 = 0
        init(trace: CaptureFile, live: LiveTracker?, stamping: Bool, knownEvents: Set<String>, pid: Int32) {
            self.trace = trace; self.live = live; self.stamping = stamping; self.knownEvents = knownEvents; self.pid = pid
        }
        func handle(_ line: [UInt8]) throws {
            var out: [UInt8]
            if stamping, Self.isEventLine(line, knownEvents) {
                var ts = timespec(); clock_gettime(CLOCK_REALTIME, &ts)
                out = Array("\(pid)@\(ts.tv_sec).\(String(format: "%06d", Int(ts.tv_nsec / 1000))):".utf8) + line
            } else {
                out = line
            }
            out.append(0x0A)
            try trace.append(out)
            live?.feed(out)
            lines += 1
        }
        /// `name args…` with `name` one of this QEMU's trace events (not a warning QEMU printed).
        static func isEventLine(_ line: [UInt8], _ names: Set<String>) -> Bool {
            let end = line.firstIndex(of: 0x20) ?? line.endIndex
            return end > 0 && end < 128 && names.contains(String(decoding: line[..<end], as: UTF8.self))
        }
    }

    private var handler: LineHandler?
    private func lineHandler(trace: CaptureFile, live: LiveTracker?, stamping: Bool, knownEvents: Set<String>) -> LineHandler {
        if let h = handler { return h }
        let h = LineHandler(trace: trace, live: live, stamping: stamping, knownEvents: knownEvents, pid: process.pid ?? 0)
        handler = h
        return h
    }

    // MARK: - Restore

    /// Undoes what `state` says was done: the events turned on go off, QEMU's log goes back.
    /// Returns what could not be undone (nil: all of it), and marks the state restored.
    @discardableResult
    public static func restore(_ state: inout RecordState, monitor: QMPMonitor, directory: String) -> String? {
        var problems: [String] = []
        for name in state.eventsTurnedOn {
            do { _ = try monitor.execute("trace-event-set-state", ["name": name, "enable": false]) } catch QMPError.closed {
                // Gone with its process: nothing is left to restore. Gone while QEMU runs on
                // (it dropped the client): the events are still on, and --restore must follow.
                // QEMU closes its monitors as it exits (a SHUTDOWN, a quit, a signal): give it
                // two seconds to be gone before concluding it dropped only the client.
                if let pid = state.qemuPid, QEMUProcess.runs(pid: pid), !QEMUProcess.waitForExit(pid: pid, seconds: 2) {
                    try? state.save(directory: directory)
                    return "the monitor closed while QEMU (pid \(pid)) still runs: run `kvmscope record --restore -o \(directory)`"
                }
                state.restored = true
                try? state.save(directory: directory)
                return nil
            } catch { problems.append("\(name): \(error)") }
        }
        if state.logFileRedirected {
            do { try QEMULogTail.pointLog(monitor, at: state.logFileToRestore) } catch QMPError.closed {
            } catch { problems.append("log file: \(error)") }
        }
        // QEMU has let go of the staging files (closed on `logfile`, or it exited).
        if problems.isEmpty, let staging = state.stagingDirectory {
            for f in ["qemu-log-a", "qemu-log-b"] { unlink((staging as NSString).appendingPathComponent(f)) }
            rmdir(staging)
        }
        state.restored = problems.isEmpty
        try? state.save(directory: directory)
        return problems.isEmpty ? nil : problems.joined(separator: "; ")
    }

    // MARK: - Helpers

    /// The output directory: created mode 0700 (a trace holds guest sector numbers and disk
    /// serials); an existing one must be empty, so no earlier capture is overwritten.
    static func prepareOutput(_ dir: String) throws {
        if mkdir(dir, 0o700) == 0 { return }
        guard errno == EEXIST else { throw KVMScopeError.cannotWrite(path: dir, reason: KVMScopeError.systemMessage(errno)) }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        guard entries.isEmpty else {
            throw KVMScopeError.usage("'\(dir)' is not empty: record writes a new capture into an empty or new directory (an earlier capture is never overwritten)")
        }
        chmod(dir, 0o700)
    }

    static func snapshotLine(_ value: Any) -> String {
        var ts = timespec(); clock_gettime(CLOCK_REALTIME, &ts)
        let obj: [String: Any] = ["timestamp": ["seconds": Int(ts.tv_sec), "microseconds": Int(ts.tv_nsec / 1000)], "return": value]
        let data = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func monotonic() -> Double {
        var ts = timespec(); clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// Set once, from any thread.
final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
