import Foundation

/// Decodes one trace line carrying kvm_exit / kvm_entry (or any other tracepoint) from any of
/// the text forms kvmscope reads. The line prefixes differ only in small ways, so one parser
/// walks them all:
///
///     ftrace:     `<comm>-<tid> [cpu] <flags> <secs.usecs>: kvm_exit: <fields>`  (flags optional,
///                 `(tgid)` column optional with options/record-tgid)
///     trace-cmd:  `%16s-%-5d [%03d] <latency> <secs.usecs>: kvm_exit: <pad to 20> <fields>`,
///                 with -R: `[%03d]-0x<flags> <secs>: kvm_exit:  exit_reason=1 ...`
///     perf script: `<comm> <tid> [cpu] <secs.usecs>: kvm:kvm_exit: <fields>` (or `pid/tid`)
///
/// and the field forms: linux ≥5.10 (`vcpu %u reason %s%s%s rip 0x%lx info1 0x%016llx ...`),
/// linux ≤5.9 and libtraceevent's kvm plugin (`reason %s rip 0x%lx info %llx %llx`), and raw
/// fields (`exit_reason=30 guest_rip=0x... isa=1 ...`). Nothing here allocates per line.
struct KVMTraceLineParser {
    public enum Outcome: Equatable {
        case record          // a tracepoint line; see the record's kind
        case header          // `# tracer: nop`, `cpus=2`, blank: expected non-events
        case unrecognized    // not a trace line at all
        case malformedKVM    // says kvm_exit/kvm_entry but its fields could not be read
    }

    public let reasons: ExitReasonInterner
    /// The ISA seen so far, for plugin lines that print `UNKNOWN (74)` without saying which.
    public private(set) var isaHint: ExitISA?

    public init(reasons: ExitReasonInterner = ExitReasonInterner()) { self.reasons = reasons }

    public mutating func parse(_ line: LineBytes, into r: inout KVMTraceRecord) -> Outcome {
        let n = line.count
        var i = line.skipBlanks(0)
        if i >= n || line[i] == 0x23 /* # */ { return .header }
        if line.matches("CPU:", at: i) { return lostMarker(line, from: i + 4, into: &r) }
        if line.matches("cpus=", at: i) || line.matches("version = ", at: i) { return .header }

        // [cpu]
        guard let open = line.find(byte: 0x5B /* [ */, from: i),
              let (cpu, cpuEnd) = line.decimal(at: line.skipBlanks(open + 1)),
              cpuEnd < n, line[cpuEnd] == 0x5D /* ] */ else { return .unrecognized }
        r.cpu = Int32(truncatingIfNeeded: cpu)

        // <comm>-<tid> or <comm> <tid> or <comm> <pid>/<tid>, maybe followed by `(tgid)`.
        var j = open - 1
        while j >= i, line[j] == 0x20 || line[j] == 0x09 { j -= 1 }
        if j >= i, line[j] == 0x29 /* ) */ {
            while j >= i, line[j] != 0x28 /* ( */ { j -= 1 }
            j -= 1
            while j >= i, line[j] == 0x20 { j -= 1 }
        }
        let tidEnd = j + 1
        while j >= i, line[j] &- 0x30 <= 9 { j -= 1 }
        guard let (tid, _) = line.decimal(at: j + 1), j + 1 < tidEnd else { return .unrecognized }
        r.tid = Int32(truncatingIfNeeded: tid)
        var commEnd = j >= i ? j : i          // drop the separator (`-`, space or `/`)
        if j >= i, line[j] == 0x2F /* / */ {  // perf's pid/tid: drop the pid too
            var k = j - 1
            while k >= i, line[k] &- 0x30 <= 9 { k -= 1 }
            commEnd = k + 1
        }
        while commEnd > i, line[commEnd - 1] == 0x20 { commEnd -= 1 }
        r.commRange = i..<commEnd

        // Flags / latency column(s), then `<seconds>:`.
        i = cpuEnd + 1
        if i < n, line[i] == 0x2D /* trace-cmd -R: ]-0x1 */ { i = line.token(at: i).upperBound }
        var found = false
        for _ in 0..<3 {
            i = line.skipBlanks(i)
            if let (ns, end) = line.nanoseconds(at: i), end < n, line[end] == 0x3A, end > i {
                r.timestampNs = ns
                i = end + 1
                found = true
                break
            }
            i = line.token(at: i).upperBound
        }
        guard found else { return .unrecognized }

        // Event name: `kvm_exit:` or perf's `kvm:kvm_exit:`.
        i = line.skipBlanks(i)
        guard var colon = line.find(byte: 0x3A, from: i) else { return .unrecognized }
        var nameStart = i
        if colon + 1 < n, line[colon + 1] != 0x20, let second = line.find(byte: 0x3A, from: colon + 1),
           line.token(at: colon + 1, stop: 0x3A).upperBound == second {
            nameStart = colon + 1
            colon = second
        }
        r.eventRange = nameStart..<colon
        let fields = line.skipBlanks(colon + 1)
        let nameLength = colon - nameStart
        if nameLength == 8, line.matches("kvm_exit", at: nameStart) {
            r.kind = .exit
            return parseExit(line, fields, into: &r) ? .record : .malformedKVM
        }
        if nameLength == 9, line.matches("kvm_entry", at: nameStart) {
            r.kind = .entry
            return parseEntry(line, fields, into: &r) ? .record : .malformedKVM
        }
        r.kind = .otherEvent
        return .record
    }

