import KVMScopeGuestLog

/// One failure below QEMU is often several kernel messages, printed one after the other by one
/// code path. Counting each as a failure made one failed SCSI read "4 failures". The sequences
/// folded here, each from the kernel source that prints it (Linux 6.1):
///
/// - a SCSI command: scsi_io_completion_action (drivers/scsi/scsi_lib.c) prints the `FAILED
///   Result:` line, then the `Sense Key :` and `Add. Sense:` lines, all with the command's
///   `tag#N`; the block layer's `I/O error, dev sdX` (blk_update_request → blk_print_req_error)
///   for that request follows;
/// - an NVMe command: nvme_end_req (drivers/nvme/host/core.c) calls nvme_log_error, then ends
///   the request, which prints the block layer's `critical medium error, dev nvme0n1`;
/// - an ATA exception: ata_eh_link_report (drivers/ata/libata-eh.c) prints `exception Emask`,
///   then `failed command:` and `error: { ... }` lines of the same port, and the EH's reset of
///   that link (`ata1: hard resetting link`) follows;
/// - lost pages of a failed write: end_buffer_async_write (fs/buffer.c) prints `Buffer I/O error
///   on dev` after the block layer's message of the same request;
/// - a filesystem error that turns it read-only: ext4_handle_error (fs/ext4/super.c) prints
///   `Remounting filesystem read-only` after `EXT4-fs error`; btrfs's `forced readonly` and
///   XFS's shutdown follow their error the same way.
///
/// Only consecutive messages of one device, at most `window` apart, are folded: two requests
/// that fail one after the other stay two failures (each has its own `I/O error` line).
struct HostFailureGrouping {
    /// The failure a device's messages are being added to.
    private struct OpenFailure {
        var firstLine: Int
        var firstKind: HostFindingKind
        var tag: Int?
        /// When its last message was printed (`Stamp`).
        var time: Stamp
        /// The block layer's message of the request is in (no second one joins).
        var hasBlockError: Bool
        /// Its first message was counted as a failure (a tracepoint record may be that request).
        var counted: Bool
        /// An operation / an errno of it is counted already (NVMe's `Read` and the block
        /// layer's `read` are one request's).
        var hasOperation: Bool
        var hasErrno: Bool
    }

    /// Per device, its failures that later messages may still join, oldest first (commands
    /// complete out of order: two SCSI commands' lines may interleave). Kept in `slots`, found
    /// by name through `slotIndex`; the last device asked for is remembered, as a log's
    /// messages come in runs of one device (one hash per message was half the host reader's time
    /// on a log of failures).
    private var slots: [[OpenFailure]] = []
    private var slotIndex: [String: Int] = [:]
    private var lastKey = ""
    private var lastSlot = -1
    /// Bounds `open` (a hostile input naming many devices): past it, messages stand alone.
    static let deviceLimit = 4096
    /// Failures kept open per device (queued commands failing together).
    static let openPerDevice = 8
    /// Messages of one failure are printed within microseconds; syslog stamps have seconds.
    static let windowMicroseconds: Int64 = 2_000_000

    /// What a message is to the failures seen so far.
    enum Placement: Equatable {
        /// The first message of a failure (or of a recovery).
        case opens
        /// Another message of the failure whose first message is at `line`; whether that
        /// failure's operation and errno are counted already.
        case continues(line: Int, operationCounted: Bool, errnoCounted: Bool)
    }

    mutating func place(_ f: HostKernelFinding) -> Placement {
        guard let key = f.device ?? f.peer else { return .opens }
        let now = Stamp(f.time)
        if let s = slot(key, create: false), let i = candidate(f, now, slots[s]) {
            let g = slots[s][i]
            slots[s][i].hasBlockError = g.hasBlockError || f.kind == .blockError
            slots[s][i].hasOperation = g.hasOperation || f.operation != nil
            slots[s][i].hasErrno = g.hasErrno || f.errno != nil
            slots[s][i].time = now
            return .continues(line: g.firstLine, operationCounted: g.hasOperation, errnoCounted: g.hasErrno)
        }
        start(f, now, key)
        return .opens
    }

    /// The slot of `key`'s open failures (made when `create` and under the bound).
    private mutating func slot(_ key: String, create: Bool) -> Int? {
        if lastSlot >= 0, key == lastKey { return lastSlot }
        if let i = slotIndex[key] { lastKey = key; lastSlot = i; return i }
        guard create, slots.count < Self.deviceLimit else { return nil }
        slots.append([])
        slotIndex[key] = slots.count - 1
        lastKey = key; lastSlot = slots.count - 1
        return lastSlot
    }

