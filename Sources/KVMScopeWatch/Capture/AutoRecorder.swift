import Foundation
import KVMScopeLibvirt
import KVMScopeLive

/// `--auto-record DIR`: how captures are bounded.
public struct AutoRecordSettings: Equatable, Sendable {
    /// Each capture is a new directory in here (`DOMAIN-20261203T091500Z`), as `record -o` makes.
    public var directory: String
    /// Captures running at once; a VM's error past this is counted as `skipped-busy`.
    public var maxConcurrent = 2
    /// All of DIR (earlier captures included): at this size running captures stop (`disk-limit`)
    /// and no new one starts (`skipped-disk-full`).
    public var maxDiskBytes: Int64 = 2 << 30
    /// Each capture is `record --flight-recorder` of this size: only the last this-much of trace
    /// is kept until the next failure.
    public var traceBytes = 64 << 20
    /// After that failure, record this long, then stop (`record --after`).
    public var afterSeconds: Double = 30
    /// A capture that never sees another failure stops after this long (`duration`).
    public var maxSeconds: Double = 3600
    /// A VM whose capture ended gets a new one only this long after (one incident, one capture).
    public var cooldownSeconds: Double = 3600
    /// A VM whose error got no capture for a bound is said (and counted) once this long, not
    /// once per error of a storm.
    public var skipRepeatSeconds: Double = 60

    public init(directory: String) { self.directory = directory }
}

/// Starts a bounded `record` capture of a VM on its first BLOCK_IO_ERROR, so that `explain`
/// has trace, QMP events, block stats and host messages the next time it fails (the error that
/// triggers the capture happened before it: its own trace is not in it, the watch event log has
/// it). Captures run on threads of their own, share the VM's QMP connection with its worker
/// (`SharedQMPMonitor`), restore the VM as `record` does when they end, and are bounded in
/// number, in total disk and in time (`AutoRecordSettings`).
public final class AutoRecorder: @unchecked Sendable {
    /// What a capture runs: `VMRecorder` (tests give a fake). `shouldStop` is polled each tick.
    public typealias Record = (_ options: RecordOptions, _ monitor: any QMPMonitor, _ process: QEMUProcess,
                               _ shouldStop: @escaping () -> (reason: String, detail: String)?) throws -> CaptureManifest

    public let settings: AutoRecordSettings
    private let metrics: WatchMetrics
    private let events: (any WatchEventSink)?
    private let record: Record
    private let lock = NSLock()
    private var running: Set<String> = []                 // VM keys with a capture now
    private var lastEnded: [String: Double] = [:]         // VM key → monotonic time its capture ended
    /// VM key → when its error last got no capture for a bound (`skipRepeatSeconds`).
    private var lastSkipped: [String: Double] = [:]
    private var stopRequested = false
    private var usage: (bytes: Int64, at: Double) = (0, -.infinity)
    private let allDone = NSCondition()

    public init(settings: AutoRecordSettings, metrics: WatchMetrics, events: (any WatchEventSink)?,
                record: @escaping Record = AutoRecorder.recordWithVMRecorder) {
        self.settings = settings
        self.metrics = metrics
        self.events = events
        self.record = record
        for r in Self.results { metrics.host.add(WatchMetricFamilies.watchCaptures, [r], 0) }
        metrics.host.set(WatchMetricFamilies.watchCapturesRunning, [], to: 0)
        metrics.host.set(WatchMetricFamilies.watchCaptureBytes, [], to: Double(Self.bytes(under: settings.directory)))
    }

    /// The `result` label of kvmscope_watch_captures_total.
    static let results = ["recorded", "failed", "skipped-busy", "skipped-disk-full", "skipped-no-pid"]

    /// DIR is made (mode 0700, with its parents) if missing, and must be a directory watch can
    /// create captures in: tried, with a probe directory made and removed (root's access(2)
    /// says yes to sysfs and procfs, where mkdir fails). A usage error at start otherwise.
    public static func prepare(_ settings: AutoRecordSettings) throws {
        let dir = settings.directory
        // mkdir -p, each level 0700, keeping the errno of the level that fails.
        var path = dir.hasPrefix("/") ? "" : "."
        for part in dir.split(separator: "/") {
            path += "/" + part
            if mkdir(path, 0o700) != 0, errno != EEXIST {
                let e = errno
                var st = stat()
                if stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { continue }
                throw WatchError.badAutoRecord(path: dir, reason: e == ENOTDIR ? "\((path as NSString).deletingLastPathComponent) is not a directory" : String(cString: strerror(e)))
            }
        }
        var st = stat()
        guard stat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { throw WatchError.badAutoRecord(path: dir, reason: "not a directory") }
        let probe = (dir as NSString).appendingPathComponent(".kvmscope-probe-\(getpid())")
        guard mkdir(probe, 0o700) == 0 else { throw WatchError.badAutoRecord(path: dir, reason: String(cString: strerror(errno))) }
        rmdir(probe)
    }

