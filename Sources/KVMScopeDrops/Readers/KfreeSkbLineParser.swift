import Foundation

/// Parses one text line of the `skb:kfree_skb` tracepoint in every form it has been printed:
///
/// ftrace `trace`/`trace_pipe` (flags column since 4.x, `(tgid)` with record-tgid):
///     bash-3910    [001] ..s1.  1359.456250: kfree_skb: skbaddr=00000000df8d641d rx_sk=0000000000000000 protocol=2048 location=__udp4_lib_rcv+0x4bc/0xd00 reason: NO_SOCKET
/// trace-cmd report (optional `instance:` prefix, `-l` latency column, `-t` ns, `-R` raw fields):
///     kvs:  bash-4164  [001]  1363.751103: kfree_skb:            skbaddr=0xffff88816333f300 rx_sk=(nil) protocol=2048 location=__udp4_lib_rcv+0x4bc reason: NO_SOCKET
///     kvs:  bash-4164  [001]  1363.751103: kfree_skb:             skbaddr=0xffff88816333f300 location=__udp4_lib_rcv+0x4bc rx_sk=(nil) protocol=2048 reason=3
/// perf script (`comm pid` or `comm pid/tid`):
///     bash  4044 [001]  1360.824430: skb:kfree_skb: skbaddr=0xffff88816333f300 rx_sk=(nil) protocol=2048 location=__udp4_lib_rcv+0x4bc reason: NO_SOCKET
///
/// and the payload of every kernel's print format: `skbaddr=%p protocol=%u location=%p`
/// (≤5.16), `... reason: %s` (5.17+), `location=%pS` (6.x), `rx_sk=%p` (6.18). Fields are
/// matched by name, so their order does not matter.
public struct KfreeSkbLineParser: Sendable {
    public enum Result {
        case drop(DropEvent)
        /// `consume_skb` (or a kfree_skb whose reason is CONSUMED): a normal free, never a drop.
        case consumed
        /// A trace line of another event.
        case otherEvent
        /// Headers and comments of the formats (`# tracer: nop`, `cpus=2`, `version = 6`).
        case header
        case garbage
    }

    /// Names of numeric reasons (`reason=3` from `trace-cmd report -R`), from the format file
    /// of the kernel that recorded the trace.
    public var reasonNames: [UInt64: String]
    /// Whether to make the task's command name (only `--by comm` needs it; it costs a String a line).
    public var wantComm: Bool
    /// Symbol and reason names repeat on every line: each distinct one becomes a String once.
    let interner = ByteInterner()

    public init(reasonNames: [UInt64: String] = [:], wantComm: Bool = true) {
        self.reasonNames = reasonNames
        self.wantComm = wantComm
    }

    public func parse(_ line: LineBytes) -> Result {
        let first = line.skipBlanks(0)
        if first >= line.count { return .header }
        if line[first] == 0x23 { return .header }                                     // '#'
        if line.matches("cpus=", at: first) || line.matches("version = ", at: first) { return .header }
        guard let marker = line.find("kfree_skb: ") else {
            if line.find("consume_skb: ") != nil { return .consumed }
            return looksLikeTraceLine(line) ? .otherEvent : .garbage
        }
        // The event name must stand alone: `kfree_skb:` or `skb:kfree_skb:`.
        if marker > 0 {
            let before = line[marker - 1]
            if before != 0x20 && before != 0x3A && before != 0x09 { return .garbage }
        }
        guard var e = parsePayload(line, from: line.skipBlanks(marker + "kfree_skb: ".count)) else { return .garbage }
        if e.reason?.name == "CONSUMED" { return .consumed }
        var headerEnd = marker
        if marker >= 4, line.matches("skb:", at: marker - 4) { headerEnd = marker - 4 }
        parseHeader(line, end: headerEnd, into: &e)
        return .drop(e)
    }

    // MARK: payload

