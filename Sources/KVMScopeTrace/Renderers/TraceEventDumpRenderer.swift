import Foundation

/// `kvmscope trace --events-only`: one line per event.
///
/// Text lines have exactly the shape QEMU's scripts/simpletrace.py prints (its `Formatter2`):
///
///     virtio_blk_rw_complete 12.345 pid=4242 vdev=0x55d0c8a1b2c0 req=0x55d0c8a1c000 ret=0xfffffffffffffffb
///
/// name, microseconds since the previous event (3 decimals), `pid=`, then every argument as
/// `name=0x…` (the 64-bit pattern, as simpletrace stores it) or `name=b'…'` for strings (Python's
/// bytes repr). For simpletrace input the output is byte-for-byte what simpletrace.py prints,
/// so scripts written against it keep working; the log backend's thread id is printed as `tid=`.
/// Events without a timestamp (log backend without `-msg timestamp=on`) show `-` as the delta.
///
/// `--json` prints JSON Lines instead: `{"args":{…},"name":…,"schemaVersion":…,"thread":…,"time":…,"type":"event"}` with typed
/// values (signed and unsigned numbers, pointers as `"0x…"` strings, strings as strings).
public struct TraceEventDumpRenderer {
    public enum Style { case simpletrace, jsonLines }

    public let style: Style
    /// `pid` (simpletrace, SystemTap) or `tid` (log backend).
    public let threadLabel: String
    private var lastTimestamp: Int64?

    public init(style: Style, threadLabel: String = "pid") {
        self.style = style
        self.threadLabel = threadLabel
    }

    /// Appends the event's line (with `\n`) to `out`.
    public mutating func append(_ event: TraceEvent, to out: inout [UInt8]) {
        switch style {
        case .simpletrace: appendSimpletrace(event, to: &out)
        case .jsonLines: Self.appendJSON(event, to: &out)
        }
    }

    private mutating func appendSimpletrace(_ event: TraceEvent, to out: inout [UInt8]) {
        out += event.definition.name.utf8
        out.append(0x20)
        if let ts = event.timestamp?.nanoseconds {
            let delta = ts &- (lastTimestamp ?? ts)
            lastTimestamp = ts
            Self.appendMicroseconds(delta, to: &out)
        } else {
            out.append(UInt8(ascii: "-"))
        }
        out.append(0x20)
        out += threadLabel.utf8
        out.append(UInt8(ascii: "="))
        if let thread = event.thread { out += String(thread).utf8 } else { out.append(UInt8(ascii: "-")) }
        out.append(0x20)
        let args = event.definition.arguments
        for (i, arg) in args.enumerated() {
            if i > 0 { out.append(0x20) }
            out += arg.name.utf8
            out.append(UInt8(ascii: "="))
            if arg.kind == .string {
                Self.appendPythonBytesRepr(event.stringArgumentBytes(i) ?? [], to: &out)
            } else {
                out += "0x".utf8
                Self.appendHex(event.bits[i], to: &out)
            }
        }
        out.append(0x0A)
    }

    /// `delta_ns / 1000` with three decimals, as Python's `f'{delta_ns / 1000:0.3f}'` prints it.
    /// The quotient has at most three decimals, so integer arithmetic gives the same digits as
    /// Python's correctly rounded float while the float can still tell them apart (|x| < 10^12 µs).
    static func appendMicroseconds(_ deltaNs: Int64, to out: inout [UInt8]) {
        if deltaNs > -1_000_000_000_000_000 && deltaNs < 1_000_000_000_000_000 {
            if deltaNs < 0 { out.append(UInt8(ascii: "-")) }
            let m = deltaNs.magnitude
            out += String(m / 1000).utf8
            out.append(UInt8(ascii: "."))
            let frac = m % 1000
            out.append(UInt8(truncatingIfNeeded: 0x30 + frac / 100))
            out.append(UInt8(truncatingIfNeeded: 0x30 + frac / 10 % 10))
            out.append(UInt8(truncatingIfNeeded: 0x30 + frac % 10))
        } else {
            out += String(format: "%.3f", Double(deltaNs) / 1000).utf8
        }
    }