    /// A kernel-log `I/O error` that a tracepoint record already counted: if it ends a SCSI or
    /// NVMe command's messages, that command is the recorded request, so its first message is
    /// no failure of its own. Returns that message's line when so (the caller uncounts it).
    mutating func traced(_ f: HostKernelFinding) -> Int? {
        guard let key = f.device, let s = slot(key, create: false) else { return nil }
        let now = Stamp(f.time)
        guard let i = slots[s].firstIndex(where: { Self.isCommandStart($0.firstKind) && !$0.hasBlockError && $0.counted && $0.time.near(now) })
        else { return nil }
        slots[s][i].hasBlockError = true
        slots[s][i].counted = false
        return slots[s][i].firstLine
    }

    /// The open failure `f` is another message of, by the sequences above.
    private func candidate(_ f: HostKernelFinding, _ now: Stamp, _ list: [OpenFailure]) -> Int? {
        switch f.kind {
        case .scsiSense:
            return list.lastIndex { ($0.firstKind == .scsiResult || $0.firstKind == .scsiSense) && $0.tag == f.tag
                && !$0.hasBlockError && $0.time.near(now) }
        case .blockError:
            // The oldest command still waiting for its block-layer message.
            return list.firstIndex { Self.isCommandStart($0.firstKind) && !$0.hasBlockError && $0.time.near(now) }
        case .bufferIOError:
            return list.lastIndex { $0.hasBlockError && $0.time.near(now) }
        case .ataError:
            guard f.status?.hasPrefix("exception") != true else { return nil }
            return list.lastIndex { $0.firstKind == .ataError && $0.time.near(now) }
        case .ataLinkReset:
            return list.lastIndex { $0.firstKind == .ataError && $0.time.near(now) }
        case .filesystemReadOnly, .filesystemShutdown:
            return list.lastIndex { $0.firstKind == .filesystemError && $0.time.near(now) }
        default:
            return nil
        }
    }

    private mutating func start(_ f: HostKernelFinding, _ now: Stamp, _ key: String) {
        let g = OpenFailure(firstLine: f.line, firstKind: f.kind, tag: f.tag, time: now,
                            hasBlockError: f.kind == .blockError, counted: !f.kind.isRecovery,
                            hasOperation: f.operation != nil, hasErrno: f.errno != nil)
        add(g, key)
        // ata_link_printk names the link (`ata1`), ata_dev_printk the device on it (`ata1.00`):
        // the link's reset is found under the link's name.
        if f.kind == .ataError, let dot = key.firstIndex(of: ".") { add(g, String(key[..<dot])) }
    }

    private mutating func add(_ g: OpenFailure, _ key: String) {
        guard let s = slot(key, create: true) else { return }
        // Failures past the window are never joined (`near`): only the count is bounded here.
        if slots[s].count >= Self.openPerDevice { slots[s].removeFirst() }
        slots[s].append(g)
    }

    static func isCommandStart(_ k: HostFindingKind) -> Bool {
        k == .scsiResult || k == .scsiSense || k == .nvmeCommandError
    }

    /// A message's time as one number, taken once per message (comparing GuestLogTimes, whose
    /// wall clock is unpacked on each read, was most of this type's cost): printk's uptime in
    /// µs, else the wall clock in µs counted from year 0 with 31-day months (monotonic within
    /// a log; across a month's end it only ever makes two stamps look further apart).
    struct Stamp: Equatable {
        enum Clock: UInt8 { case none, uptime, wall }
        var clock: Clock
        var value: Int64

        init(_ t: GuestLogTime) {
            if let us = t.uptimeMicroseconds { clock = .uptime; value = us; return }
            if let w = t.wallClock {
                let days = (Int64(w.year ?? 0) * 12 + Int64(w.month)) * 31 + Int64(w.day)
                let seconds = days * 86_400 + Int64(w.hour * 3600 + w.minute * 60 + w.second)
                clock = .wall; value = seconds * 1_000_000 + Int64(w.microsecond ?? 0)
                return
            }
            clock = .none; value = 0
        }

        /// `later` is at most the window after this one, by a clock both have; messages without
        /// a common clock (a multipathd line and a printk-stamped one) are not folded, those with
        /// no time at all (an unstamped excerpt) are, as consecutive lines.
        func near(_ later: Stamp) -> Bool {
            guard clock == later.clock else { return false }
            let (d, o) = later.value.subtractingReportingOverflow(value)
            return !o && d >= 0 && d <= HostFailureGrouping.windowMicroseconds
        }
    }
}