    func parsePayload(_ line: LineBytes, from start: Int) -> DropEvent? {
        var location: DropLocation?
        var protocolNumber: UInt16?
        var reason: DropReason?
        var sawSkb = false
        var i = start
        while i < line.count {
            i = line.skipBlanks(i)
            guard i < line.count else { break }
            let tok = line.token(at: i, stop: 0x3D)                      // up to '='
            if tok.upperBound < line.count, line[tok.upperBound] == 0x3D {
                let valueStart = tok.upperBound + 1
                let value = line.token(at: valueStart)
                switch tok.count {
                case 7 where line.matches("skbaddr", at: tok.lowerBound):
                    sawSkb = true
                case 8 where line.matches("location", at: tok.lowerBound):
                    var end = value.upperBound
                    location = parseLocation(line, value)
                    // `%pS` of a module symbol: `nft_do_chain+0x3e8/0x610 [nf_tables]`.
                    let next = line.skipBlanks(end)
                    if next < line.count, line[next] == 0x5B, let close = line.find(byte: 0x5D, from: next) {
                        location?.module = interner.string(line, next + 1..<close)
                        end = close + 1
                    }
                    i = end
                    continue
                case 8 where line.matches("protocol", at: tok.lowerBound):
                    if let (v, _) = line.decimal(at: valueStart), v <= UInt64(UInt16.max) {
                        protocolNumber = UInt16(v)
                    } else if let (v, _) = line.hex(at: valueStart), v <= UInt64(UInt16.max) {
                        protocolNumber = UInt16(v)
                    }
                case 6 where line.matches("reason", at: tok.lowerBound):     // trace-cmd -R: reason=3
                    reason = parseReason(line, value)
                default:
                    break
                }
                i = value.upperBound
            } else if tok.count == 7, line.matches("reason:", at: tok.lowerBound) {
                let valueStart = line.skipBlanks(tok.upperBound)
                let value = line.token(at: valueStart)
                reason = parseReason(line, value)
                i = value.upperBound
            } else {
                i = tok.upperBound + 1
            }
        }
        guard sawSkb, let location else { return nil }
        return DropEvent(location: location, protocolNumber: protocolNumber, reason: reason)
    }

    /// `__udp4_lib_rcv+0x4bc/0xd00`, `__udp4_lib_rcv+0x4bc`, `0xffffffff82046f4c` (perf,
    /// trace-cmd: real address), `ffffffff815b2b1e` (ftrace before 4.15: real) or
    /// `00000000a6aa3c2b` (ftrace since 4.15: `%p` hash, unresolvable).
    func parseLocation(_ line: LineBytes, _ r: Range<Int>) -> DropLocation? {
        guard !r.isEmpty else { return nil }
        if line.matches("(nil)", at: r.lowerBound) { return DropLocation(address: 0) }
        if line.matches("0x", at: r.lowerBound), let (v, end) = line.hex(at: r.lowerBound), end == r.upperBound {
            return DropLocation(address: v)
        }
        if let (v, end) = line.hex(at: r.lowerBound), end == r.upperBound, r.count == 16 || r.count == 8 {
            // A bare hex word is ftrace's `%p`. Kernel text addresses have the top bits set;
            // hashes (4.15+) print as 00000000xxxxxxxx on 64-bit kernels.
            let real = r.count == 16 ? v >= 0xFFFF_0000_0000_0000 : v >= 0xC000_0000
            return DropLocation(address: v, hashed: !real)
        }
        // symbol[+0xoff[/0xsize]]
        var nameEnd = r.upperBound
        if let plus = line.find(byte: 0x2B, from: r.lowerBound), plus < r.upperBound { nameEnd = plus }
        guard nameEnd > r.lowerBound else { return nil }
        var loc = DropLocation(symbol: interner.string(line, r.lowerBound..<nameEnd))
        if nameEnd < r.upperBound, let (off, afterOff) = line.hex(at: nameEnd + 1) {
            loc.offset = off
            if afterOff < r.upperBound, line[afterOff] == 0x2F, let (size, _) = line.hex(at: afterOff + 1) {
                loc.size = size
            }
        }
        return loc
    }

