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

    /// Boots before the current one (the first `bootLimit` − 1 kept).
    private var finished: [GuestBoot] = []
    /// The boot being read (valid once `count` > 0); kept out of the array, which every line
    /// would otherwise index into.
    private var currentBoot = GuestBoot(index: 0, startedBy: .startOfLog, line: 0)
    /// Every boot seen, in detail up to `bootLimit`.
    var boots: [GuestBoot] {
        count == 0 ? [] : finished.count + 1 <= Self.bootLimit ? finished + [currentBoot] : finished
    }
    private(set) var count = 0
    private var currentId: String?
    private var currentMaxUptime = Int64.min
    private var ring = StampRing(capacity: 1 << 14)
    // The candidate boot, flattened into stored properties: it is touched on every line while
    // open, and an optional struct was copied whole (memmove) on each of them.
    private var hasCandidate = false
    private var candidateBoot = GuestBoot(index: 0, startedBy: .startOfLog, line: 0)
    /// The line of the current boot a replay would have to repeat (its uptime).
    private var candidateAnchor: Int64?
    private var candidateSawLinuxVersion = false
    private var candidateMaxUptime = Int64.min
    /// Opened by a step back of at most `slack` with no `Linux version` line: usually a
    /// console line printed out of order, which the next line continuing the boot settles.
    /// (A quiet console's next boot can look the same until its `dmesg` replay begins.)
    private var candidateSmallStep = false
    /// Where the candidate's last lookup in `ring` ended (StampRing.contains(uptime:key:cursor:)):
    /// a replay's lines come in rising uptime, so each lookup starts where the previous one ended.
    private var candidateCursor = 0
    /// After a candidate turned out to be a replay: the rest of the replay steps back too
    /// until it passes this uptime; it opens no new candidate on the way.
    private var replayUntil: Int64?
    /// The last kernel message was kernel/reboot.c's "reboot: Restarting system" (or "Power
    /// down", "System halted"): printed last before the machine resets.
    private(set) var rebootPrinted = false

    enum Resolution: Equatable {
        case none
        /// The candidate was the same boot replayed: its events belong to `current`.
        case sameBoot
        /// The candidate is a new boot (now `current`).
        case newBoot
    }

    /// 1-based index of the boot a decided line belongs to (0 before any kernel message).
    var current: Int { count }
    var pending: Bool { hasCandidate }

    /// Called for every recognised kernel message, before its event is used.
    ///
    /// Nearly every line of a log is the next line of the current boot: no journal boot id, no
    /// candidate open, not after a reboot message, uptime not going back, and not one of the
    /// two messages that mark boots (`Linux version`, `reboot: `, told apart by their first
    /// byte). Those take the short path here, which does exactly what `observeMarkerOrStep`
    /// does for them (note the line in the current boot, or in an open candidate the line does
    /// not decide); everything else goes there.
    @inline(__always)
    mutating func observe(_ line: LineBytes, start: Int, number: Int, time: GuestLogTime,
                          bootId: String?) -> Resolution {
        let first = start < line.count ? line[start] : 0
        if count > 0, bootId == nil, !rebootPrinted, first != UInt8(ascii: "L"), first != UInt8(ascii: "r") {
            if hasCandidate {
                // A line of an open candidate that does not decide it (no repeat of the
                // current boot, not past the anchor): counted in the candidate, as
                // observeMarkerOrStep does. A dmesg replay's lines before its first repeat
                // (the console showed only some) are all such lines.
                if let us = time.uptimeMicroseconds, !candidateSmallStep,
                   us < Self.comparableUptime
                    || !ring.contains(uptime: us, key: Self.key(line, start), cursor: &candidateCursor) {
                    let passesAnchor: Bool
                    if let anchor = candidateAnchor { passesAnchor = us > anchor && us - anchor > Self.slack } else { passesAnchor = false }
                    if !passesAnchor {
                        candidateBoot.note(line: number, time: time)
                        if us > candidateMaxUptime { candidateMaxUptime = us }
                        return .none
                    }
                }
            } else {
                if let us = time.uptimeMicroseconds {
                    // Going on (or, during a replay, still within what the replay repeats:
                    // `replayUntil` is at most currentMaxUptime, so `us` ≤ it is no new step back).
                    let goesOn: Bool
                    if let r = replayUntil { goesOn = us <= r } else { goesOn = us >= currentMaxUptime }
                    if goesOn {
                        currentBoot.note(line: number, time: time)
                        if us > currentMaxUptime { currentMaxUptime = us }
                        noteStamp(line, start: start, us: us)
                        return .none
                    }
                } else {
                    currentBoot.note(line: number, time: time)
                    return .none
                }
            }
        }
        return observeMarkerOrStep(line, start: start, number: number, time: time, bootId: bootId)
    }

    /// `observe` for the first line, journal lines, boot markers, steps back in uptime, open
    /// candidates and replays.
    @inline(never)
    private mutating func observeMarkerOrStep(_ line: LineBytes, start: Int, number: Int, time: GuestLogTime,
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
            if hasCandidate { r = decide(newBoot: false) }
            if currentId == nil {
                currentId = bootId
                currentBoot.bootId = bootId
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
        if hasCandidate {
            var result = Resolution.none
            if let us, us >= Self.comparableUptime,
               ring.contains(uptime: us, key: Self.key(line, start), cursor: &candidateCursor) {
                result = decide(newBoot: false)
            } else if candidateSmallStep {
                if linuxVersion { candidateSmallStep = false }
                else if let us, us >= currentMaxUptime { result = decide(newBoot: false) }
            } else if let us, let anchor = candidateAnchor, us > anchor, us - anchor > Self.slack {
                result = decide(newBoot: true)
            }
            if result == .none {
                candidateBoot.note(line: number, time: time)
                if linuxVersion {
                    candidateSawLinuxVersion = true
                    if candidateBoot.kernelVersion == nil { candidateBoot.kernelVersion = Self.version(line, start) }
                }
                if let us, us > candidateMaxUptime { candidateMaxUptime = us }
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
                hasCandidate = true
                candidateBoot = b
                candidateAnchor = anchor
                candidateSawLinuxVersion = linuxVersion
                candidateMaxUptime = us
                candidateSmallStep = smallStep
                candidateCursor = 0
                return .none
            }
        } else if linuxVersion, currentBoot.kernelMessages > 0 {
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
        if count > 0, currentBoot.kernelMessages == 0 {
            currentBoot.bootId = bootId
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
        guard hasCandidate else { return .none }
        return decide(newBoot: candidateSawLinuxVersion)
    }

    private mutating func decide(newBoot: Bool) -> Resolution {
        guard hasCandidate else { return .none }
        hasCandidate = false
        let c = (boot: candidateBoot, maxUptime: candidateMaxUptime)
        if newBoot {
            begin(c.boot)
            currentMaxUptime = c.maxUptime
            return .newBoot
        }
        do {
            var b = currentBoot
            b.kernelMessages += c.boot.kernelMessages
            b.lastLine = max(b.lastLine, c.boot.lastLine)
            if let f = c.boot.firstUptimeMicroseconds, f < (b.firstUptimeMicroseconds ?? .max) { b.firstUptimeMicroseconds = f }
            if let l = c.boot.lastUptimeMicroseconds, l > (b.lastUptimeMicroseconds ?? .min) {
                b.lastUptimeMicroseconds = l; b.lastTime = c.boot.lastTime
            }
            if b.kernelVersion == nil { b.kernelVersion = c.boot.kernelVersion }
            currentBoot = b
        }
        currentMaxUptime = max(currentMaxUptime, c.maxUptime)
        replayUntil = currentMaxUptime
        return .sameBoot
    }

    private mutating func begin(_ boot: GuestBoot) {
        count += 1
        var b = boot
        b.index = count
        if count > 1, finished.count < Self.bootLimit { finished.append(currentBoot) }
        currentBoot = b
        currentMaxUptime = b.lastUptimeMicroseconds ?? .min
        currentId = b.bootId
        replayUntil = nil
        ring.removeAll()
    }

    private mutating func noteCurrent(_ line: LineBytes, start: Int, number: Int, time: GuestLogTime, linuxVersion: Bool) {
        do {
            currentBoot.note(line: number, time: time)
            if linuxVersion, currentBoot.kernelVersion == nil { currentBoot.kernelVersion = Self.version(line, start) }
        }
        if let us = time.uptimeMicroseconds {
            if us > currentMaxUptime { currentMaxUptime = us }
            noteStamp(line, start: start, us: us)
        }
    }

    @inline(__always)
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
/// Raw storage, allocated on first use: appended to on every stamped line.
struct StampRing {
    private final class Storage {
        let uptimes: UnsafeMutablePointer<Int64>
        let keys: UnsafeMutablePointer<UInt64>
        init(_ n: Int) {
            uptimes = .allocate(capacity: n); uptimes.initialize(repeating: 0, count: n)
            keys = .allocate(capacity: n); keys.initialize(repeating: 0, count: n)
        }
        deinit { uptimes.deallocate(); keys.deallocate() }
    }
    private var storage: Storage?
    private var head = 0      // index of the oldest entry
    private(set) var count = 0
    private var last = Int64.min
    private let capacity: Int
    private let mask: Int

    /// `capacity` is rounded up to a power of two (slots are masked, not divided).
    init(capacity: Int) {
        var c = 1
        while c < max(1, capacity) { c <<= 1 }
        self.capacity = c
        mask = c - 1
    }

    mutating func removeAll() { head = 0; count = 0; last = .min }

    /// Keeps the ring sorted: a line stamped before the latest one is not added.
    @inline(__always)
    mutating func append(uptime: Int64, key: UInt64) {
        if uptime < last { return }
        if storage == nil { storage = Storage(capacity) }
        // Value semantics: a copied reader must not share its ring.
        if !isKnownUniquelyReferenced(&storage!) { copyStorage() }
        let st = storage!
        last = uptime
        if count == capacity {
            st.uptimes[head] = uptime; st.keys[head] = key
            head = (head + 1) & mask
        } else {
            let s = (head + count) & mask
            st.uptimes[s] = uptime; st.keys[s] = key
            count += 1
        }
    }

    private mutating func copyStorage() {
        let old = storage!
        let new = Storage(capacity)
        new.uptimes.update(from: old.uptimes, count: capacity)
        new.keys.update(from: old.keys, count: capacity)
        storage = new
    }

    @inline(__always) private func slot(_ i: Int) -> Int { (head + i) & mask }

    /// Index (logical) of the first entry with uptime ≥ `us`.
    private func lowerBound(_ us: Int64, _ st: Storage, from: Int = 0) -> Int {
        var lo = from, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if st.uptimes[slot(mid)] < us { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    func firstUptime(atOrAfter us: Int64) -> Int64? {
        guard let st = storage else { return nil }
        let i = lowerBound(us, st)
        return i < count ? st.uptimes[slot(i)] : nil
    }

    /// `contains(uptime:key:)` for lookups in mostly rising uptime (a candidate boot's lines):
    /// `cursor` (0 for the first lookup) keeps the logical index where the previous lookup's
    /// lower bound was. When every entry before it is below `us` (the ring is sorted) the lower
    /// bound is at or after it: a few steps forward, then a binary search over the rest, instead
    /// of a binary search over the whole ring on every line.
    func contains(uptime us: Int64, key: UInt64, cursor: inout Int) -> Bool {
        guard let st = storage else { return false }
        var i: Int
        if cursor >= 0, cursor <= count, cursor == 0 || st.uptimes[slot(cursor - 1)] < us {
            i = cursor
            var steps = 0
            while i < count, st.uptimes[slot(i)] < us {
                i += 1
                steps += 1
                if steps == 16 { i = lowerBound(us, st, from: i); break }
            }
        } else {
            i = lowerBound(us, st)
        }
        cursor = i
        while i < count, st.uptimes[slot(i)] == us {
            if st.keys[slot(i)] == key { return true }
            i += 1
        }
        return false
    }

    func contains(uptime us: Int64, key: UInt64) -> Bool {
        guard let st = storage else { return false }
        var i = lowerBound(us, st)
        while i < count, st.uptimes[slot(i)] == us {
            if st.keys[slot(i)] == key { return true }
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
