/// Splits a guest log into boots as it is read, in one pass and fixed memory.
///
/// A new boot shows as a journal `_BOOT_ID` that changes, a `Linux version` line (printed
/// first by start_kernel(), init/main.c) after other messages, or uptime stamps that go back.
/// The last two also happen without a reboot: the lab's console captures (and many admins'
/// files) end with the guest's own `dmesg` of the same boot, which starts again at
/// `[    0.000000] Linux version`. Such a replay repeats, with the same stamps, every kernel
/// line the console showed (the console shows a subset of the ring buffer, by loglevel). So a
/// reset only opens a *candidate* boot: it is the same boot as soon as one of its lines
/// stamped after 0.1 s (earlier stamps repeat across boots: the clock is not running yet)
/// repeats a line of the current boot with the same stamp, and a new boot once its uptime
/// passes, by more than a second, the current boot's first such line at or after the
/// candidate's start without repeating anything. Events of a candidate wait (bounded) until
/// it is decided.
struct GuestBootTracker {
    /// Boots kept in detail; later ones are still numbered and counted.
    static let bootLimit = 1024
    /// Below this uptime (µs) stamps are not compared: many lines share 0.000000.
    static let comparableUptime: Int64 = 100_000
    /// A console line can be out of order with its neighbours by a little (printk from
    /// several CPUs): a reset is a step back of more than this, and a candidate is a new boot
    /// once it passes the line it should have repeated by this much.
    static let slack: Int64 = 1_000_000

    private(set) var boots: [GuestBoot] = []
    private(set) var count = 0
    private var currentId: String?
    private var currentMaxUptime = Int64.min
    private var ring = StampRing(capacity: 1 << 14)
    private var candidate: Candidate?
    /// After a candidate turned out to be a replay: the rest of the replay steps back too
    /// until it passes this uptime; it opens no new candidate on the way.
    private var replayUntil: Int64?
    /// The last kernel message was kernel/reboot.c's "reboot: Restarting system" (or "Power
    /// down", "System halted"): printed last before the machine resets.
    private(set) var rebootPrinted = false

    struct Candidate {
        var boot: GuestBoot
        /// The line of the current boot a replay would have to repeat (its uptime).
        var anchor: Int64?
        var sawLinuxVersion: Bool
        var maxUptime = Int64.min
        /// Opened by a step back of at most `slack` with no `Linux version` line: usually a
        /// console line printed out of order, which the next line continuing the boot settles.
        /// (A quiet console's next boot can look the same until its `dmesg` replay begins.)
        var smallStep = false
    }

    enum Resolution: Equatable {
        case none
        /// The candidate was the same boot replayed: its events belong to `current`.
        case sameBoot
        /// The candidate is a new boot (now `current`).
        case newBoot
    }

    /// 1-based index of the boot a decided line belongs to (0 before any kernel message).
    var current: Int { count }
    var pending: Bool { candidate != nil }

