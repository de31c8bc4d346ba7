/// One boot of the guest in a log: a kern.log or journal keeps several, a serial console of a
/// VM that rebooted too. Uptime stamps restart with each boot, so a finding is only comparable
/// with host times through its own boot.
public struct GuestBoot: Sendable, Equatable, Encodable {
    /// 1-based, in log order; every GuestLogLocation names one.
    public var index: Int
    /// The journal's `_BOOT_ID` (128-bit id, 32 hex digits), when the log carries it.
    public var bootId: String?
    /// From the boot's `Linux version 6.1.0-56-amd64 (...)` line, when logged.
    public var kernelVersion: String?
    /// What made the reader start this boot.
    public var startedBy: Start
    public var firstLine: Int
    public var lastLine: Int
    /// Kernel messages in this boot (a replayed dmesg of the same boot adds to them).
    public var kernelMessages = 0
    /// Time of the boot's first and last stamped kernel message (uptime, wall clock or both).
    public var firstTime: GuestLogTime?
    public var lastTime: GuestLogTime?
    /// Lowest and highest uptime seen in the boot (lines can be out of order on a console).
    public var firstUptimeMicroseconds: Int64?
    public var lastUptimeMicroseconds: Int64?

    public enum Start: String, Sendable, Codable {
        /// The log's first kernel message (the boot began earlier or is the log's start).
        case startOfLog = "start-of-log"
        /// A `Linux version` line after other messages of a boot.
        case linuxVersion = "linux-version"
        /// Uptime stamps went back and did not repeat the earlier boot's lines.
        case uptimeReset = "uptime-reset"
        /// The journal's `_BOOT_ID` changed (or journalctl's `-- Boot ID --` line).
        case bootId = "boot-id"
        /// The line after the kernel's `reboot: Restarting system` / `Power down` / `System halted`.
        case reboot = "reboot"
    }

    public init(index: Int, startedBy: Start, line: Int, bootId: String? = nil) {
        self.index = index; self.startedBy = startedBy; self.firstLine = line; self.lastLine = line
        self.bootId = bootId
    }

    /// Called for every kernel message: kept to a few compares (the per-line path).
    @inline(__always)
    mutating func note(line: Int, time: GuestLogTime) {
        kernelMessages += 1
        if line > lastLine { lastLine = line }
        if let us = time.uptimeMicroseconds {
            if us > (lastUptimeMicroseconds ?? .min) {
                lastUptimeMicroseconds = us
                if time.wallClock != nil || lastTime != nil { lastTime = time }
            }
            if us < (firstUptimeMicroseconds ?? .max) { firstUptimeMicroseconds = us }
            if firstTime == nil { firstTime = time; lastTime = time }
        } else if time.wallClock != nil {
            if firstTime == nil { firstTime = time }
            lastTime = time
        }
    }

    enum CodingKeys: String, CodingKey {
        case index, bootId, kernelVersion, startedBy, firstLine, lastLine, kernelMessages
        case firstUptimeSeconds, lastUptimeSeconds, firstWallClock, lastWallClock
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(index, forKey: .index)
        try c.encode(bootId, forKey: .bootId)
        try c.encode(kernelVersion, forKey: .kernelVersion)
        try c.encode(startedBy.rawValue, forKey: .startedBy)
        try c.encode(firstLine, forKey: .firstLine)
        try c.encode(lastLine, forKey: .lastLine)
        try c.encode(kernelMessages, forKey: .kernelMessages)
        try c.encode(firstUptimeMicroseconds.map { Double($0) / 1e6 }, forKey: .firstUptimeSeconds)
        try c.encode(lastUptimeMicroseconds.map { Double($0) / 1e6 }, forKey: .lastUptimeSeconds)
        try c.encode(firstTime?.wallClock?.description, forKey: .firstWallClock)
        try c.encode(lastTime?.wallClock?.description, forKey: .lastWallClock)
    }
}

/// Why a guest-log input cannot be used. One line each (printed after `kvmscope: `).
public enum GuestLogError: KVMScopeFailure, Equatable {
    /// Not one line of the input was recognised as a kernel message: it is some other file
    /// (a QEMU trace, a QMP stream, /etc/passwd, a journal format not read), and reading it as
    /// a guest log would report a clean bill of health it cannot give.
    case noKernelMessages(path: String)

    public var description: String {
        switch self {
        case let .noKernelMessages(path):
            return "no kernel messages found in \(path): not a guest kernel log?"
        }
    }

    /// The input was given for the wrong role (exit status 2).
    public var isUsageError: Bool { true }
}

extension GuestLogInputStats {
    /// Throws GuestLogError.noKernelMessages when the input held no kernel message at all:
    /// what `kvmscope guest` and `explain` call after reading a guest log.
    public func requireKernelMessages(source: String) throws {
        if recognisedKernelLines == 0 { throw GuestLogError.noKernelMessages(path: source) }
    }
}
