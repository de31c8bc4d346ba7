import Foundation
import KVMScopeTracefs

/// `kvmscope exits --record`: traces kvm_exit/kvm_entry in a private tracefs instance for a
/// while and analyses the stream as it arrives, exactly as a file would be analysed.
public struct KVMExitRecorder {
    public struct Options: Sendable {
        public var seconds: Double = 10
        /// Only this process's threads (QEMU's vCPU threads), via a common_pid event filter.
        public var pid: Int32?
        public var bufferKB = 4096
        public var tracefsRoot = Tracefs.defaultRoot
        public var procRoot = "/proc"
        public var effectiveUID: uid_t = geteuid()
        /// Also recorded when present: they show what an exit did (I/O, MMIO, MSR, userspace) in
        /// the slow-exit log, and prove guests ran even where kvm_exit does not fire.
        public var contextEvents = ["kvm/kvm_userspace_exit", "kvm/kvm_pio", "kvm/kvm_mmio", "kvm/kvm_msr"]
        public init() {}
    }

    public static let requiredEvents = ["kvm/kvm_exit", "kvm/kvm_entry"]
    /// tracefs rejects filter strings of a page or more.
    static let maxFilterLength = 4000

    public let options: Options
    public init(options: Options) { self.options = options }

    /// Checks everything that can be checked before creating anything: root, tracefs, the
    /// tracepoints, the pid. Throws the one-line reason when recording is impossible.
    public func preflight() throws -> (Tracefs, [Int32]) {
        let fs = try Tracefs.locate(root: options.tracefsRoot, effectiveUID: options.effectiveUID)
        let missing = Self.requiredEvents.filter { e in
            let p = e.split(separator: "/")
            return !fs.hasEvent(String(p[0]), String(p[1]))
        }
        if !missing.isEmpty {
            throw TracefsError.missingEvents(root: fs.root, events: missing.map { $0.replacingOccurrences(of: "/", with: ":") },
                                             hint: "KVM is not loaded (modprobe kvm_intel or kvm_amd) or not built in")
        }
        var threads: [Int32] = []
        if let pid = options.pid {
            let dir = "\(options.procRoot)/\(pid)/task"
            guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: dir) else {
                throw ExitsError.noSuchProcess(pid: pid, procDirectory: dir)
            }
            threads = tasks.compactMap { Int32($0) }.sorted()
        }
        return (fs, threads)
    }

    /// The event filter for the pid's threads: tracefs matches common_pid against thread ids.
    public static func pidFilter(_ threads: [Int32]) -> String? {
        guard !threads.isEmpty else { return nil }
        return threads.map { "common_pid == \($0)" }.joined(separator: " || ")
    }

    /// Records and analyses. `onStart` runs once tracing is on (tests start a guest there).
    public func record(analysis: ExitAnalysisOptions, onStart: ((TracefsInstance) -> Void)? = nil) throws -> ExitsReport {
        let (fs, threads) = try preflight()
        StopSignals.install()
        for stale in TracefsInstance.staleInstances(in: fs, procRoot: options.procRoot) {
            rmdir(fs.path("instances/\(stale)"))   // left by a kvmscope killed with SIGKILL
        }
        let instance = try TracefsInstance(in: fs)
        defer { try? instance.remove() }
        try instance.setBufferSize(kilobytes: options.bufferKB)
        var filter = Self.pidFilter(threads)
        if let f = filter, f.count > Self.maxFilterLength {
            // Too many threads for one filter: the instance's own pid list does the same job.
            try instance.write("set_event_pid", threads.map(String.init).joined(separator: " "))
            filter = nil
        }
        let context = options.contextEvents.filter { e in
            let p = e.split(separator: "/")
            return fs.hasEvent(String(p[0]), String(p[1]))
        }
        for e in Self.requiredEvents + context { try instance.enable(e, filter: filter) }
        try instance.setTracingOn(true)

        let started = DispatchTime.now()
        let pipe = try instance.openTracePipe(until: started + options.seconds)
        onStart?(instance)
        var report = try KVMExitTraceReader.analyze(pipe, format: FtraceKVMFormat(), detect: false, options: analysis)
        let stopped = pipe.stoppedAt ?? DispatchTime.now()
        pipe.close()
        report.lost.ringBufferOverruns = instance.lostEvents()
        let instancePath = instance.path
        try instance.remove()

        report.input = "live: \(instancePath)"
        let contextCount = report.lines.otherEvents
        var note: String?
        if report.lines.kvmExit == 0 && report.lines.kvmEntry == 0 {
            note = Self.noEventsNote(contextEvents: contextCount, pid: options.pid)
        }
        report.recording = RecordingInfo(
            tracefs: fs.root, instance: instancePath, requestedSeconds: options.seconds,
            recordedSeconds: Double(stopped.uptimeNanoseconds - started.uptimeNanoseconds) / 1e9,
            interrupted: pipe.interrupted, pid: options.pid, threads: threads,
            events: instance.enabledEvents.map { $0.replacingOccurrences(of: "/", with: ":") },
            contextEvents: contextCount, note: note)
        return report
    }

    /// Why a recording saw no kvm_exit/kvm_entry, as precisely as the host lets us say.
    static func noEventsNote(contextEvents: Int, pid: Int32?) -> String {
        if contextEvents > 0 {
            var s = "guests ran (\(contextEvents) other kvm events) but no kvm_exit/kvm_entry fired: this host's KVM does not emit them"
            if FileManager.default.fileExists(atPath: "/sys/module/kvm_pvm") {
                s += " (KVM here is kvm_pvm, which runs guests without VMX/SVM exits)"
            }
            return s
        }
        if let pid { return "no KVM exits recorded: process \(pid) ran no vCPU during the recording (is it QEMU, and is the guest running?)" }
        return "no KVM exits recorded: no KVM guest ran on this host during the recording"
    }
}