    /// Called for every recognised kernel message, before its event is used.
    mutating func observe(_ line: LineBytes, start: Int, number: Int, time: GuestLogTime,
                          bootId: String?) -> Resolution {
        let linuxVersion = line.matches("Linux version ", at: start)
        let us = time.uptimeMicroseconds
        if count == 0 {
            begin(GuestBoot(index: 1, startedBy: bootId != nil ? .bootId : .startOfLog, line: number, bootId: bootId))
            currentId = bootId
            noteCurrent(line, start: start, number: number, time: time, linuxVersion: linuxVersion)
            return .none
        }
        // The journal says which boot each entry is from: nothing to infer.
        if let bootId {
            var r = Resolution.none
            if candidate != nil { r = decide(newBoot: false) }
            if currentId == nil {
                currentId = bootId
                if count <= boots.count { boots[count - 1].bootId = bootId }
            } else if bootId != currentId {
                begin(GuestBoot(index: count + 1, startedBy: .bootId, line: number, bootId: bootId))
                currentId = bootId
                r = r == .sameBoot ? .sameBoot : .newBoot
            }
            noteCurrent(line, start: start, number: number, time: time, linuxVersion: linuxVersion)
            return r
        }
        if rebootPrinted {
            // The machine reset after kernel_restart()/kernel_power_off() printed: whatever the
            // log says next is a later boot (a serial console keeps running across a reboot).
            rebootPrinted = false
            begin(GuestBoot(index: count + 1, startedBy: .reboot, line: number))
            if Self.isReboot(line, start) { rebootPrinted = true }
            noteCurrent(line, start: start, number: number, time: time, linuxVersion: linuxVersion)
            return .newBoot
        }
        if Self.isReboot(line, start) { rebootPrinted = true }
        if var c = candidate {
            var result = Resolution.none
            if let us, us >= Self.comparableUptime, ring.contains(uptime: us, key: Self.key(line, start)) {
                result = decide(newBoot: false)
            } else if c.smallStep {
                if linuxVersion { c.smallStep = false }
                else if let us, us >= currentMaxUptime { result = decide(newBoot: false) }
            } else if let us, let anchor = c.anchor, us > anchor, us - anchor > Self.slack {
                result = decide(newBoot: true)
            }
            if result == .none {
                c.boot.note(line: number, time: time)
                if linuxVersion { c.sawLinuxVersion = true; if c.boot.kernelVersion == nil { c.boot.kernelVersion = Self.version(line, start) } }
                if let us { c.maxUptime = max(c.maxUptime, us) }
                candidate = c
                return .none
            }
            noteCurrent(line, start: start, number: number, time: time, linuxVersion: linuxVersion)
            return result
        }
        if let us, let r = replayUntil {
            if us > r { replayUntil = nil }
            else if !linuxVersion {
                noteCurrent(line, start: start, number: number, time: time, linuxVersion: false)
                return .none
            }
        }
        if let us {
            let stepsBack = currentMaxUptime != .min && us < currentMaxUptime
            let smallStep = stepsBack && !linuxVersion && currentMaxUptime - us <= Self.slack
            if stepsBack || (linuxVersion && currentMaxUptime != .min) {
                let anchor = ring.firstUptime(atOrAfter: max(us, Self.comparableUptime))
                if smallStep && anchor == nil {
                    noteCurrent(line, start: start, number: number, time: time, linuxVersion: false)
                    return .none
                }
                var b = GuestBoot(index: count + 1, startedBy: linuxVersion ? .linuxVersion : .uptimeReset, line: number)
                b.note(line: number, time: time)
                if linuxVersion { b.kernelVersion = Self.version(line, start) }
                if anchor == nil {
                    // Nothing of the current boot a replay would repeat: a new boot.
                    begin(b)
                    noteStamp(line, start: start, us: us)
                    return .newBoot
                }
                candidate = Candidate(boot: b, anchor: anchor, sawLinuxVersion: linuxVersion, maxUptime: us,
                                      smallStep: smallStep)
                return .none
            }
        } else if linuxVersion, count <= boots.count, boots[count - 1].kernelMessages > 0 {
            // Wall-clock-only logs (journalctl short, syslog, dmesg -T) are not replayed.
            begin(GuestBoot(index: count + 1, startedBy: .linuxVersion, line: number))
            noteCurrent(line, start: start, number: number, time: time, linuxVersion: true)
            return .newBoot
        }
        noteCurrent(line, start: start, number: number, time: time, linuxVersion: linuxVersion)
        return .none
    }

    /// journalctl's `-- Boot ID --` line: the lines after it are another boot (the reader
    /// decides a pending candidate first).
    mutating func separator(bootId: String, line: Int) -> Resolution {
        if count > 0, count <= boots.count, boots[count - 1].kernelMessages == 0 {
            boots[count - 1].bootId = bootId
            currentId = bootId
            return .none
        }
        begin(GuestBoot(index: count + 1, startedBy: .bootId, line: line, bootId: bootId))
        return .newBoot
    }

    /// Decides a candidate still open: at the end of the input, or when its events would
    /// exceed the reader's buffer. With nothing to compare, a `Linux version` line says
    /// "boot"; a step back in uptime alone does not.
    mutating func finish() -> Resolution {
        guard let c = candidate else { return .none }
        return decide(newBoot: c.sawLinuxVersion)
    }

    private mutating func decide(newBoot: Bool) -> Resolution {
        guard let c = candidate else { return .none }
        candidate = nil
        if newBoot {
            begin(c.boot)
            currentMaxUptime = c.maxUptime
            return .newBoot
        }
        if count <= boots.count {
            var b = boots[count - 1]
            b.kernelMessages += c.boot.kernelMessages
            b.lastLine = max(b.lastLine, c.boot.lastLine)
            if let f = c.boot.firstUptimeMicroseconds, f < (b.firstUptimeMicroseconds ?? .max) { b.firstUptimeMicroseconds = f }
            if let l = c.boot.lastUptimeMicroseconds, l > (b.lastUptimeMicroseconds ?? .min) {
                b.lastUptimeMicroseconds = l; b.lastTime = c.boot.lastTime
            }
            if b.kernelVersion == nil { b.kernelVersion = c.boot.kernelVersion }
            boots[count - 1] = b
        }
        currentMaxUptime = max(currentMaxUptime, c.maxUptime)
        replayUntil = currentMaxUptime
        return .sameBoot
    }

    private mutating func begin(_ boot: GuestBoot) {
        count += 1
        var b = boot
        b.index = count
        if boots.count < Self.bootLimit { boots.append(b) }
        currentMaxUptime = b.lastUptimeMicroseconds ?? .min
        currentId = b.bootId
        replayUntil = nil
        ring.removeAll()
    }

    private mutating func noteCurrent(_ line: LineBytes, start: Int, number: Int, time: GuestLogTime, linuxVersion: Bool) {
        if count <= boots.count {
            boots[count - 1].note(line: number, time: time)
            if linuxVersion, boots[count - 1].kernelVersion == nil { boots[count - 1].kernelVersion = Self.version(line, start) }
        }
        if let us = time.uptimeMicroseconds {
            if us > currentMaxUptime { currentMaxUptime = us }
            noteStamp(line, start: start, us: us)
        }
    }