    /// DIR's size now, for a line at start when it is already at the bound.
    public var directoryBytes: Int64 { Self.bytes(under: settings.directory) }

    /// A VM had a BLOCK_IO_ERROR: records it unless it is being recorded, was recently, or a bound
    /// says no. `key` identifies the VM (its source); `connect` gives the capture its monitor and
    /// the QEMU's pid, on the capture's thread (a slow libvirt does not hold up the caller).
    func trigger(key: String, domain: String, address: String,
                 connect: @escaping @Sendable () throws -> (monitor: any QMPMonitor, pid: Int32?)) {
        let now = VMWorker.now()
        // Every BLOCK_IO_ERROR of a storm comes here: decided under one lock, with the directory
        // size measured at most once a second; only a capture that starts costs more. Decided and
        // reserved together, so two VMs failing at once cannot both take the last slot.
        let decision: String? = lock.withLock {
            if stopRequested || running.contains(key) { return "" }
            if let ended = lastEnded[key], now - ended < settings.cooldownSeconds { return "" }
            var skip: String?
            if running.count >= settings.maxConcurrent { skip = "skipped-busy" }
            else if diskBytesLocked(now: now, fresh: false) >= settings.maxDiskBytes { skip = "skipped-disk-full" }
            if let skip {
                // Said and counted once per skipRepeatSeconds; the VM is recorded at its first
                // error after a slot frees, whenever that is.
                if let said = lastSkipped[key], now - said < settings.skipRepeatSeconds { return "" }
                lastSkipped[key] = now
                return skip
            }
            lastSkipped[key] = nil
            running.insert(key)
            return nil
        }
        if let decision {
            if !decision.isEmpty { skipped(decision, domain: domain, address: address) }
            return
        }
        var options = RecordOptions(outputDirectory: Self.newDirectory(in: settings.directory, domain: domain))
        options.flightRecorderBytes = settings.traceBytes
        options.afterSeconds = settings.afterSeconds
        options.duration = settings.maxSeconds
        options.live = true          // a failure seen in the trace triggers the flight recorder too
        options.handlesSignals = false
        let captureOptions = options
        let thread = Thread { [self] in run(key: key, domain: domain, address: address, options: captureOptions, connect: connect) }
        thread.name = "kvmscope-capture"
        thread.stackSize = 1 << 20
        metrics.host.set(WatchMetricFamilies.watchCapturesRunning, [], to: Double(capturesRunning))
        thread.start()
    }

    private func skipped(_ result: String, domain: String, address: String) {
        metrics.host.add(WatchMetricFamilies.watchCaptures, [result])
        let why: String
        switch result {
        case "skipped-no-pid": why = "no capture: the QEMU process behind \(address) is not known (a TCP monitor), and record needs it to restore QEMU's log"
        case "skipped-busy": why = "no capture now: \(settings.maxConcurrent) capture\(settings.maxConcurrent == 1 ? " is" : "s are") running already (--auto-record-limit); this VM is recorded at its first error after one ends"
        default: why = "no capture: \(settings.directory) holds \(Self.mib(usageBytes)) MiB, the --auto-record-disk limit is \(Self.mib(settings.maxDiskBytes)) MiB"
        }
        log(domain: domain, address: address, event: "skipped", reason: result, capture: nil, message: why)
    }

    private func run(key: String, domain: String, address: String, options: RecordOptions,
                     connect: () throws -> (monitor: any QMPMonitor, pid: Int32?)) {
        let dir = options.outputDirectory
        var result = "failed"
        var reason: String? = "error", message: String
        var capture: String? = dir
        var began = false
        do {
            let (client, found) = try connect()
            defer { client.close() }
            if let pid = found {
                // The directory first: a capture that cannot even begin is `failed`, never `started`.
                guard mkdir(dir, 0o700) == 0 else {
                    throw WatchError.badAutoRecord(path: dir, reason: String(cString: strerror(errno)))
                }
                let taint = LibvirtAddress.isLibvirt(address) ? " (through libvirt's QMP passthrough: libvirt marks the domain tainted, custom-monitor, until it shuts down)" : ""
                began = true
                log(domain: domain, address: address, event: "started", reason: nil, capture: dir,
                    message: "recording into \(dir) until the next failure and \(Int(settings.afterSeconds)) s after it (at most \(Int(settings.maxSeconds)) s)\(taint); then `kvmscope explain \(dir)`")
                let process = (try? QEMUProcess.read(pid: pid)) ?? QEMUProcess(pid: pid, arguments: [])
                let m = try record(options, client, process) { [weak self] in self?.stopReason() }
                reason = m.stopReason
                if m.restored && !["error", "output-failed"].contains(m.stopReason) { result = "recorded" }
                message = "\(m.stopReason): \(m.stopDetail)" + (m.restored ? "; the VM is as it was" : "; NOT restored: run `kvmscope record --restore -o \(dir)`")
            } else {
                result = "skipped-no-pid"; reason = nil; capture = nil; message = ""
            }
        } catch {
            message = "\(error)"
            // A capture that never began has no stop reason and no directory.
            if !began { reason = nil; capture = nil }
        }
        let now = VMWorker.now()
        let left: Int = lock.withLock {
            running.remove(key)
            lastEnded[key] = now
            usage.at = -.infinity
            return running.count
        }
        metrics.host.set(WatchMetricFamilies.watchCapturesRunning, [], to: Double(left))
        if result == "skipped-no-pid" {
            skipped(result, domain: domain, address: address)
        } else {
            metrics.host.add(WatchMetricFamilies.watchCaptures, [result])
            metrics.host.set(WatchMetricFamilies.watchCaptureBytes, [], to: Double(lock.withLock { diskBytesLocked(now: now, fresh: true) }))
            log(domain: domain, address: address, event: result == "recorded" ? "ended" : "failed", reason: reason,
                capture: capture, message: message)
        }
        allDone.lock(); allDone.broadcast(); allDone.unlock()
    }

