import Foundation
import KVMScope

/// Wall-clock seconds of `body`, and the process's peak resident memory afterwards.
func measure(_ body: () throws -> Void) rethrows -> (seconds: Double, peakRSSMiB: Double) {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return (seconds, Double(usage.ru_maxrss) / 1024)   // ru_maxrss is KiB on Linux
}

/// One result line in a fixed shape the README quotes.
func report(_ what: String, bytes: Int64, seconds: Double, peakRSSMiB: Double, extra: String = "") {
    let mbps = Double(bytes) / 1e6 / seconds
    print(String(format: "%@: %.1f MB in %.2f s = %.0f MB/s, peak RSS %.1f MiB%@",
                 what, Double(bytes) / 1e6, seconds, mbps, peakRSSMiB, extra.isEmpty ? "" : ", " + extra))
}

func benchLines(_ args: [String]) throws {
    guard let path = args.first else { throw KVMScopeError.usage("lines needs a FILE") }
    var splitter = LineSplitter()
    var count = 0
    let m = try measure {
        try splitter.forEachLine(in: FileByteSource(path: path)) { _, _ in count += 1 }
    }
    report("lines", bytes: splitter.stats.bytes, seconds: m.seconds, peakRSSMiB: m.peakRSSMiB, extra: "\(count) lines")
}
