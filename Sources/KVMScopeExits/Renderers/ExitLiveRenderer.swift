import Foundation
import KVMScopeCore

/// `kvmscope exits --live` frames: a table like `perf kvm stat live`'s, with the rate over the
/// last refresh and percentiles. On a terminal each frame replaces the last (cursor home, clear);
/// otherwise frames follow each other, separated by a blank line, so a log keeps them all.
public enum ExitLiveRenderer {
    public static let clearScreen = "\u{1B}[H\u{1B}[2J"

    public static func text(_ f: ExitLiveFrame, style: TerminalStyle = .plain, header: String) -> String {
        var out = style.bold(header) + String(format: "  %.1f s", f.elapsedSeconds)
            + ", \(DurationFormat.count(f.exits)) exits" + String(format: " (%.0f/s)", f.ratePerSecond)
            + ", by \(f.groupBy), sorted by \(f.sortBy)\n"
        let keyWidth = max(12, min(40, f.rows.map(\.key.count).max() ?? 0))
        func pad(_ s: String, _ w: Int, left: Bool = false) -> String {
            s.count >= w ? s : (left ? s + String(repeating: " ", count: w - s.count) : String(repeating: " ", count: w - s.count) + s)
        }
        let title = f.groupBy == "vm" ? "VM" : f.groupBy == "vcpu" ? "vCPU" : "reason"
        out += style.bold(pad(title, keyWidth, left: true) + pad("count", 12) + pad("rate/s", 10) + pad("time%", 8)
                          + pad("mean", 10) + pad("p99", 10) + pad("max", 10)) + "\n"
        for r in f.rows {
            out += pad(String(r.key.prefix(40)), keyWidth, left: true) + pad(DurationFormat.count(r.count), 12)
                + pad(String(format: "%.0f", r.ratePerSecond), 10) + pad(String(format: "%.2f", r.timePercent), 8)
                + pad(DurationFormat.short(r.meanNs), 10) + pad(DurationFormat.short(r.p99Ns), 10) + pad(DurationFormat.short(r.maxNs), 10) + "\n"
        }
        if f.rowsNotShown > 0 { out += "… \(f.rowsNotShown) more rows (--rows N)\n" }
        if f.lostEvents > 0 { out += style.bold("\(f.lostEvents) events lost in the ring buffer: counts are too low (--buffer-kb)") + "\n" }
        if f.entriesWithoutExit > 0 {
            out += "\(DurationFormat.count(f.entriesWithoutExit)) entries without their exit (exits of other reasons are filtered in the kernel, or tracing began mid-exit): not counted\n"
        }
        if let n = f.note { out += n + "\n" }
        return out
    }
}