    /// Polled by each capture every tick: watch stopping, or DIR past its size.
    private func stopReason() -> (reason: String, detail: String)? {
        lock.withLock {
            if stopRequested { return ("watch-stopped", "watch stopped") }
            let bytes = diskBytesLocked(now: VMWorker.now(), fresh: false)
            if bytes >= settings.maxDiskBytes {
                return ("disk-limit", "\(settings.directory) holds \(Self.mib(bytes)) MiB, at or past the --auto-record-disk limit of \(Self.mib(settings.maxDiskBytes)) MiB")
            }
            return nil
        }
    }

    /// Stops every capture (each restores its VM) and waits up to `seconds` for them.
    public func stop(waiting seconds: Double) {
        lock.withLock { stopRequested = true }
        let end = Date().addingTimeInterval(seconds)
        allDone.lock()
        while lock.withLock({ !running.isEmpty }), allDone.wait(until: end) {}
        allDone.unlock()
    }

    public var capturesRunning: Int { lock.withLock { running.count } }

    // MARK: - Helpers

    private var usageBytes: Int64 { lock.withLock { usage.bytes } }

    /// Under `lock`. DIR's size, measured at most once a second (each capture asks every tick).
    private func diskBytesLocked(now: Double, fresh: Bool) -> Int64 {
        if fresh || now - usage.at >= 1 {
            usage = (Self.bytes(under: settings.directory), now)
            metrics.host.set(WatchMetricFamilies.watchCaptureBytes, [], to: Double(usage.bytes))
        }
        return usage.bytes
    }

    /// Bytes of the regular files under `dir` (the blocks they hold: a sparse file counts what it uses).
    static func bytes(under dir: String) -> Int64 {
        guard let e = FileManager.default.enumerator(atPath: dir) else { return 0 }
        var total: Int64 = 0
        while let name = e.nextObject() as? String {
            var st = stat()
            if lstat((dir as NSString).appendingPathComponent(name), &st) == 0, (st.st_mode & S_IFMT) == S_IFREG {
                total += Int64(st.st_blocks) * 512
            }
        }
        return total
    }

    /// `DIR/DOMAIN-20261203T091500Z` (`-2`, `-3`… when taken), the domain reduced to file-name characters.
    static func newDirectory(in dir: String, domain: String, now: Date = Date()) -> String {
        var safe = String(domain.unicodeScalars.prefix(64).map { c -> Character in
            c.isASCII && (CharacterSet.alphanumerics.contains(c) || "._-".unicodeScalars.contains(c)) ? Character(c) : "_"
        })
        if safe.isEmpty || safe.hasPrefix(".") { safe = "vm" + safe }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let base = (dir as NSString).appendingPathComponent("\(safe)-\(f.string(from: now))")
        var path = base, n = 1
        while FileManager.default.fileExists(atPath: path) { n += 1; path = "\(base)-\(n)" }
        return path
    }

    static func mib(_ bytes: Int64) -> Int64 { bytes >> 20 }

    private func log(domain: String, address: String, event: String, reason: String?, capture: String?, message: String) {
        var r = WatchEventRecord(type: .capture, time: Date().timeIntervalSince1970, domain: domain, qmp: address, event: event)
        r.reason = reason
        r.capture = capture
        r.message = message
        events?.write(r)
    }

    /// The real capture: `VMRecorder`, as `kvmscope record --flight-recorder` runs it.
    public static func recordWithVMRecorder(_ options: RecordOptions, _ monitor: any QMPMonitor, _ process: QEMUProcess,
                                            _ shouldStop: @escaping () -> (reason: String, detail: String)?) throws -> CaptureManifest {
        let r = VMRecorder(monitor: monitor, process: process, options: options)
        r.shouldStop = shouldStop
        return try r.run()
    }
}