    func parseReason(_ line: LineBytes, _ r: Range<Int>) -> DropReason? {
        guard !r.isEmpty else { return nil }
        let c = line[r.lowerBound]
        if c >= 0x30 && c <= 0x39 {
            // A number: `reason=3` (trace-cmd -R) or `0x10005` (a value __print_symbolic did not know).
            let parsed = line.matches("0x", at: r.lowerBound) ? line.hex(at: r.lowerBound) : line.decimal(at: r.lowerBound)
            guard let (v, _) = parsed, v <= UInt64(UInt32.max) else { return nil }
            return DropReason(code: UInt32(v), kernelName: reasonNames[v])
        }
        return DropReason(code: nil, kernelName: interner.string(line, r))
    }

    // MARK: header

    /// Fills time, cpu, pid and comm from the text before the event name, reading tokens
    /// from the right (the comm, leftmost, may contain blanks).
    func parseHeader(_ line: LineBytes, end: Int, into e: inout DropEvent) {
        var cursor = end
        func blank(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 }
        func previous() -> Range<Int>? {
            var j = cursor
            while j > 0, blank(line[j - 1]) { j -= 1 }
            guard j > 0 else { return nil }
            var k = j
            while k > 0, !blank(line[k - 1]) { k -= 1 }
            cursor = k
            return k..<j
        }
        guard var last = previous() else { return }
        // Timestamp `1359.456250:`.
        if line[last.upperBound - 1] == 0x3A, let (t, tEnd) = line.seconds(at: last.lowerBound), tEnd == last.upperBound - 1 {
            e.time = t
            guard let next = previous() else { return }
            last = next
        }
        // Flags column (`..s1.`, `d.h2`), or in latency format CPU digits then flags (`1..s1.`).
        if !isCPUToken(line, last), isFlagsToken(line, last) {
            var k = last.lowerBound
            while k < last.upperBound, line[k] >= 0x30, line[k] <= 0x39 { k += 1 }
            if k > last.lowerBound, k < last.upperBound, let (cpu, _) = line.decimal(at: last.lowerBound) {
                e.cpu = Int32(truncatingIfNeeded: cpu)
            }
            guard let next = previous() else { return }
            last = next
        }
        if isCPUToken(line, last) {
            if let (cpu, _) = line.decimal(at: last.lowerBound + 1) { e.cpu = Int32(truncatingIfNeeded: cpu) }
            guard let next = previous() else { return }
            last = next
        }
        // ftrace record-tgid: `(   3910)` or `(-------)`.
        if line[last.upperBound - 1] == 0x29 {
            while line[last.lowerBound] != 0x28 {
                guard let p = previous() else { return }
                last = p
            }
            guard let next = previous() else { return }
            last = next
        }
        // The comm region starts at the first token, after trace-cmd's `instance:` prefix.
        var regionStart = line.skipBlanks(0)
        let firstEnd = line.token(at: regionStart).upperBound
        if firstEnd < last.lowerBound, line[firstEnd - 1] == 0x3A { regionStart = line.skipBlanks(firstEnd) }
        // perf: `comm pid` or `comm pid/tid`.
        if last.lowerBound > regionStart, let (pid, pidEnd) = line.decimal(at: last.lowerBound),
           pidEnd == last.upperBound || line[pidEnd] == 0x2F {
            if pidEnd < last.upperBound, let (tid, _) = line.decimal(at: pidEnd + 1) {
                e.pid = Int32(truncatingIfNeeded: tid)   // the thread is what ran the drop
            } else {
                e.pid = Int32(truncatingIfNeeded: pid)
            }
            if wantComm {
                var commEnd = last.lowerBound
                while commEnd > regionStart, blank(line[commEnd - 1]) { commEnd -= 1 }
                e.comm = interner.string(line, regionStart..<commEnd)
            }
            return
        }
        // ftrace / trace-cmd: `comm-pid` (the comm may contain blanks and dashes).
        var dash = last.upperBound - 1
        while dash > regionStart, line[dash] != 0x2D { dash -= 1 }
        if line[dash] == 0x2D, let (pid, pidEnd) = line.decimal(at: dash + 1), pidEnd == last.upperBound {
            e.pid = Int32(truncatingIfNeeded: pid)
            if wantComm, dash > regionStart { e.comm = interner.string(line, regionStart..<dash) }
        }
    }