    // MARK: kvm_exit

    private mutating func parseExit(_ line: LineBytes, _ start: Int, into r: inout KVMTraceRecord) -> Bool {
        r.vcpu = -1; r.rip = 0; r.info1 = 0; r.info2 = 0; r.intrInfo = 0; r.errorCode = 0
        var i = start
        if line.matches("exit_reason=", at: i) { return parseRawExit(line, i, into: &r) }
        if line.matches("vcpu ", at: i) {                       // linux ≥ 5.10
            guard let (v, end) = line.decimal(at: i + 5) else { return false }
            r.vcpu = Int32(truncatingIfNeeded: v)
            i = line.skipBlanks(end)
        }
        guard line.matches("reason ", at: i) else { return false }
        let reasonStart = i + 7
        // Needles start with a letter, not a space: memchr then stops far less often.
        guard let ripWord = line.find("rip 0x", from: reasonStart), ripWord > reasonStart + 1,
              line[ripWord - 1] == 0x20, let (rip, ripEnd) = line.hex(at: ripWord + 4) else { return false }
        let ripAt = ripWord - 1
        r.rip = rip
        r.reason = reasonID(line, reasonStart..<ripAt)
        // ≥5.10: ` info1 0x%016llx info2 0x%016llx intr_info 0x%08x error_code 0x%08x`
        if line.matches(" info1 0x", at: ripEnd) || line.find("info1 0x", from: ripEnd) != nil {
            let at = line.matches(" info1 0x", at: ripEnd) ? ripEnd : line.find("info1 0x", from: ripEnd)! - 1
            if let (v, e) = line.hex(at: at + 7) {
                r.info1 = v
                if line.matches(" info2 ", at: e), let (v2, e2) = line.hex(at: e + 7) {
                    r.info2 = v2
                    if line.matches(" intr_info ", at: e2), let (v3, e3) = line.hex(at: e2 + 11) {
                        r.intrInfo = UInt32(truncatingIfNeeded: v3)
                        if line.matches(" error_code ", at: e3), let (v4, _) = line.hex(at: e3 + 12) {
                            r.errorCode = UInt32(truncatingIfNeeded: v4)
                        }
                    }
                }
            }
        } else if let word = line.find("info ", from: ripEnd) {   // ≤5.9 and plugin: `info %llx %llx`
            if let (v, e) = line.hex(at: word + 5) {
                r.info1 = v
                if let (v2, _) = line.hex(at: line.skipBlanks(e)) { r.info2 = v2 }
            }
        }
        return true
    }

    private mutating func reasonID(_ line: LineBytes, _ range: Range<Int>) -> Int32 {
        // libtraceevent prints `reason UNKNOWN (74)` for numbers its table lacks.
        if line.matches("UNKNOWN (", at: range.lowerBound), let (v, _) = line.decimal(at: range.lowerBound + 9) {
            return reasons.id(isa: isaHint ?? .vmx, exitReason: UInt32(truncatingIfNeeded: v))
        }
        let id = reasons.id(spelling: UnsafeBufferPointer(rebasing: line.bytes[range]))
        if isaHint == nil, let isa = reasons.isas[Int(id)] { isaHint = isa }
        return id
    }

