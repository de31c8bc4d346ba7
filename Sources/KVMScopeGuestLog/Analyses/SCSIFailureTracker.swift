/// Puts a failed SCSI command back together from its lines and ties it to the block layer's
/// error line for the same request. In 6.1 (drivers/scsi/scsi_lib.c scsi_io_completion_action,
/// ACTION_FAIL) one failure prints, each line prefixed `[sdX] tag#N `:
///   scsi_print_result  `FAILED Result: hostbyte=... driverbyte=... cmd_age=Ns`
///   scsi_print_sense   `Sense Key : ... [current]`, `Add. Sense: ...`  (only with valid sense)
///   scsi_print_command `CDB: Write(10) 2a 00 ...`
/// and then scsi_end_request → blk_update_request prints `I/O error, dev sdX, sector S op ...`,
/// which carries no tag: it is tied to the pending command whose CDB starts at S (in the
/// disk's logical blocks), or, without a usable CDB, to the most recent one a few lines back.
/// The three SCSI lines are rate-limited together (DEFAULT_RATELIMIT_BURST per 5 s), so a
/// block error with no SCSI lines before it is normal in a flood and is tied to nothing.
///
/// A serial console at the default `quiet` loglevel shows the KERN_ERR block error but not the
/// KERN_INFO SCSI lines, which only the dmesg replay after it has; the replay's block error is
/// then a duplicate (same stamp) and dropped by the reader. So a command still untied when it
/// is finished is also tied to an earlier untied block error of the same disk whose sector its
/// CDB starts at and whose uptime is within `tieWindowMicroseconds` after the command's first line.
///
/// A command refused with NOT READY / ASC 3A (SCSICommandFailure.isNoMedium: an empty drive,
/// such as a virtual CD-ROM with nothing inserted, probed at boot) is not a failure: it goes to
/// `noMedium` instead of `failures`, with the block error tied to it, for DeviceState to take
/// that block error (and the buffer errors after it) out of the device's failures.
///
/// Bounded: at most `pendingLimit` commands being assembled, `untiedLimit` untied block errors,
/// `SCSISummary.failedRequestLimit` distinct requests kept; everything beyond is counted.
struct SCSIFailureTracker {
    static let pendingLimit = 8
    /// A block error is tied only to a command whose last line is at most this many lines back.
    static let tieDistance = 16
    static let untiedLimit = 16
    static let tieWindowMicroseconds: Int64 = 1_000_000

    /// Recent block errors no command was tied to: a ring of `untiedLimit`, `untiedNext` the
    /// slot to overwrite next. Only what tying needs is kept (this runs for every error on sdX).
    private var untied: [UntiedBlockError] = []
    private var untiedNext = 0
    /// The disk's logical block size, from its capacity line (`sd ...: [sdX] %llu %d-byte logical blocks`).
    var logicalBlockSize: UInt32?

    struct UntiedBlockError {
        var sector: UInt64
        var operation: BlockIOOperation?
        var errorType: BlockErrorType
        var location: GuestLogLocation
        var used = false
    }

    private var pending: [(failure: SCSICommandFailure, lastLine: Int)] = []
    private(set) var failures: [SCSICommandFailure] = []
    /// (operation, first block or sector) → index in `failures`.
    private var index: [RequestKey: Int] = [:]
    private(set) var commandFailures = 0
    private(set) var failuresNotListed = 0
    /// Commands refused for want of a medium (not counted in `commandFailures`).
    private(set) var noMedium = NoMediumTally()

    /// What DeviceState needs to take a no-medium command's lines out of the device's failures.
    struct NoMediumTally {
        static let blockErrorLimit = 4096
        var commands = 0
        var first: SCSICommandFailure?
        var last: GuestLogLocation?
        /// The block errors tied to those commands (line, operation, type), the first `blockErrorLimit`.
        var blockErrors: [(line: Int, operation: BlockIOOperation?, errorType: BlockErrorType)] = []
        /// (`hostbyte=… driverbyte=…`, sense key, additional sense) of each command, folded with a count,
        /// to take out of SCSISummary's per-line counts.
        var lines: [(result: String?, senseKey: String?, additionalSense: String?, count: Int)] = []

        mutating func add(_ f: SCSICommandFailure) {
            commands += 1
            if first == nil { first = f }
            last = GuestLogLocation.later(last, f.last)
            if let line = f.blockErrorLine, let type = f.blockErrorType, blockErrors.count < Self.blockErrorLimit {
                blockErrors.append((line, f.blockOperation, type))
            }
            let result = f.hostbyte.map { "hostbyte=\($0) driverbyte=\(f.driverbyte ?? "")" }
            if let i = lines.firstIndex(where: { $0.result == result && $0.senseKey == f.senseKey && $0.additionalSense == f.additionalSense }) {
                lines[i].count += 1
            } else if lines.count < 16 {
                lines.append((result, f.senseKey, f.additionalSense, 1))
            }
        }
    }

    struct RequestKey: Hashable {
        var operation: String
        var start: UInt64
    }

    var hasFailures: Bool { commandFailures > 0 || !pending.isEmpty || noMedium.commands > 0 }

