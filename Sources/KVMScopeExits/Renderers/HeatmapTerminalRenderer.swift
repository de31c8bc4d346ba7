import Foundation

/// The latency heatmap as terminal text: time left to right, latency (log2 rows) bottom to top,
/// colour = how many exits fell in the cell, on a log scale. With colour: full blocks in a
/// 256-colour ramp; without (not a terminal, NO_COLOR): ASCII characters of increasing weight.
enum HeatmapTerminalRenderer {
    /// xterm-256 ramp, dark blue → green → yellow → red.
    static let ramp = [17, 19, 25, 31, 37, 43, 78, 114, 150, 186, 222, 215, 209, 203, 197]
    /// ASCII ramp for plain output.
    static let plain: [Character] = [".", ":", "-", "=", "+", "*", "o", "#", "%", "@"]

    public static func render(_ h: HeatmapData, title: String, width: Int = 100, style: TerminalStyle) -> String {
        guard h.total > 0, let start = h.startNs else { return "\(title): no exit-entry pairs\n" }
        // Rows a latency can fall in at the trace's resolution, labelled with what they hold
        // (HeatmapRowLabels.swift): never a row finer than the timestamps.
        let rows = h.displayRows
        let labelWidth = max(8, rows.map { h.label(row: $0).count }.max() ?? 0)
        let plotWidth = max(10, width - labelWidth - 2)
        let grid = regroup(h, maxColumns: plotWidth)
        let maxCount = grid.columns.flatMap { $0 }.max() ?? 1
        let levels = style.colors ? ramp.count : plain.count
        var out = "\(title)\n"
        out += "  x: time since \(DurationFormat.timestamp(start)) (\(DurationFormat.short(grid.widthNs)) per column)"
        out += ", y: exit\(style.colors ? "→" : "->")entry latency (rows double), cell: number of exits\n"
        for row in rows.reversed() {
            let label = h.label(row: row)
            out += String(repeating: " ", count: max(0, labelWidth - label.count)) + label + " |"
            for col in grid.columns {
                let c = col[row]
                if c == 0 { out += " "; continue }
                let level = Self.level(c, max: maxCount, levels: levels)
                out += style.colors ? style.color256("█", ramp[level]) : String(plain[level])
            }
            out += "\n"
        }
        out += String(repeating: " ", count: labelWidth) + " +" + String(repeating: "-", count: grid.columns.count) + "\n"
        out += axis(columns: grid.columns.count, widthNs: grid.widthNs, indent: labelWidth + 2)
        out += legend(maxCount: maxCount, levels: levels, style: style, indent: labelWidth + 2)
        return out
    }

    static func regroup(_ h: HeatmapData, maxColumns: Int) -> (columns: [[UInt64]], widthNs: UInt64) {
        let used = max(h.counts.count, 1)
        let k = max(1, (used + maxColumns - 1) / maxColumns)
        var out = [[UInt64]](repeating: [UInt64](repeating: 0, count: h.rowCount), count: (used + k - 1) / k)
        for (c, col) in h.counts.enumerated() { for (r, v) in col.enumerated() { out[c / k][r] += v } }
        return (out, h.bucketWidthNs * UInt64(k))
    }

    /// Log-scale level 0..<levels for a count ≥ 1.
    public static func level(_ c: UInt64, max: UInt64, levels: Int) -> Int {
        guard max > 1 else { return levels - 1 }
        let f = log(Double(c)) / log(Double(max))
        return Swift.min(levels - 1, Int(f * Double(levels - 1) + 0.5))
    }

    /// Smallest count mapped to `level` (inverse of `level`).
    public static func lowerBound(level: Int, max: UInt64, levels: Int) -> UInt64 {
        if max <= 1 { return level == levels - 1 ? 1 : UInt64.max }
        guard level > 0 else { return 1 }
        let f = (Double(level) - 0.5) / Double(levels - 1)
        return Swift.max(1, UInt64(ceil(exp(f * log(Double(max))))))
    }

    static func axis(columns: Int, widthNs: UInt64, indent: Int) -> String {
        var line = [Character](repeating: " ", count: columns + 12)
        var col = 0
        while col < columns {
            let label = Array(DurationFormat.seconds(Double(UInt64(col) * widthNs)))
            if col + label.count <= line.count { for (i, ch) in label.enumerated() { line[col + i] = ch } }
            col += max(12, label.count + 2)
        }
        return String(repeating: " ", count: indent) + String(line).trimmingCharacters(in: .whitespaces) + "\n"
    }

    static func legend(maxCount: UInt64, levels: Int, style: TerminalStyle, indent: Int) -> String {
        var parts: [String] = []
        for level in 0..<levels {
            let low = lowerBound(level: level, max: maxCount, levels: levels)
            let next = level + 1 < levels ? lowerBound(level: level + 1, max: maxCount, levels: levels) : UInt64.max
            if low > maxCount || next <= low { continue }   // no count maps to this level
            let mark = style.colors ? style.color256("█", ramp[level]) : String(plain[level])
            parts.append("\(mark)\(style.colors ? "≥" : ">=")\(low)")
        }
        return String(repeating: " ", count: indent) + "exits per cell: " + parts.joined(separator: " ") + "\n"
    }
}
