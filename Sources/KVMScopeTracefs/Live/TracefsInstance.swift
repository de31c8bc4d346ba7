import Foundation

/// A private tracefs instance (`instances/kvmscope-<pid>`): its own ring buffer, event enables
/// and filters, so recording never touches the global buffer or anybody else's instance. It is
/// removed by `remove()`, on deinit, and on SIGINT/SIGTERM through `StopSignals`. Generic:
/// `kvmscope exits` enables kvm:kvm_exit/kvm_entry in it, `kvmscope drops` skb:kfree_skb.
public final class TracefsInstance {
    public let tracefs: Tracefs
    public let name: String
    public let path: String
    public private(set) var enabledEvents: [String] = []
    public private(set) var removed = false

    /// `kvmscope-<pid>` for a process's first instance, `kvmscope-<pid>-<n>` for the next ones
    /// (one process may record kvm exits and packet drops at once, and tests do): every
    /// kvmscope instance carries its owner's pid, so stale ones can be recognised.
    public static func defaultName(pid: Int32 = getpid()) -> String {
        instanceCounterLock.lock()
        defer { instanceCounterLock.unlock() }
        instanceCounter += 1
        return instanceCounter == 1 ? "kvmscope-\(pid)" : "kvmscope-\(pid)-\(instanceCounter)"
    }
    nonisolated(unsafe) private static var instanceCounter = 0
    private static let instanceCounterLock = NSLock()

    /// The owning pid in an instance name made by `defaultName` (nil for anyone else's).
    static func ownerPID(ofInstanceNamed n: String) -> Int32? {
        guard n.hasPrefix("kvmscope-") else { return nil }
        let parts = n.dropFirst("kvmscope-".count).split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let pid = Int32(parts[0]), pid > 0,
              parts.count == 1 || Int(parts[1]) != nil else { return nil }
        return pid
    }

    /// Creates the instance directory (the kernel populates it).
    public init(in tracefs: Tracefs, name: String = TracefsInstance.defaultName()) throws {
        self.tracefs = tracefs
        self.name = name
        path = tracefs.path("instances/\(name)")
        if mkdir(path, 0o755) != 0 {
            let e = errno
            if e == EEXIST { throw TracefsError.instanceExists(path: path) }
            if e == EACCES || e == EPERM { throw TracefsError.notRoot(root: tracefs.root) }
            throw TracefsError.io(path: path, reason: "cannot create tracefs instance: \(String(cString: strerror(e)))")
        }
        StopSignals.register(self)
    }

    deinit { try? remove() }

    public func file(_ relative: String) -> String { path + "/" + relative }

    /// Writes `value` to a control file of the instance (e.g. `tracing_on`).
    public func write(_ relative: String, _ value: String) throws {
        let p = file(relative)
        let fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { throw TracefsError.io(path: p, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if n != bytes.count {
            throw TracefsError.io(path: p, reason: n < 0 ? String(cString: strerror(errno)) : "short write")
        }
    }

    public func read(_ relative: String) -> String? {
        try? String(contentsOfFile: file(relative), encoding: .utf8)
    }

    /// Per-CPU ring buffer size of this instance only.
    public func setBufferSize(kilobytes: Int) throws { try write("buffer_size_kb", "\(kilobytes)") }

    /// Enables `system/event` in this instance, after setting its filter (a tracefs filter
    /// expression such as `common_pid == 42 || common_pid == 43`; nil clears it).
    public func enable(_ event: String, filter: String? = nil) throws {
        try write("events/\(event)/filter", filter ?? "0")
        try write("events/\(event)/enable", "1")
        enabledEvents.append(event)
    }

    public func setTracingOn(_ on: Bool) throws { try write("tracing_on", on ? "1" : "0") }

    /// The instance's trace_pipe as a stream that ends at `deadline` or on SIGINT/SIGTERM.
    public func openTracePipe(until deadline: DispatchTime) throws -> TracePipeByteSource {
        try TracePipeByteSource(path: file("trace_pipe"), deadline: deadline) { [weak self] in
            try? self?.setTracingOn(false)
        }
    }

    /// Events the ring buffer lost, summed over CPUs from `per_cpu/cpuN/stats`: `overrun`
    /// (overwritten before being read) plus `dropped events` (buffer full in no-overwrite mode).
    public func lostEvents() -> UInt64 {
        let dir = file("per_cpu")
        guard let cpus = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return 0 }
        var total: UInt64 = 0
        for cpu in cpus where cpu.hasPrefix("cpu") {
            guard let text = try? String(contentsOfFile: "\(dir)/\(cpu)/stats", encoding: .utf8) else { continue }
            total += Self.lostEvents(inStats: text)
        }
        return total
    }

    /// Parses one `per_cpu/cpuN/stats` file.
    public static func lostEvents(inStats text: String) -> UInt64 {
        var total: UInt64 = 0
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let key = parts[0].trimmingCharacters(in: .whitespaces)
            if key == "overrun" || key == "dropped events" {
                total += UInt64(parts[1].trimmingCharacters(in: .whitespaces)) ?? 0
            }
        }
        return total
    }