    func isCPUToken(_ line: LineBytes, _ r: Range<Int>) -> Bool {
        r.count >= 3 && line[r.lowerBound] == 0x5B && line[r.upperBound - 1] == 0x5D
            && line.decimal(at: r.lowerBound + 1)?.end == r.upperBound - 1
    }

    /// ftrace's irq/need-resched/softirq/preempt/migrate columns: `.`, `d`, `D`, `N`, `n`,
    /// `p`, `P`, `h`, `H`, `s`, `S`, `b`, `B`, `X`, `z`, `Z`, digits and hex preempt depths.
    func isFlagsToken(_ line: LineBytes, _ r: Range<Int>) -> Bool {
        guard r.count >= 3, r.count <= 10 else { return false }
        var sawDot = false
        for k in r {
            switch line[k] {
            case 0x2E: sawDot = true
            case 0x30...0x39, 0x61...0x66, 0x44, 0x4E, 0x6E, 0x70, 0x50, 0x68, 0x48, 0x73, 0x53,
                 0x42, 0x58, 0x7A, 0x5A: continue
            default: return false
            }
        }
        // Pure numbers are pids/tids, not flags.
        return sawDot || line.decimal(at: r.lowerBound)?.end != r.upperBound
    }

    /// Another event's trace line: `... [001] ... 12.345678: name: ...`.
    /// A line of another trace event: `TIME: NAME: ...`, where TIME is the seconds.fraction stamp
    /// ftrace, trace-cmd report and perf script all print after a blank (kernel/trace/trace_output.c
    /// prints `%5lu.%06lu: `; trace-cmd -t and perf --ns print 9 digits) and NAME is an event name
    /// (`sched_switch`, `skb:consume_skb`). A guest console's `[    1.234567] virtio0: [vda] ...` or
    /// a kernel log's `sd 2:0:0:0: [sda] ...` is neither, so it is garbage here, not a trace event.
    func looksLikeTraceLine(_ line: LineBytes) -> Bool {
        guard let colon = line.find(": ") else { return false }
        var k = colon - 1
        var fraction = 0
        while k >= 0, line[k] >= 0x30 && line[k] <= 0x39 { k -= 1; fraction += 1 }
        guard (6...9).contains(fraction), k >= 1, line[k] == 0x2E else { return false }
        k -= 1
        let secondsEnd = k
        while k >= 0, line[k] >= 0x30 && line[k] <= 0x39 { k -= 1 }
        guard k < secondsEnd, k >= 0, line[k] == 0x20 || line[k] == 0x09 else { return false }
        // NAME, or perf's SYSTEM:NAME, then ": " (or the line's end: an event with no fields).
        var n = colon + 2
        var nameBytes = 0
        while n < line.count {
            if Self.isEventNameByte(line[n]) { nameBytes += 1; n += 1; continue }
            if line[n] == 0x3A, nameBytes > 0, n + 1 < line.count, Self.isEventNameByte(line[n + 1]) { n += 1; continue }
            break
        }
        guard nameBytes > 0, n < line.count, line[n] == 0x3A else { return false }
        return n + 1 == line.count || line[n + 1] == 0x20
    }

    private static func isEventNameByte(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x5F
    }
}

/// Turns repeated byte strings (symbol names, reasons, comms) into one shared String each, so a
/// reader makes no allocation per line for them. Used by one reader at a time.
final class ByteInterner: @unchecked Sendable {
    private var table: [UInt64: String] = [:]

    func string(_ line: LineBytes, _ r: Range<Int>) -> String {
        var h: UInt64 = 0xcbf29ce484222325                 // FNV-1a
        for i in r { h = (h ^ UInt64(line[i])) &* 0x100000001b3 }
        h ^= UInt64(r.count)
        if let s = table[h], s.utf8.count == r.count,
           s.utf8.withContiguousStorageIfAvailable({ memcmp($0.baseAddress!, line.bytes.baseAddress! + r.lowerBound, r.count) == 0 }) == true {
            return s
        }
        let s = line.string(r)
        if table.count < 4096 { table[h] = s }
        return s
    }
}