    private mutating func parseRawExit(_ line: LineBytes, _ start: Int, into r: inout KVMTraceRecord) -> Bool {
        var exitReason: UInt64?
        var isa: UInt64 = 1
        var i = start
        while i < line.count {
            let tok = line.token(at: i)
            guard let eq = line.find(byte: 0x3D, from: tok.lowerBound), eq < tok.upperBound,
                  let (v, _) = Self.number(line, eq + 1) else { i = line.skipBlanks(tok.upperBound); continue }
            let key = tok.lowerBound..<eq
            switch key.count {
            case 11 where line.matches("exit_reason", at: key.lowerBound): exitReason = v
            case 9 where line.matches("guest_rip", at: key.lowerBound): r.rip = v
            case 3 where line.matches("isa", at: key.lowerBound): isa = v
            case 5 where line.matches("info1", at: key.lowerBound): r.info1 = v
            case 5 where line.matches("info2", at: key.lowerBound): r.info2 = v
            case 9 where line.matches("intr_info", at: key.lowerBound): r.intrInfo = UInt32(truncatingIfNeeded: v)
            case 10 where line.matches("error_code", at: key.lowerBound): r.errorCode = UInt32(truncatingIfNeeded: v)
            case 7 where line.matches("vcpu_id", at: key.lowerBound): r.vcpu = Int32(truncatingIfNeeded: v)
            default: break
            }
            i = line.skipBlanks(tok.upperBound)
        }
        guard let code = exitReason else { return false }
        let which: ExitISA = isa == 2 ? .svm : .vmx
        isaHint = isaHint ?? which
        r.reason = reasons.id(isa: which, exitReason: UInt32(truncatingIfNeeded: code))
        return true
    }

    // MARK: kvm_entry

    private func parseEntry(_ line: LineBytes, _ start: Int, into r: inout KVMTraceRecord) -> Bool {
        r.vcpu = -1; r.rip = 0; r.reason = -1; r.intrInfo = 0; r.errorCode = 0
        if line.matches("vcpu_id=", at: start) {
            var i = start
            while i < line.count {
                let tok = line.token(at: i)
                if let eq = line.find(byte: 0x3D, from: tok.lowerBound), eq < tok.upperBound,
                   let (v, _) = Self.number(line, eq + 1) {
                    if eq - tok.lowerBound == 7, line.matches("vcpu_id", at: tok.lowerBound) { r.vcpu = Int32(truncatingIfNeeded: v) }
                    if eq - tok.lowerBound == 3, line.matches("rip", at: tok.lowerBound) { r.rip = v }
                }
                i = line.skipBlanks(tok.upperBound)
            }
            return r.vcpu >= 0
        }
        guard line.matches("vcpu ", at: start), let (v, end) = line.decimal(at: start + 5) else { return false }
        r.vcpu = Int32(truncatingIfNeeded: v)
        if let at = line.find("rip 0x", from: end), let (rip, _) = line.hex(at: at + 4) { r.rip = rip }
        return true
    }

    // MARK: lost events

    private func lostMarker(_ line: LineBytes, from: Int, into r: inout KVMTraceRecord) -> Outcome {
        guard let (cpu, end) = line.decimal(at: from) else { return .unrecognized }
        r.kind = .lostEvents
        r.cpu = Int32(truncatingIfNeeded: cpu)
        r.lost = 0
        var i = line.skipBlanks(end)
        guard i < line.count, line[i] == 0x5B else { return .unrecognized }
        i += 1
        if line.matches("LOST ", at: i) { i += 5 }                  // ftrace: [LOST 42 EVENTS]
        if let (v, _) = line.decimal(at: i) { r.lost = v }          // trace-cmd: [42 EVENTS DROPPED]
        guard line.find("EVENTS", from: i) != nil else { return .unrecognized }
        return .record
    }

    /// `0x1f`, `31` or `-1` (signed fields in raw output).
    static func number(_ line: LineBytes, _ at: Int) -> (UInt64, Int)? {
        if line.matches("0x", at: at) { return line.hex(at: at).map { ($0.value, $0.end) } }
        if let (v, e) = line.signedDecimal(at: at) { return (UInt64(bitPattern: v), e) }
        return line.decimal(at: at).map { ($0.value, $0.end) }
    }
}
