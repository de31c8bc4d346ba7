/// What each heatmap row can hold, and its label. Row r of the grid covers latencies
/// [2^r, 2^(r+1)) ns (row 0 also 0), but a trace only has the resolution of its timestamps:
/// trace-cmd report, perf script and ftrace text print microseconds, so every latency is a
/// whole number of µs — a 1 µs exit lands in [512ns, 1024ns) and a 0 µs one in row 0. Labelled
/// by their lower bounds ("512ns", "1ns") those rows claim precision the trace does not have.
/// Instead a row is labelled with the latencies it can actually hold at that resolution
/// ("1us", "3-4us", "5-8us", "<1us" for 0 at µs resolution), and rows that can hold none
/// (2 ns ... 511 ns at µs resolution) are not drawn.
extension HeatmapData {
    /// The smallest and largest latency row `row` (0-based in `counts`) can hold at
    /// `resolutionNs`, or nil when no multiple of the resolution falls in it.
    public func representable(row: Int) -> (min: UInt64, max: UInt64)? {
        let r = firstRow + row
        guard r >= 0, r < 63 else { return nil }
        let res = Swift.max(resolutionNs, 1)
        let low: UInt64 = r == 0 ? 0 : 1 << UInt64(r)
        let highInclusive: UInt64 = (1 << UInt64(r + 1)) - 1
        let minV = (low + res - 1) / res * res
        let maxV = highInclusive / res * res
        return minV <= maxV ? (minV, maxV) : nil
    }

    /// Rows (indices into `counts` columns) that can hold a latency at this resolution.
    public var displayRows: [Int] { (0..<rowCount).filter { representable(row: $0) != nil } }

    /// `1us`, `3-4us`, `1.02-2.05us`, `<1us` (0 at µs resolution), `0-1ns`.
    public func label(row: Int) -> String {
        guard let (lo, hi) = representable(row: row) else { return "" }
        let res = Swift.max(resolutionNs, 1)
        if lo == 0 && hi == 0 { return res > 1 ? "<" + Self.compact(res) : "0ns" }
        if lo == hi { return Self.compact(lo) }
        let (l, u) = (Self.compactParts(lo), Self.compactParts(hi))
        if l.unit == u.unit { return "\(l.number)-\(u.number)\(u.unit)" }
        return "\(l.number)\(l.unit)-\(u.number)\(u.unit)"
    }

    static func compact(_ ns: UInt64) -> String {
        let p = compactParts(ns)
        return p.number + p.unit
    }

    /// Up to three significant digits, trailing zeros dropped: 1000 → ("1", "us"), 1024 → ("1.02", "us").
    static func compactParts(_ ns: UInt64) -> (number: String, unit: String) {
        let units: [(Double, String)] = [(1e9, "s"), (1e6, "ms"), (1e3, "us"), (1, "ns")]
        let v = Double(ns)
        let (scale, unit) = units.first { v >= $0.0 } ?? (1, "ns")
        let x = v / scale
        let digits = x < 10 ? 2 : x < 100 ? 1 : 0
        var s = String(format: "%.\(digits)f", x)
        if s.contains(".") {
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
        }
        return (s, unit)
    }
}