    private mutating func noteStamp(_ line: LineBytes, start: Int, us: Int64) {
        if us >= Self.comparableUptime { ring.append(uptime: us, key: Self.key(line, start)) }
    }

    /// A fingerprint of the message: length and its first and last 8 bytes. With the
    /// µs stamp it tells a replayed line from another boot's; hashing every byte of every
    /// line would cost more than the rest of the per-line work.
    @inline(__always)
    static func key(_ line: LineBytes, _ start: Int) -> UInt64 {
        let n = line.count - start
        guard n > 0, let base = line.bytes.baseAddress else { return 1 }
        let p = UnsafeRawPointer(base + start)
        var h = UInt64(n) &* 0x9E37_79B9_7F4A_7C15
        if n >= 8 {
            h ^= p.loadUnaligned(as: UInt64.self)
            h = (h &* 0x87C3_7B91_1142_53D5) ^ (h >> 29)
            h ^= p.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
        } else {
            for i in 0..<n { h = (h ^ UInt64(p.load(fromByteOffset: i, as: UInt8.self))) &* 0x100_0000_01B3 }
        }
        return (h &* 0x87C3_7B91_1142_53D5) | 1
    }

    /// kernel/reboot.c (pr_fmt "reboot: "): kernel_restart() "Restarting system",
    /// kernel_halt() "System halted", kernel_power_off() "Power down".
    static func isReboot(_ line: LineBytes, _ start: Int) -> Bool {
        guard line.matches("reboot: ", at: start) else { return false }
        return line.matches("Restarting system", at: start + 8) || line.matches("Power down", at: start + 8)
            || line.matches("System halted", at: start + 8)
    }

    /// "Linux version 6.1.0-56-amd64 (debian-kernel@...) ..." → "6.1.0-56-amd64".
    static func version(_ line: LineBytes, _ start: Int) -> String? {
        let r = line.token(at: start + 14)
        guard !r.isEmpty, r.count <= 128 else { return nil }
        return line.string(r)
    }
}

/// The (uptime, fingerprint) of the current boot's latest stamped lines, in uptime order, in
/// a fixed ring: a replayed dmesg can only repeat what the kernel's ring buffer still held.
struct StampRing {
    private var uptimes: [Int64]
    private var keys: [UInt64]
    private var head = 0      // index of the oldest entry
    private(set) var count = 0
    private let capacity: Int
    private let mask: Int

    /// `capacity` is rounded up to a power of two (slots are masked, not divided).
    init(capacity: Int) {
        var c = 1
        while c < max(1, capacity) { c <<= 1 }
        self.capacity = c
        mask = c - 1
        uptimes = []; keys = []
    }

    mutating func removeAll() { head = 0; count = 0 }

    /// Keeps the ring sorted: a line stamped before the latest one is not added.
    mutating func append(uptime: Int64, key: UInt64) {
        if count > 0, uptime < uptimes[slot(count - 1)] { return }
        if uptimes.isEmpty {
            uptimes = [Int64](repeating: 0, count: capacity)
            keys = [UInt64](repeating: 0, count: capacity)
        }
        if count == capacity {
            uptimes[head] = uptime; keys[head] = key
            head = (head + 1) & mask
        } else {
            let s = slot(count)
            uptimes[s] = uptime; keys[s] = key
            count += 1
        }
    }

    @inline(__always) private func slot(_ i: Int) -> Int { (head + i) & mask }

    /// Index (logical) of the first entry with uptime ≥ `us`.
    private func lowerBound(_ us: Int64) -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if uptimes[slot(mid)] < us { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    func firstUptime(atOrAfter us: Int64) -> Int64? {
        let i = lowerBound(us)
        return i < count ? uptimes[slot(i)] : nil
    }

    func contains(uptime us: Int64, key: UInt64) -> Bool {
        var i = lowerBound(us)
        while i < count, uptimes[slot(i)] == us {
            if keys[slot(i)] == key { return true }
            i += 1
        }
        return false
    }
}

extension GuestLogEvent {
    /// The same event, placed in boot `boot`.
    func inBoot(_ boot: Int) -> GuestLogEvent {
        switch self {
        case .blockError(var e): e.location.boot = boot; return .blockError(e)
        case .bufferError(var e): e.location.boot = boot; return .bufferError(e)
        case .filesystem(var e): e.location.boot = boot; return .filesystem(e)
        case .scsi(var e): e.location.boot = boot; return .scsi(e)
        case .capacity(var e): e.location.boot = boot; return .capacity(e)
        case .suppressed(var e): e.location.boot = boot; return .suppressed(e)
        case .hungTask(var e): e.location.boot = boot; return .hungTask(e)
        case .deviceTimeout(var e): e.location.boot = boot; return .deviceTimeout(e)
        }
    }
}
