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
        var time: GuestLogTime
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
    /// complete out of order: two SCSI commands' lines may interleave).
    private var open: [String: [OpenFailure]] = [:]
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
        if let i = candidate(f, open[key] ?? []), var g = open[key]?[i] {
            let placement = Placement.continues(line: g.firstLine, operationCounted: g.hasOperation, errnoCounted: g.hasErrno)
            g.hasBlockError = g.hasBlockError || f.kind == .blockError
            g.hasOperation = g.hasOperation || f.operation != nil
            g.hasErrno = g.hasErrno || f.errno != nil
            g.time = f.time
            open[key]?[i] = g
            return placement
        }
        start(f, key)
        return .opens
    }

    /// A kernel-log `I/O error` that a tracepoint record already counted: if it ends a SCSI or
    /// NVMe command's messages, that command is the recorded request, so its first message is
    /// no failure of its own. Returns that message's line when so (the caller uncounts it).
    mutating func traced(_ f: HostKernelFinding) -> Int? {
        guard let key = f.device, let list = open[key],
              let i = list.firstIndex(where: { Self.isCommandStart($0.firstKind) && !$0.hasBlockError && $0.counted && Self.near($0.time, f.time) })
        else { return nil }
        open[key]?[i].hasBlockError = true
        open[key]?[i].counted = false
        return list[i].firstLine
    }

    /// The open failure `f` is another message of, by the sequences above.
    private func candidate(_ f: HostKernelFinding, _ list: [OpenFailure]) -> Int? {
        switch f.kind {
        case .scsiSense:
            return list.lastIndex { ($0.firstKind == .scsiResult || $0.firstKind == .scsiSense) && $0.tag == f.tag
                && !$0.hasBlockError && Self.near($0.time, f.time) }
        case .blockError:
            // The oldest command still waiting for its block-layer message.
            return list.firstIndex { Self.isCommandStart($0.firstKind) && !$0.hasBlockError && Self.near($0.time, f.time) }
        case .bufferIOError:
            return list.lastIndex { $0.hasBlockError && Self.near($0.time, f.time) }
        case .ataError:
            guard f.status?.hasPrefix("exception") != true else { return nil }
            return list.lastIndex { $0.firstKind == .ataError && Self.near($0.time, f.time) }
        case .ataLinkReset:
            return list.lastIndex { $0.firstKind == .ataError && Self.near($0.time, f.time) }
        case .filesystemReadOnly, .filesystemShutdown:
            return list.lastIndex { $0.firstKind == .filesystemError && Self.near($0.time, f.time) }
        default:
            return nil
        }
    }

    private mutating func start(_ f: HostKernelFinding, _ key: String) {
        let g = OpenFailure(firstLine: f.line, firstKind: f.kind, tag: f.tag, time: f.time,
                            hasBlockError: f.kind == .blockError, counted: !f.kind.isRecovery,
                            hasOperation: f.operation != nil, hasErrno: f.errno != nil)
        add(g, key)
        // ata_link_printk names the link (`ata1`), ata_dev_printk the device on it (`ata1.00`):
        // the link's reset is found under the link's name.
        if f.kind == .ataError, let dot = key.firstIndex(of: ".") { add(g, String(key[..<dot])) }
    }

    private mutating func add(_ g: OpenFailure, _ key: String) {
        guard var list = open[key] ?? (open.count < Self.deviceLimit ? [] : nil) else { return }
        list.removeAll { !Self.near($0.time, g.time) }
        if list.count >= Self.openPerDevice { list.removeFirst() }
        list.append(g)
        open[key] = list
    }

    static func isCommandStart(_ k: HostFindingKind) -> Bool {
        k == .scsiResult || k == .scsiSense || k == .nvmeCommandError
    }

    /// Within the window by the clock both stamps have; stamps without a common clock (a
    /// multipathd line and a kernel line) are not folded.
    static func near(_ a: GuestLogTime, _ b: GuestLogTime) -> Bool {
        if let x = a.uptimeMicroseconds, let y = b.uptimeMicroseconds {
            let (d, o) = y.subtractingReportingOverflow(x)
            return !o && d >= 0 && d <= windowMicroseconds
        }
        if let x = a.wallClock, let y = b.wallClock {
            guard x.year == y.year, x.month == y.month else { return false }
            let d = secondsInMonth(y) - secondsInMonth(x)
            return d >= 0 && d <= windowMicroseconds / 1_000_000
        }
        return a.uptimeMicroseconds == nil && a.wallClock == nil && b.uptimeMicroseconds == nil && b.wallClock == nil
    }

    private static func secondsInMonth(_ w: WallClockTime) -> Int {
        ((w.day * 24 + w.hour) * 60 + w.minute) * 60 + w.second
    }
}
