import KVMScopeCore
import KVMScopeGuestLog

/// One `block:block_rq_error` tracepoint record, as tracefs prints it. The tracepoint fires in
/// block/blk-mq.c blk_update_request under the same condition as blk_print_req_error's
/// `I/O error, dev ...` message — but it is not rate-limited (the message is
/// printk_ratelimited), so a recording of it lists every failed request.
///
/// Its print format (include/trace/events/block.h):
///   Linux 6.1:   `%d,%d %s (%s) %llu + %u [%d]`          dev, rwbs, cmd, sector, nr_sector, error
///   Linux 6.10+: `%d,%d %s (%s) %llu + %u %s,%u,%u [%d]`  … plus the I/O priority class,level,hint
/// with `error` the errno (`blk_status_to_errno`, negative). The line around it depends on who
/// printed it; all of these are read:
///   trace_pipe / trace:  `ksoftirqd/1-22  [001] ..s.. 41919.832778: block_rq_error: 7,0 WS () 2048 + 8 be,0,4 [-5]`
///   trace-cmd report:    `ksoftirqd/1-22  [001] 41919.832778: block_rq_error:  7,0 WS () 2048 + 8 be,0,4 [-5]`
///   perf script:         `ksoftirqd/1 22 [001] 41919.832778: block:block_rq_error: 7,0 WS () 2048 + 8 be,0,4 [-5]`
public struct BlockRequestErrorRecord: Equatable, Sendable {
    /// The trace clock's stamp in µs (tracefs' `local` clock by default: not printk's clock,
    /// though close to it; a recording calibrates it with a trace_marker line).
    public var timeMicroseconds: Int64
    public var major: UInt32
    public var minor: UInt32
    /// blk_fill_rwbs (kernel/trace/blktrace.c): `F` preflush, then one of `W` write (and write
    /// zeroes), `R` read, `D` discard, `DE` secure erase, `F` flush, `N` other; then `F` FUA,
    /// `A` read-ahead, `S` sync, `M` metadata.
    public var rwbs: String
    public var sector: UInt64
    public var sectors: UInt32
    /// The errno, positive (`5` for -EIO).
    public var errno: Int32

    /// `MAJ:MIN`, the name /sys/dev/block uses.
    public var deviceNumber: String { "\(major):\(minor)" }

    /// The operation, named as a kernel message's `op 0x1:(WRITE)` is read (BlockIOOperation's
    /// raw values), so a tracepoint record and a message about the same request say the same.
    /// `W` covers WRITE_ZEROES too (blk_fill_rwbs does not tell them apart).
    public var operation: String {
        var s = Substring(rwbs)
        if s.first == "F", s.count > 1 { s = s.dropFirst() }   // preflush in front of the op
        switch s.first {
        case "W": return BlockIOOperation.write.rawValue
        case "R": return BlockIOOperation.read.rawValue
        case "D": return (s.dropFirst().first == "E" ? BlockIOOperation.secureErase : .discard).rawValue
        case "F": return BlockIOOperation.flush.rawValue
        default: return BlockIOOperation.unknown.rawValue
        }
    }
}

public enum BlockRequestErrorTracepoint {
    /// The record on `line`, nil when the line is not a block_rq_error record or its fields
    /// cannot be read (every number range-checked: a garbled line is nil, never a trap).
    public static func parse(_ line: LineBytes) -> BlockRequestErrorRecord? {
        guard line.count < 4096, let name = line.find("block_rq_error: ") else { return nil }
        // The stamp is the token before the event name (`41919.832778: ` or `block:` + it).
        var nameStart = name
        if nameStart >= 6, line.matches("block:", at: nameStart - 6) { nameStart -= 6 }
        guard nameStart >= 3, line[nameStart - 1] == 0x20, line[nameStart - 2] == 0x3A else { return nil }
        var t = nameStart - 2
        while t > 0, line[t - 1] != 0x20 { t -= 1 }
        guard let (micros, end) = line.fixedPoint(at: t, fractionDigits: 6), end == nameStart - 2 else { return nil }
        var i = line.skipBlanks(name + 16)
        guard let (maj, a) = line.decimal(at: i), a < line.count, line[a] == 0x2C,
              let (min, b) = line.decimal(at: a + 1), b < line.count, line[b] == 0x20,
              maj <= 4095, min <= (1 << 20) - 1 else { return nil }   // dev_t: 12-bit major, 20-bit minor (MINORBITS)
        i = b + 1
        let rwbsRange = line.token(at: i)
        guard !rwbsRange.isEmpty, rwbsRange.count <= 8, rwbsRange.upperBound < line.count else { return nil }
        i = rwbsRange.upperBound + 1
        // `(cmd)`: empty for file system requests; a passthrough command's bytes otherwise.
        guard i < line.count, line[i] == 0x28, let close = line.find(") ", from: i + 1) else { return nil }
        i = close + 2
        guard let (sector, c) = line.decimal(at: i), line.matches(" + ", at: c),
              let (n, d) = line.decimal(at: c + 3), n <= UInt64(UInt32.max) else { return nil }
        i = d
        // The I/O priority triple of 6.10+ (`be,0,4`), then ` [error]`.
        guard let open = line.find(" [", from: i), open - i <= 32,
              let (error, e) = line.signedDecimal(at: open + 2), e < line.count, line[e] == 0x5D,
              error < 0, error >= -4095 else { return nil }   // MAX_ERRNO
        return BlockRequestErrorRecord(timeMicroseconds: micros, major: UInt32(maj), minor: UInt32(min),
                                       rwbs: line.string(rwbsRange), sector: sector, sectors: UInt32(n),
                                       errno: Int32(-error))
    }
}

/// What a block_rq_error record alone does not say: which device `MAJ:MIN` was (the names
/// /sys/dev/block gave when it was recorded) and how its trace clock maps to the wall clock
/// (a trace_marker line written at a known wall time, `kvmscope record` does).
public struct BlockTracepointContext: Sendable {
    public var deviceNames: [String: String] = [:]
    /// Wall clock (µs since the epoch, UTC) minus the trace clock (µs), when measured.
    public var wallOffsetMicroseconds: Int64?

    public init(deviceNames: [String: String] = [:], wallOffsetMicroseconds: Int64? = nil) {
        self.deviceNames = deviceNames; self.wallOffsetMicroseconds = wallOffsetMicroseconds
    }

    /// The record's time: the wall clock when calibrated, else the trace clock as an uptime
    /// (tracefs' default `local` clock counts from boot, like printk's, but is not the same
    /// clock: 28 ms apart on the lab host — never mixed with printk stamps as if it were).
    public func time(of r: BlockRequestErrorRecord) -> GuestLogTime {
        if let off = wallOffsetMicroseconds {
            let (t, overflow) = r.timeMicroseconds.addingReportingOverflow(off)
            if !overflow, t >= 0, let wall = WallClockTime(unixMicroseconds: UInt64(t / 1_000_000), UInt64(t % 1_000_000)) {
                return GuestLogTime(wallClock: wall)
            }
        }
        return GuestLogTime(uptimeMicroseconds: r.timeMicroseconds)
    }
}