    /// Stops tracing, disables the events and removes the instance. Idempotent. The kernel
    /// refuses (EBUSY) while a file of the instance is open, so callers close the pipe first;
    /// a few retries cover a reader that is just closing.
    public func remove() throws {
        guard !removed else { return }
        try? setTracingOn(false)
        try? write("events/enable", "0")
        var attempts = 0
        while rmdir(path) != 0 {
            let e = errno
            if e == ENOENT { break }
            attempts += 1
            if e != EBUSY || attempts > 50 {
                throw TracefsError.io(path: path, reason: "cannot remove tracefs instance: \(String(cString: strerror(e)))")
            }
            usleep(20_000)
        }
        removed = true
        StopSignals.unregister(self)
    }

    /// Names of leftover `kvmscope-<pid>[-<n>]` instances whose process is gone (killed with SIGKILL):
    /// the only instances kvmscope ever removes besides its own.
    public static func staleInstances(in tracefs: Tracefs, procRoot: String = "/proc") -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: tracefs.path("instances")) else { return [] }
        return names.filter { n in
            guard let pid = ownerPID(ofInstanceNamed: n) else { return false }
            return pid != getpid() && !FileManager.default.fileExists(atPath: "\(procRoot)/\(pid)")
        }.sorted()
    }
}

/// SIGINT/SIGTERM → a flag the live readers poll, so Ctrl-C ends a recording cleanly: the
/// report of what was recorded is printed and the instance removed. Instances registered here
/// are also removed at exit() as a last resort.
public enum StopSignals {
    nonisolated(unsafe) static var flag: sig_atomic_t = 0
    nonisolated(unsafe) private static var installed = false
    nonisolated(unsafe) private static var live: [ObjectIdentifier: TracefsInstance] = [:]
    private static let lock = NSLock()

    public static var requested: Bool { flag != 0 }

    /// Installs the handlers (idempotent). `reset` clears a previous request (tests).
    public static func install(reset: Bool = true) {
        if reset { flag = 0 }
        lock.lock(); defer { lock.unlock() }
        guard !installed else { return }
        installed = true
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = { _ in StopSignals.flag = 1 }
        sigemptyset(&sa.sa_mask)
        sa.sa_flags = 0        // no SA_RESTART: poll() returns EINTR at once
        sigaction(SIGINT, &sa, nil)
        sigaction(SIGTERM, &sa, nil)
        // A parent may have blocked them (Foundation's Process spawns children with its mask).
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        atexit { StopSignals.removeAll() }
    }

    /// Simulates a signal (tests).
    public static func request() { flag = 1 }

    static func register(_ i: TracefsInstance) { lock.lock(); live[ObjectIdentifier(i)] = i; lock.unlock() }
    static func unregister(_ i: TracefsInstance) { lock.lock(); live[ObjectIdentifier(i)] = nil; lock.unlock() }

    static func removeAll() {
        lock.lock(); let all = Array(live.values); lock.unlock()
        for i in all { try? i.remove() }
    }
}