    mutating func add(_ e: SCSIEvent) {
        let line = e.location.line
        switch e.kind {
        case .result(let hb, let db):
            // A new result for a tag still pending means that tag's previous command is done.
            if let i = pending.lastIndex(where: { $0.failure.tag == e.tag }), pending[i].failure.hostbyte != nil {
                finalize(at: i)
            }
            var f = SCSICommandFailure(tag: e.tag, at: e.location)
            f.hostbyte = hb; f.driverbyte = db; f.commandAgeSeconds = e.commandAgeSeconds
            push(f, line: line)
        case .senseKey(let key):
            update(e) { f in
                guard f.senseKey == nil else { return false }
                f.senseKey = key; f.senseDeferred = e.senseDeferred
                return true
            }
        case .additionalSense(let text):
            update(e) { f in
                guard f.additionalSense == nil else { return false }
                f.additionalSense = text
                let codes = text.utf8.first == UInt8(ascii: "A") || text.utf8.first == UInt8(ascii: "<")
                    ? Self.printedCodes(text) : SCSIAdditionalSense.code(for: text)
                if let (asc, ascq) = codes {
                    f.asc = asc; f.ascq = ascq
                }
                return true
            }
        case .cdb(let cdb):
            update(e) { f in
                guard f.cdb == nil else { return false }
                f.cdb = cdb
                return true
            }
        case .unhandled, .offline:
            break
        }
    }

    /// Fills the pending command of the event's tag that `fill` accepts, or starts one.
    private mutating func update(_ e: SCSIEvent, _ fill: (inout SCSICommandFailure) -> Bool) {
        if let i = pending.lastIndex(where: { $0.failure.tag == e.tag }) {
            // In place: a copy would copy the command's CDB bytes on every line.
            if fill(&pending[i].failure) {
                pending[i].failure.last = e.location
                pending[i].lastLine = e.location.line
                return
            }
            finalize(at: i)
        }
        var f = SCSICommandFailure(tag: e.tag, at: e.location)
        _ = fill(&f)
        push(f, line: e.location.line)
    }

    private mutating func push(_ f: SCSICommandFailure, line: Int) {
        if pending.count >= Self.pendingLimit { finalize(at: 0) }
        pending.append((f, line))
    }

    /// A block-layer error on this disk: ties it to its command, or counts it as another
    /// failure of a request already listed.
    mutating func blockError(_ e: BlockErrorEvent) {
        let line = e.location.line
        var chosen: Int? = nil
        var factor: UInt64? = nil
        for i in pending.indices.reversed() where line - pending[i].lastLine <= Self.tieDistance && line >= pending[i].lastLine {
            guard let range = pending[i].failure.cdb?.blockRange else { continue }
            if let k = Self.sectorFactor(lba: range.lba, sector: e.sector, logicalBlockSize: logicalBlockSize) {
                chosen = i; factor = k
                break
            }
        }
        if chosen == nil {
            // No CDB that starts there: the latest command without a block range (no CDB line,
            // or a command such as UNMAP whose range is in its data), if close enough.
            if let i = pending.indices.last, line - pending[i].lastLine <= Self.tieDistance, line >= pending[i].lastLine,
               pending[i].failure.cdb?.blockRange == nil {
                chosen = i
            }
        }
        guard let i = chosen else {
            // Untied: a repeat of a listed request (the SCSI lines were rate-limited) still counts.
            if !failures.isEmpty, let op = e.operation?.rawValue, let j = index[RequestKey(operation: op, start: e.sector)] {
                failures[j].loggedFailures += 1
                failures[j].last = GuestLogLocation.later(failures[j].last, e.location)
            } else {
                let u = UntiedBlockError(sector: e.sector, operation: e.operation, errorType: e.errorType, location: e.location)
                if untied.count < Self.untiedLimit { untied.append(u) } else { untied[untiedNext] = u }
                untiedNext = (untiedNext + 1) % Self.untiedLimit
            }
            return
        }
        Self.tie(&pending[i].failure, UntiedBlockError(sector: e.sector, operation: e.operation, errorType: e.errorType,
                                                       location: e.location),
                 factor: factor)
        finalize(at: i)
    }

    private static func tie(_ f: inout SCSICommandFailure, _ e: UntiedBlockError, factor: UInt64?) {
        f.blockErrorLine = e.location.line
        f.blockErrorSector = e.sector
        f.blockOperation = e.operation
        f.blockErrorType = e.errorType
        f.last = GuestLogLocation.later(f.last, e.location)
        if let k = factor, let range = f.cdb?.blockRange {
            f.sector = e.sector
            let (n, overflow) = UInt64(range.blocks).multipliedReportingOverflow(by: k)
            f.sectors = overflow ? nil : n
        }
    }

