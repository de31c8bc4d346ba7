import Foundation

/// qemu-io's output shapes (qemu-io-cmds.c: print_report, cvtstr, timestr, dump_buffer), so that
/// scripts and eyes used to qemu-io read kvmscope io's output the same way.
public enum QemuIOFormat {
    /// `4 KiB`, `37.127 MiB`, `40 bytes`: three decimals, dropped when they are ".000".
    public static func size(_ value: Double) -> String {
        let units: [(Double, String)] = [(0x1p60, " EiB"), (0x1p50, " PiB"), (0x1p40, " TiB"), (0x1p30, " GiB"),
                                         (0x1p20, " MiB"), (0x1p10, " KiB")]
        var text: String, suffix: String
        if let (scale, s) = units.first(where: { value >= $0.0 }) {
            text = String(format: "%.3f", value / scale); suffix = s
        } else {
            text = String(format: "%f", value); suffix = " bytes"
        }
        if let r = text.range(of: ".000") { text = String(text[..<r.lowerBound]) }
        return text + suffix
    }

    /// `00.01 sec` under a second, else `H:MM:SS.ss`; `-C` always uses `H:MM:SS.ss`.
    public static func time(_ seconds: Double, fixed: Bool) -> String {
        let whole = Int(seconds)
        let frac = seconds - Double(whole)
        if fixed || whole > 0 {
            return String(format: "%u:%02u:%05.2f", UInt32(whole / 3600), UInt32((whole % 3600) / 60), Double(whole % 60) + frac)
        }
        return String(format: "%05.2f sec", frac)
    }

    /// The two report lines (or the `-C` line: bytes,ops,time,bytes/sec,ops/sec).
    public static func report(_ op: String, seconds: Double, offset: Int64, count: Int64, total: Int64, ops: Int, machine: Bool) -> String {
        let t = time(seconds, fixed: machine)
        let rate = Double(total) / seconds, opsRate = Double(ops) / seconds
        if machine {
            return String(format: "%lld,%d,%@,%.3f,%.3f\n", total, ops, t, rate, opsRate)
        }
        return "\(op) \(total)/\(count) bytes at offset \(offset)\n"
            + "\(size(Double(total))), \(ops) ops; \(t) (\(size(rate))/sec and \(String(format: "%.4f", opsRate)) ops/sec)\n"
    }

    /// `read -v`: offset, 16 hex bytes, then the bytes as letters/digits or dots.
    public static func dump(_ bytes: UnsafeRawBufferPointer, offset: Int64) -> String {
        var out = ""
        out.reserveCapacity(bytes.count / 16 * 80 + 80)
        let hex = Array("0123456789abcdef".utf8)
        var i = 0
        while i < bytes.count {
            out += String(format: "%08llx:  ", offset + Int64(i))
            let end = min(i + 16, bytes.count)
            var line: [UInt8] = []
            for j in i..<end { let b = bytes[j]; line += [hex[Int(b >> 4)], hex[Int(b & 15)], 0x20] }
            line.append(0x20)
            for j in i..<end {
                let b = bytes[j]
                let alnum = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)
                line.append(alnum ? b : UInt8(ascii: "."))
            }
            line.append(0x0a)
            out += String(decoding: line, as: UTF8.self)
            i = end
        }
        return out
    }

    public enum ParsedSize: Equatable { case value(Int64), invalid, tooLarge }

    /// qemu_strtosz's two failures told apart (EINVAL, ERANGE), for print_cvtnum_err.
    public static func parseSizeChecked(_ s: String) -> ParsedSize {
        if let v = parseSize(s) { return .value(v) }
        // Well-formed but past Int64: the same shape with the digits cut down parses.
        let lower = s.lowercased()
        let digits = lower.hasPrefix("0x") ? lower.dropFirst(2) : Substring(lower)
        let body = digits.last.map { suffixScale($0) != nil && !(lower.hasPrefix("0x") && $0.isHexDigit) } == true ? digits.dropLast() : digits
        let wellFormed = !body.isEmpty && (lower.hasPrefix("0x") ? body.allSatisfy(\.isHexDigit)
                                           : body.allSatisfy { $0.isNumber || $0 == "." } && body.filter { $0 == "." }.count <= 1)
        return wellFormed ? .tooLarge : .invalid
    }

    /// C's strtol(s, &end, 0) that must consume the whole string: decimal, 0x hex, 0 octal, an
    /// optional sign and leading blanks; nil when something is left over or it overflows.
    public static func strtol(_ s: String) -> Int? {
        if s.isEmpty { return 0 }                        // nothing to convert, nothing left over
        var t = Substring(s).drop { $0 == " " || $0 == "\t" || $0 == "\n" }
        var negative = false
        if t.first == "+" || t.first == "-" { negative = t.first == "-"; t = t.dropFirst() }
        var radix = 10
        if (t.hasPrefix("0x") || t.hasPrefix("0X")), t.dropFirst(2).first?.isHexDigit == true {
            radix = 16; t = t.dropFirst(2)
        } else if t.hasPrefix("0") {
            radix = 8
        }
        guard !t.isEmpty, t.allSatisfy({ $0.isHexDigit }), let v = Int(t, radix: radix) else { return nil }
        return negative ? -v : v
    }

    /// qemu-io's cvtnum (qemu_strtosz): `4096`, `4k`, `1.5M`, `0x1000`, `1G`; nil = parse error.
    public static func parseSize(_ s: String) -> Int64? {
        guard !s.isEmpty else { return nil }
        let lower = s.lowercased()
        if lower.hasPrefix("0x") {
            var digits = Substring(lower.dropFirst(2)), scale: Int64 = 1
            // b and e are hex digits there, so only k, m, g, t, p can be units after a hex number.
            if let last = digits.last, !last.isHexDigit, let sc = suffixScale(last) { scale = sc; digits = digits.dropLast() }
            guard let v = Int64(digits, radix: 16) else { return nil }
            let (r, o) = v.multipliedReportingOverflow(by: scale)
            return o ? nil : r
        }
        var numberPart = Substring(lower), scale: Int64 = 1
        if let last = lower.last, let sc = suffixScale(last) { scale = sc; numberPart = numberPart.dropLast() }
        guard !numberPart.isEmpty, numberPart.allSatisfy({ $0.isNumber || $0 == "." }),
              numberPart.filter({ $0 == "." }).count <= 1 else { return nil }
        if numberPart.contains(".") {
            guard scale > 1, let v = Double(numberPart) else { return nil }   // a fraction needs a unit
            let bytes = v * Double(scale)
            guard bytes < 9.2e18 else { return nil }
            return Int64(bytes)
        }
        guard let v = Int64(numberPart) else { return nil }
        let (r, o) = v.multipliedReportingOverflow(by: scale)
        return o ? nil : r
    }

    private static func suffixScale(_ c: Character) -> Int64? {
        switch c {
        case "b": return 1
        case "k": return 1 << 10
        case "m": return 1 << 20
        case "g": return 1 << 30
        case "t": return 1 << 40
        case "p": return 1 << 50
        case "e": return 1 << 60
        default: return nil
        }
    }
}
