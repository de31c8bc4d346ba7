import Foundation

/// One disk's latency histogram of one operation kind, as exported: the counts QEMU's
/// histogram gained since watch first saw it (an exporter's counters start from zero; a VM's
/// own counts from before that are not attributable to a time), and `_sum` the increase of
/// total_time_ns over the same span. QEMU puts every request in the histogram, failed ones too;
/// total_time_ns has failed ones only with account_failed on, so without it there is no `_sum`
/// (a sum over other requests than the counts would make a false mean).
///
/// When QEMU's counts go down or its boundaries change (the histogram set anew, the disk
/// re-created) the series starts again from zero: Prometheus reads that as a counter reset.
final class LatencyHistogramSeries {
    private var boundariesNs: [Int64] = []
    private var baseBins: [Int64] = []
    private var bins: [Int64] = []
    private var baseTimeNs: Int64?
    private var timeNs: Int64?

    func update(_ h: LatencyHistogram, totalTimeNs: Int64?) {
        let restart = h.boundariesNs != boundariesNs || zip(h.bins, bins).contains { $0 < $1 }
            || (totalTimeNs != nil) != (timeNs != nil) || (totalTimeNs.map { $0 < (timeNs ?? 0) } ?? false)
        if restart {
            boundariesNs = h.boundariesNs
            baseBins = h.bins
            baseTimeNs = totalTimeNs
        }
        bins = h.bins
        timeNs = totalTimeNs
    }

    /// `_bucket{…,le}` cumulative over the bins, `+Inf`, `_sum` (seconds) when known, `_count`.
    func write(name: String, labels: [(String, String)], into out: inout [UInt8]) {
        let base = labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",")
        var cumulative: Int64 = 0
        for (i, b) in boundariesNs.enumerated() {
            cumulative += bins[i] - baseBins[i]
            out += "\(name)_bucket{\(base),le=\"\(Self.seconds(b))\"} \(cumulative)\n".utf8
        }
        cumulative += bins[boundariesNs.count] - baseBins[boundariesNs.count]
        out += "\(name)_bucket{\(base),le=\"+Inf\"} \(cumulative)\n".utf8
        if let t = timeNs, let b = baseTimeNs { out += "\(name)_sum{\(base)} \(Double(t - b) / 1e9)\n".utf8 }
        out += "\(name)_count{\(base)} \(cumulative)\n".utf8
    }

    /// A boundary in seconds, shortest exact form (`0.0001`, `2.5`): ns are integers, so at
    /// most 9 decimals.
    static func seconds(_ ns: Int64) -> String {
        let whole = ns / 1_000_000_000, frac = ns % 1_000_000_000
        guard frac != 0 else { return "\(whole)" }
        var digits = String(frac)
        digits = String(repeating: "0", count: 9 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)"
    }

    /// Label values as the text format escapes them (`\`, `"`, newline).
    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
}
