/// Block-layer request errors, every shape since 2.6 (block/blk-core.c, block/blk-mq.c):
///
///   ≤2.6.33     `end_request: I/O error, dev %s, sector %llu`
///   3.2–3.17    `end_request: %s error, dev %s, sector %llu`
///   3.18–4.12   `blk_update_request: %s error, dev %s, sector %llu`
///   4.13–4.20   `%s: %s error, dev %s, sector %llu` with __func__ = `print_req_error`
///   5.0–5.2     `%s: %s error, dev %s, sector %llu flags %x`
///   5.3–5.15    `%s: %s error, dev %s, sector %llu op 0x%x:(%s) flags 0x%x phys_seg %u prio class %u`
///               (caller `blk_update_request`; a 5.3 development form had `op 0x%x flags 0x%x`)
///   5.16+       `%s error, dev %s, sector %llu op 0x%x:(%s) flags 0x%x phys_seg %u prio class %u`
///
/// The first `%s` is blk_errors[].name — `I/O`, `critical medium`, `critical target`,
/// `critical nexus` / `reservation conflict`, `recoverable transport`, `timeout`,
/// `critical space allocation`, `operation not supported`, `protection`, `kernel resource`,
/// `device resource`, `nonblocking retry`, `device offline`, `dm internal retry`,
/// `open zones exceeded`, `active zones exceeded`, `duration limit exceeded`, `invalid`.
/// `dev` is the disk (never a partition; `?` when the request had no disk).
enum BlockErrorMatcher {
    /// The longest error name plus " error, dev " fits in this many bytes; the comma is only
    /// looked for this close to the start, which keeps non-matching lines cheap.
    static let window = 48

    /// `caller`: the `name: ` before the message, when there was one.
    public static func match(_ ctx: MatchContext, at s: Int, caller: Range<Int>?) -> MatchOutcome {
        let line = ctx.line
        guard let comma = line.find(byte: UInt8(ascii: ","), in: s..<(s + window)),
              comma - s >= 7, line.matches(" error, dev ", at: comma - 6) else { return .noMatch }
        let typeRange = s..<(comma - 6)
        guard let errorType = errorType(line, typeRange),
              let (device, devEnd) = line.deviceName(at: comma + 6, stop: UInt8(ascii: ",")),
              line.matches(", sector ", at: devEnd),
              let (sector, sectorEnd) = line.decimal(at: devEnd + 9) else { return .malformed }

        var event = BlockErrorEvent(device: device, sector: sector, errorType: errorType,
                                    caller: caller.map { line.string($0) }, shape: .op, location: ctx.location)
        var i = sectorEnd
        var sawOp = false, sawFlags = false
        if line.matches(" op 0x", at: i) {
            // Everything after " op " is printed in one go since 5.3; a line that stops part
            // way was cut off (end of a file, a console glitch) and is skipped, not guessed.
            guard let (op, e) = line.hex(at: i + 4), op <= UInt64(UInt32.max) else { return .malformed }
            sawOp = true
            event.opCode = UInt32(op)
            i = e
            var named = false
            if line.matches(":(", at: i) {
                guard let close = line.find(byte: UInt8(ascii: ")"), in: (i + 2)..<(i + 24)) else { return .malformed }
                event.reportedOperation = BlockIOOperation(kernelName: line.string((i + 2)..<close)) ?? .unknown
                i = close + 1
                named = true
            } else {
                event.reportedOperation = BlockIOOperation(stableOpCode: UInt32(op))
            }
            guard line.matches(" flags 0x", at: i), let (f, fe) = line.hex(at: i + 7), f <= UInt64(UInt32.max)
            else { return .malformed }
            event.flags = UInt32(f)
            i = fe
            if named {
                guard line.matches(" phys_seg ", at: i), let (ps, pe) = line.decimal(at: i + 10), ps <= UInt64(UInt32.max),
                      line.matches(" prio class ", at: pe), let (pc, _) = line.decimal(at: pe + 12), pc <= UInt64(UInt32.max)
                else { return .malformed }
                event.physSegments = UInt32(ps)
                event.prioClass = UInt32(pc)
            }
        } else if line.matches(" flags ", at: i), let (f, _) = line.hex(at: i + 7), f <= UInt64(UInt32.max) {
            // 5.0–5.2 print the whole cmd_flags; the operation is in its low 8 bits (REQ_OP_BITS).
            sawFlags = true
            event.flags = UInt32(f)
            event.opCode = UInt32(f) & 0xFF
            event.reportedOperation = BlockIOOperation(stableOpCode: UInt32(f) & 0xFF)
        }

        if let caller {
            if sawOp { event.shape = .callerWithOp }
            else if sawFlags { event.shape = .printReqErrorFlags }
            else if line.matches("end_request", at: caller.lowerBound) && caller.count == 11 { event.shape = .endRequest }
            else if line.matches("print_req_error", at: caller.lowerBound) && caller.count == 15 { event.shape = .printReqError }
            else { event.shape = .blkUpdateRequest }
        } else if !sawOp {
            // 5.16+ always prints the op; a line without one was cut off.
            return .malformed
        }
        return .event(.blockError(event))
    }

    /// The error name before " error": one of the kernel's names, or a short phrase of letters
    /// (a newer kernel's name), never arbitrary text.
    static func errorType(_ line: LineBytes, _ r: Range<Int>) -> BlockErrorType? {
        guard !r.isEmpty, r.count <= 40 else { return nil }
        if r.count == 3, line.matches("I/O", at: r.lowerBound) { return .io }
        for i in r {
            let c = line[i]
            let ok = (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || c == 0x20 || c == 0x2F || c == 0x2D
            if !ok { return nil }
        }
        return BlockErrorType(text: line.string(r))
    }
}