    /// For a command finished without a block error after it: an earlier untied one of its
    /// request, by uptime (see the type's comment).
    private mutating func tieToEarlier(_ f: inout SCSICommandFailure) {
        guard f.blockErrorLine == nil, let range = f.cdb?.blockRange, let start = f.first.time.uptimeMicroseconds else { return }
        for j in untied.indices {
            let e = untied[j]
            guard !e.used, let t = e.location.time.uptimeMicroseconds, t >= start,
                  case let (gap, overflow) = t.subtractingReportingOverflow(start), !overflow, gap <= Self.tieWindowMicroseconds,
                  let k = Self.sectorFactor(lba: range.lba, sector: e.sector, logicalBlockSize: logicalBlockSize)
            else { continue }
            Self.tie(&f, e, factor: k)
            untied[j].used = true
            return
        }
    }

    /// The multiple of 512 bytes a logical block must be for `lba` to start at `sector`: the
    /// disk's own when known, else any of 512–4096 bytes (the sizes virtual disks use).
    static func sectorFactor(lba: UInt64, sector: UInt64, logicalBlockSize: UInt32?) -> UInt64? {
        func fits(_ k: UInt64) -> Bool {
            let (s, overflow) = lba.multipliedReportingOverflow(by: k)
            return !overflow && s == sector
        }
        if let size = logicalBlockSize, size >= 512, size % 512 == 0 {
            let k = UInt64(size / 512)
            return fits(k) ? k : nil
        }
        var k: UInt64 = 1
        while k <= 8 {
            if fits(k) { return k }
            k <<= 1
        }
        return nil
    }

    /// `[<<vendor>>]ASC=0x%x [<<vendor>>]ASCQ=0x%x ` (scsi_format_extd_sense when the kernel has
    /// no words for the pair). One pass over the bytes; nil for anything else.
    static func printedCodes(_ text: String) -> (UInt8, UInt8)? {
        var u = text.utf8[...]
        func number(after tag: String) -> UInt8? {
            let t = Array(tag.utf8)
            while !u.isEmpty, !u.starts(with: t) { u = u.dropFirst() }
            guard !u.isEmpty else { return nil }
            u = u.dropFirst(t.count)
            var v = 0, digits = 0
            while let c = u.first, let d = hexValue(c) {
                guard digits < 2 else { return nil }
                v = v * 16 + d; digits += 1; u = u.dropFirst()
            }
            return digits > 0 ? UInt8(v) : nil
        }
        guard text.utf8.count <= 64, let asc = number(after: "ASC=0x"), let ascq = number(after: "ASCQ=0x") else { return nil }
        return (asc, ascq)
    }

    private static func hexValue(_ c: UInt8) -> Int? {
        switch c {
        case 0x30...0x39: return Int(c - 0x30)
        case 0x61...0x66: return Int(c - 0x61 + 10)
        case 0x41...0x46: return Int(c - 0x41 + 10)
        default: return nil
        }
    }

    private mutating func finalize(at i: Int) {
        var f = pending.remove(at: i).failure
        tieToEarlier(&f)
        if f.isNoMedium {
            noMedium.add(f)
            return
        }
        commandFailures += 1
        let op = f.cdb.map { $0.operation.rawValue } ?? f.blockOperation?.rawValue
        let start = f.cdb?.blockRange?.lba ?? f.blockErrorSector
        if let op, let start {
            let key = RequestKey(operation: op, start: start)
            if let j = index[key] {
                failures[j].loggedFailures += 1
                failures[j].last = GuestLogLocation.later(failures[j].last, f.last)
                return
            }
            guard failures.count < SCSISummary.failedRequestLimit else { failuresNotListed += 1; return }
            index[key] = failures.count
            // Untied block errors of the same request are looked up by sector and op name.
            if let s = f.blockErrorSector, let bop = f.blockOperation?.rawValue, index[RequestKey(operation: bop, start: s)] == nil {
                index[RequestKey(operation: bop, start: s)] = failures.count
            }
            failures.append(f)
        } else if failures.count < SCSISummary.failedRequestLimit {
            failures.append(f)
        } else {
            failuresNotListed += 1
        }
    }

    /// Everything still pending is a failure too (its block error line was not logged, or not yet).
    /// Returns the no-medium commands, those still pending included.
    func finish(into s: inout SCSISummary) -> NoMediumTally {
        var copy = self
        let logicalBlockSize = copy.logicalBlockSize
        while !copy.pending.isEmpty { copy.finalize(at: 0) }
        // With the disk's block size known, commands not tied to a block error get their sector too.
        if let size = logicalBlockSize, size >= 512, size % 512 == 0 {
            let k = UInt64(size / 512)
            for i in copy.failures.indices where copy.failures[i].sector == nil {
                guard let range = copy.failures[i].cdb?.blockRange else { continue }
                let (a, o1) = range.lba.multipliedReportingOverflow(by: k)
                let (b, o2) = UInt64(range.blocks).multipliedReportingOverflow(by: k)
                if !o1 { copy.failures[i].sector = a }
                if !o2 { copy.failures[i].sectors = b }
            }
        }
        s.commandFailures += copy.commandFailures
        s.failedRequests = copy.failures
        s.failuresNotListed = copy.failuresNotListed
        s.retriedRequests = copy.failures.filter { $0.loggedFailures > 1 }.count
        return copy.noMedium
    }
}