    static let hexDigits = Array("0123456789abcdef".utf8)

    static func appendHex(_ v: UInt64, to out: inout [UInt8]) {
        if v == 0 { out.append(0x30); return }
        var shift = (64 - v.leadingZeroBitCount + 3) / 4 * 4
        while shift > 0 {
            shift -= 4
            out.append(hexDigits[Int((v >> UInt64(shift)) & 0xf)])
        }
    }

    /// CPython's repr() of a bytes object: `b'…'`, or `b"…"` when the bytes contain `'` but no
    /// `"`; `\\`, the quote, `\t`, `\n`, `\r` escaped; other bytes outside 0x20…0x7e as `\xhh`.
    static func appendPythonBytesRepr(_ bytes: [UInt8], to out: inout [UInt8]) {
        let quote: UInt8 = bytes.contains(0x27) && !bytes.contains(0x22) ? 0x22 : 0x27
        out.append(UInt8(ascii: "b"))
        out.append(quote)
        for c in bytes {
            switch c {
            case quote, 0x5C: out.append(0x5C); out.append(c)
            case 0x09: out += "\\t".utf8
            case 0x0A: out += "\\n".utf8
            case 0x0D: out += "\\r".utf8
            case 0x20..<0x7F: out.append(c)
            default:
                out += "\\x".utf8
                out.append(hexDigits[Int(c >> 4)])
                out.append(hexDigits[Int(c & 0xf)])
            }
        }
        out.append(quote)
    }

    static func appendJSON(_ event: TraceEvent, to out: inout [UInt8]) {
        out += "{\"args\":{".utf8
        // Keys sorted like every kvmscope JSON output.
        let args = event.definition.arguments.enumerated().sorted { $0.element.name < $1.element.name }
        for (n, (i, arg)) in args.enumerated() {
            if n > 0 { out.append(UInt8(ascii: ",")) }
            appendJSONString(arg.name.utf8, to: &out)
            out.append(UInt8(ascii: ":"))
            switch event.value(i) {
            case let .signed(v): out += String(v).utf8
            case let .unsigned(v): out += String(v).utf8
            case let .pointer(v):
                out += "\"0x".utf8
                appendHex(v, to: &out)
                out.append(UInt8(ascii: "\""))
            case let .string(s): appendJSONString(s.utf8, to: &out)
            }
        }
        out += "},\"name\":".utf8
        appendJSONString(event.definition.name.utf8, to: &out)
        out += Self.schemaVersionMember
        out += ",\"thread\":".utf8
        if let t = event.thread { out += String(t).utf8 } else { out += "null".utf8 }
        out += ",\"time\":".utf8
        if let ts = event.timestamp?.nanoseconds {
            if ts < 0 { out.append(UInt8(ascii: "-")) }
            let m = ts.magnitude
            out += String(m / 1_000_000_000).utf8
            out.append(UInt8(ascii: "."))
            let frac = String(m % 1_000_000_000)
            out += repeatElement(UInt8(ascii: "0"), count: 9 - frac.utf8.count)
            out += frac.utf8
        } else {
            out += "null".utf8
        }
        out += ",\"type\":\"event\"}\n".utf8
    }

    /// The JSON contract's version on every record (written by hand here: this path runs once per event).
    static let schemaVersionMember = Array(",\"schemaVersion\":\(JSONContract.schemaVersion)".utf8)

    static func appendJSONString<S: Sequence>(_ s: S, to out: inout [UInt8]) where S.Element == UInt8 {
        out.append(UInt8(ascii: "\""))
        for c in s {
            switch c {
            case 0x22: out += "\\\"".utf8
            case 0x5C: out += "\\\\".utf8
            case 0x0A: out += "\\n".utf8
            case 0x0D: out += "\\r".utf8
            case 0x09: out += "\\t".utf8
            case 0..<0x20:
                out += "\\u00".utf8
                out.append(hexDigits[Int(c >> 4)])
                out.append(hexDigits[Int(c & 0xf)])
            default: out.append(c)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
