import Foundation

/// Durations and trace timestamps as people read them: `812ns`, `1.23us`, `45.6ms`, `2.10s`
/// (ASCII `us`, as perf prints it, so reports grep and paste cleanly).
public enum DurationFormat {
    public static func short(_ ns: Double) -> String {
        let a = abs(ns)
        if a < 1_000 { return String(format: "%.0fns", ns) }
        if a < 1_000_000 { return scaled(ns / 1_000, "us") }
        if a < 1_000_000_000 { return scaled(ns / 1_000_000, "ms") }
        return scaled(ns / 1_000_000_000, "s")
    }

    public static func short(_ ns: UInt64) -> String { short(Double(ns)) }

    /// Three significant digits.
    static func scaled(_ v: Double, _ unit: String) -> String {
        if abs(v) < 10 { return String(format: "%.2f%@", v, unit) }
        if abs(v) < 100 { return String(format: "%.1f%@", v, unit) }
        return String(format: "%.0f%@", v, unit)
    }

    /// A trace timestamp as ftrace prints it (`1404.389448`), with nanoseconds when present.
    public static func timestamp(_ ns: UInt64) -> String {
        let s = ns / 1_000_000_000, frac = ns % 1_000_000_000
        if frac % 1000 == 0 { return String(format: "%llu.%06llu", s, frac / 1000) }
        return String(format: "%llu.%09llu", s, frac)
    }

    /// Seconds for axis labels: `0s`, `2.5s`, `120s`.
    public static func seconds(_ ns: Double) -> String {
        let s = ns / 1e9
        if s == 0 { return "0s" }
        if abs(s) < 0.001 { return String(format: "%.0fus", s * 1e6) }
        if abs(s) < 1 { return String(format: "%.0fms", s * 1e3) }
        if abs(s) < 10 { return String(format: "%.1fs", s) }
        return String(format: "%.0fs", s)
    }

    /// Thousands separators: 1,234,567.
    public static func count(_ n: UInt64) -> String {
        let s = String(n)
        var out = ""
        for (i, c) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return out
    }
}
