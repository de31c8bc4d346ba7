import Histogram

/// Streaming latency statistics in constant memory: exact count, min, max, mean and standard
/// deviation (Welford), percentiles from an HDR histogram (values in nanoseconds, 3 significant
/// digits, up to one hour; longer values are clamped and counted).
struct LatencyAccumulator {
    static let highestTrackableNs: UInt64 = 3_600_000_000_000

    private var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1,
                                              highestTrackableValue: LatencyAccumulator.highestTrackableNs,
                                              numberOfSignificantValueDigits: .three)
    private(set) var count = 0
    private var minNs = Int64.max
    private var maxNs = Int64.min
    private var mean = 0.0
    private var m2 = 0.0
    private(set) var clamped = 0

    mutating func record(_ ns: Int64) {
        let v = max(ns, 0)
        count += 1
        minNs = min(minNs, v)
        maxNs = max(maxNs, v)
        let x = Double(v)
        let delta = x - mean
        mean += delta / Double(count)
        m2 += delta * (x - mean)
        var h = UInt64(v)
        if h > Self.highestTrackableNs { h = Self.highestTrackableNs; clamped += 1 }
        histogram.record(h)
    }

    var summary: LatencySummary? {
        guard count > 0 else { return nil }
        // HDR values are bucket upper bounds; never report a percentile beyond the exact extremes.
        func us(_ ns: UInt64) -> Double { Double(min(max(Int64(clamping: ns), minNs), maxNs)) / 1000 }
        return LatencySummary(
            count: count,
            minUs: Double(minNs) / 1000,
            meanUs: mean / 1000,
            maxUs: Double(maxNs) / 1000,
            stddevUs: (m2 / Double(count)).squareRoot() / 1000,
            p50Us: us(histogram.valueAtPercentile(50)),
            p90Us: us(histogram.valueAtPercentile(90)),
            p99Us: us(histogram.valueAtPercentile(99)),
            p999Us: us(histogram.valueAtPercentile(99.9)))
    }
}
