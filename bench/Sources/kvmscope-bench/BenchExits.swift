import Foundation
import KVMScope

/// `kvmscope-bench exits FILE`: the whole `kvmscope exits` analysis (parse, pair, statistics,
/// heatmap, slow-exit log with context) over a trace file, as the CLI runs it.
func benchExits(_ args: [String]) throws {
    guard let path = args.first else { throw KVMScopeError.usage("exits needs a FILE (bench/make-exits.sh makes one)") }
    var result: ExitsReport?
    let m = try measure {
        result = try KVMExitTraceReader.analyze(FileByteSource(path: path))
    }
    guard let r = result else { return }
    report("exits", bytes: r.lines.bytes, seconds: m.seconds, peakRSSMiB: m.peakRSSMiB,
           extra: String(format: "%d lines (%.1f M lines/s), %llu pairs, %d reasons, %d vCPUs",
                         r.lines.total, Double(r.lines.total) / m.seconds / 1e6, r.pairing.pairs,
                         r.byReason.count, r.byVCPU.count))
}
