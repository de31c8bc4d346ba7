import Foundation
import Histogram

/// Streaming statistics of exit→entry latencies (nanoseconds) in fixed memory: exact count,
/// sum, min and max; mean and standard deviation by Welford's method (numerically stable, no
/// per-sample storage); percentiles from an HDR histogram.
public struct LatencyAccumulator {
    /// Latencies above this still count exactly in min/max/mean/stddev; the histogram records
    /// them at this value (and `clampedInHistogram` says how many), so only percentiles saturate.
    public static let histogramMaxNs: UInt64 = 1 << 42   // ≈ 73 minutes

    public private(set) var count: UInt64 = 0
    public private(set) var sumNs: UInt64 = 0
    public private(set) var minNs: UInt64 = .max
    public private(set) var maxNs: UInt64 = 0
    private var mean: Double = 0
    private var m2: Double = 0
    public private(set) var histogram: Histogram<UInt64>
    public private(set) var clampedInHistogram: UInt64 = 0

    /// `digits`: HDR precision; 3 keeps every percentile within 0.1% of the exact one, 2 within 1%.
    public init(digits: SignificantDigits = .three) {
        histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: Self.histogramMaxNs,
                                      numberOfSignificantValueDigits: digits)
    }

    @inline(__always)
    public mutating func add(_ ns: UInt64) {
        count += 1
        sumNs &+= ns
        if ns < minNs { minNs = ns }
        if ns > maxNs { maxNs = ns }
        let x = Double(ns)
        let delta = x - mean
        mean += delta / Double(count)
        m2 += delta * (x - mean)
        if ns <= Self.histogramMaxNs {
            histogram.record(ns)
        } else {
            histogram.record(Self.histogramMaxNs)
            clampedInHistogram += 1
        }
    }

    /// Exact mean from the integer sum.
    public var meanNs: Double { count == 0 ? 0 : Double(sumNs) / Double(count) }

    /// Sample standard deviation (n − 1), as perf computes it; 0 below two samples.
    public var stddevNs: Double { count < 2 ? 0 : (m2 / Double(count - 1)).squareRoot() }

    /// perf kvm stat's `( +- x% )`: the standard error of the mean relative to the mean, in %.
    public var relativeStandardErrorPercent: Double {
        guard count >= 2, meanNs > 0 else { return 0 }
        return 100 * (stddevNs / Double(count).squareRoot()) / meanNs
    }

    public func percentileNs(_ p: Double) -> UInt64 { count == 0 ? 0 : histogram.valueAtPercentile(p) }
}
