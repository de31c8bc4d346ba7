import Foundation

/// The latency heatmap(s) as a standalone SVG: one panel per heatmap (all exits first, then
/// optional per-reason panels), each with a title, time axis, log2 latency axis with labels,
/// and a shared colour legend (exits per cell, log scale). Readable without explanation.
public enum HeatmapSVGRenderer {
    /// Perceptually ordered colour stops (viridis-like: dark purple → blue → green → yellow).
    static let stops: [(Double, (Int, Int, Int))] = [
        (0.00, (68, 1, 84)), (0.15, (72, 40, 120)), (0.30, (62, 74, 137)), (0.45, (49, 104, 142)),
        (0.60, (38, 130, 142)), (0.72, (31, 158, 137)), (0.82, (53, 183, 121)), (0.90, (110, 206, 88)),
        (0.96, (181, 222, 43)), (1.00, (253, 231, 37)),
    ]

    public struct Panel {
        public var title: String
        public var heatmap: HeatmapData
        public init(title: String, heatmap: HeatmapData) { self.title = title; self.heatmap = heatmap }
    }

    public static func render(panels: [Panel], subtitle: String) -> String {
        let plotW = 760.0, rowH = 16.0
        let left = 86.0, right = 150.0, top = 84.0
        let width = left + plotW + right
        let maxCount = panels.flatMap { $0.heatmap.counts.flatMap { $0 } }.max() ?? 1
        // One time scale for every panel, so that the same instant is at the same x everywhere.
        let starts = panels.compactMap { $0.heatmap.startNs }
        let start = starts.min() ?? 0
        let end = panels.compactMap { p in p.heatmap.startNs.map { $0 + UInt64(p.heatmap.counts.count) * p.heatmap.bucketWidthNs } }.max() ?? start + 1
        let scale = TimeScale(startNs: start, spanNs: Double(max(end - start, 1)))
        var y = top
        var body = ""
        for panel in panels {
            let rows = max(panel.heatmap.displayRows.count, 1)
            let plotH = Double(rows) * rowH
            body += renderPanel(panel, x: left, y: y, w: plotW, rowH: rowH, maxCount: maxCount, scale: scale)
            y += plotH + 96
        }
        let height = max(y - 40, top + 260)
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
        viewBox="0 0 \(Int(width)) \(Int(height))" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
        <rect x="0" y="0" width="\(Int(width))" height="\(Int(height))" fill="white"/>
        <text x="\(Int(left))" y="24" font-size="17" font-weight="bold">KVM exit→entry latency over time</text>
        <text x="\(Int(left))" y="43" font-size="12" fill="#444">\(escape(subtitle))</text>

        """
        svg += body
        svg += legend(x: left + plotW + 30, y: top, maxCount: maxCount)
        svg += "</svg>\n"
        return svg
    }

    struct TimeScale { var startNs: UInt64; var spanNs: Double }

    static func renderPanel(_ panel: Panel, x: Double, y: Double, w: Double, rowH: Double, maxCount: UInt64,
                            scale: TimeScale) -> String {
        let h = panel.heatmap
        var s = "<g>\n"
        s += "<text x=\"\(f(x))\" y=\"\(f(y - 8))\" font-size=\"13\" font-weight=\"bold\">\(escape(panel.title))</text>\n"
        // Only rows a latency can fall in at the trace's resolution (HeatmapRowLabels.swift).
        let shown = h.displayRows
        let position = Dictionary(uniqueKeysWithValues: shown.enumerated().map { ($1, $0) })
        let rows = max(shown.count, 1)
        let plotH = Double(rows) * rowH
        s += "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(w))\" height=\"\(f(plotH))\" fill=\"#e6e6e6\" stroke=\"#888\"/>\n"
        guard h.total > 0, !h.counts.isEmpty else {
            s += "<text x=\"\(f(x + 10))\" y=\"\(f(y + 14))\" font-size=\"12\">no exit→entry pairs</text>\n</g>\n"
            return s
        }
        let grid = HeatmapTerminalRenderer.regroup(h, maxColumns: 380)
        let offset = Double((h.startNs ?? scale.startNs) - scale.startNs)
        let cw = Double(grid.widthNs) / scale.spanNs * w
        for (c, col) in grid.columns.enumerated() {
            let cx = x + (offset + Double(c) * Double(grid.widthNs)) / scale.spanNs * w
            for (r, v) in col.enumerated() where v > 0 {
                guard let p = position[r] else { continue }
                let cy = y + plotH - Double(p + 1) * rowH
                s += "<rect x=\"\(f(cx))\" y=\"\(f(cy))\" width=\"\(f(min(cw + 0.4, x + w - cx)))\" height=\"\(f(rowH))\" "
                s += "fill=\"\(color(v, max: maxCount))\"><title>\(v) exits</title></rect>\n"
            }
        }
        // Y axis: each row labelled, at its middle, with the latencies it holds; a tick between rows.
        for (p, r) in shown.enumerated() {
            let cy = y + plotH - Double(p) * rowH
            s += "<line x1=\"\(f(x - 4))\" y1=\"\(f(cy))\" x2=\"\(f(x))\" y2=\"\(f(cy))\" stroke=\"#555\"/>\n"
            if rows <= 24 || p % 2 == 0 {
                s += "<text x=\"\(f(x - 7))\" y=\"\(f(cy - rowH / 2 + 4))\" font-size=\"11\" text-anchor=\"end\">\(escape(h.label(row: r)))</text>\n"
            }
        }
        s += "<text transform=\"translate(\(f(x - 62)),\(f(y + plotH / 2))) rotate(-90)\" font-size=\"12\" "
        s += "text-anchor=\"middle\">exit→entry latency</text>\n"
        // X axis: ~8 ticks at round times.
        let spanNs = scale.spanNs
        let step = niceStep(spanNs / 8)
        var t = 0.0
        while t <= spanNs + 1 {
            let tx = x + t / spanNs * w
            s += "<line x1=\"\(f(tx))\" y1=\"\(f(y + plotH))\" x2=\"\(f(tx))\" y2=\"\(f(y + plotH + 5))\" stroke=\"#555\"/>\n"
            s += "<text x=\"\(f(tx))\" y=\"\(f(y + plotH + 18))\" font-size=\"11\" text-anchor=\"middle\">"
            s += "\(DurationFormat.seconds(t))</text>\n"
            t += step
        }
        let start = DurationFormat.timestamp(scale.startNs)
        s += "<text x=\"\(f(x + w / 2))\" y=\"\(f(y + plotH + 36))\" font-size=\"12\" text-anchor=\"middle\">"
        s += "time since first exit (trace time \(start) s; \(DurationFormat.short(grid.widthNs)) per column)</text>\n"
        s += "</g>\n"
        return s
    }

    static func legend(x: Double, y: Double, maxCount: UInt64) -> String {
        let h = 200.0, w = 18.0, steps = 50
        var s = "<g>\n<text x=\"\(f(x))\" y=\"\(f(y - 8))\" font-size=\"12\" font-weight=\"bold\">exits per cell</text>\n"
        for i in 0..<steps {
            let frac = Double(i) / Double(steps - 1)
            let yy = y + h - Double(i + 1) * h / Double(steps)
            s += "<rect x=\"\(f(x))\" y=\"\(f(yy))\" width=\"\(f(w))\" height=\"\(f(h / Double(steps) + 0.5))\" fill=\"\(rgb(frac))\"/>\n"
        }
        s += "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(w))\" height=\"\(f(h))\" fill=\"none\" stroke=\"#888\"/>\n"
        // Ticks at 1, 10, 100, ... up to max (log scale), and the max itself.
        var ticks: [UInt64] = [1]
        var p: UInt64 = 10
        while p < maxCount { ticks.append(p); p *= 10 }
        if maxCount > 1 { ticks.append(maxCount) }
        for v in ticks {
            let frac = maxCount > 1 ? log(Double(v)) / log(Double(maxCount)) : 1
            let yy = y + h - frac * h
            s += "<line x1=\"\(f(x + w))\" y1=\"\(f(yy))\" x2=\"\(f(x + w + 4))\" y2=\"\(f(yy))\" stroke=\"#555\"/>\n"
            s += "<text x=\"\(f(x + w + 7))\" y=\"\(f(yy + 4))\" font-size=\"11\">\(DurationFormat.count(v))</text>\n"
        }
        s += "<text x=\"\(f(x))\" y=\"\(f(y + h + 18))\" font-size=\"11\" fill=\"#444\">log scale;</text>\n"
        s += "<text x=\"\(f(x))\" y=\"\(f(y + h + 32))\" font-size=\"11\" fill=\"#444\">grey: none</text>\n"
        s += "</g>\n"
        return s
    }

    /// A round step (1, 2, 5 × 10^k ns) near `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0 else { return 1 }
        let p = pow(10, floor(log10(raw)))
        for m in [1.0, 2.0, 5.0, 10.0] where m * p >= raw { return m * p }
        return 10 * p
    }

    static func color(_ v: UInt64, max: UInt64) -> String {
        rgb(max > 1 ? log(Double(v)) / log(Double(max)) : 1)
    }

    static func rgb(_ t: Double) -> String {
        let t = Swift.min(1, Swift.max(0, t))
        var i = 0
        while i < stops.count - 2 && t > stops[i + 1].0 { i += 1 }
        let (t0, c0) = stops[i], (t1, c1) = stops[i + 1]
        let u = t1 > t0 ? (t - t0) / (t1 - t0) : 0
        func mix(_ a: Int, _ b: Int) -> Int { Int((Double(a) + (Double(b) - Double(a)) * u).rounded()) }
        return String(format: "#%02x%02x%02x", mix(c0.0, c1.0), mix(c0.1, c1.1), mix(c0.2, c1.2))
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
