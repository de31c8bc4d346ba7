extension LatencyAccumulator {
    /// The report's view of the shared streaming accumulator (Analyses/Exits): exact count,
    /// min, max, mean and sample standard deviation, HDR percentiles (3 significant digits)
    /// kept within the exact min and max, in microseconds.
    var latencySummary: LatencySummary? {
        guard count > 0 else { return nil }
        func us(_ ns: UInt64) -> Double { Double(Swift.min(Swift.max(ns, minNs), maxNs)) / 1000 }
        let p = percentilesNs([50, 90, 99, 99.9])
        return LatencySummary(
            count: Int(count), minUs: Double(minNs) / 1000, meanUs: meanNs / 1000, maxUs: Double(maxNs) / 1000,
            stddevUs: stddevNs / 1000,
            p50Us: us(p[0]), p90Us: us(p[1]), p99Us: us(p[2]), p999Us: us(p[3]))
    }
}
