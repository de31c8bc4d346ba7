import Foundation
import Histogram

/// Streaming statistics of exit→entry latencies (nanoseconds) in fixed memory: exact count,
/// sum, min and max; mean and standard deviation by Welford's method (numerically stable, no
/// per-sample storage); percentiles from an HDR histogram.
///
/// Samples are counted in `bins`, 16-bit counts laid out exactly as the HDR histogram's own
/// counts array (same bucket and sub-bucket index, HdrHistogram's countsIndexForValue), a
/// quarter of its 64-bit array: `kvmscope exits` adds every pair to four accumulators, whose
/// arrays did not fit the cache together, and the increment's miss was a sixth of the run.
/// A bin that fills moves its 65 535 samples into `spilled`, a real HDR histogram; the HDR
/// histogram the percentiles are read from is made from both only when they are asked for,
/// and holds the same counts, total, min and max as one fed every sample.
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
    private var bins: [UInt16]
    /// The smallest sample above 0 (the HDR histogram's minNonZeroValue, before clamping).
    private var minNonZeroNs: UInt64 = .max
    public private(set) var clampedInHistogram: UInt64 = 0
    private var spilled: Histogram<UInt64>?
    private let layout: BinLayout

    /// `digits`: HDR precision; 3 keeps every percentile within 0.1% of the exact one, 2 within 1%.
    /// `binned: false` keeps no bins: for a total whose samples are all in parts that are
    /// binned (exits' total is the sum of its reasons), its percentiles read from
    /// `addingBins(of:)` instead, and a pair costs one increment fewer.
    public init(digits: SignificantDigits = .three, binned: Bool = true) {
        layout = BinLayout(digits)
        bins = binned ? [UInt16](repeating: 0, count: layout.index(Self.histogramMaxNs) + 1) : []
    }

    @inline(__always)
    public mutating func add(_ ns: UInt64) {
        count += 1
        sumNs &+= ns
        if ns < minNs { minNs = ns }
        if ns > maxNs { maxNs = ns }
        if ns != 0, ns < minNonZeroNs { minNonZeroNs = ns }
        let x = Double(ns)
        let delta = x - mean
        mean += delta / Double(count)
        m2 += delta * (x - mean)
        var v = ns
        if ns > Self.histogramMaxNs {
            v = Self.histogramMaxNs
            clampedInHistogram += 1
        }
        if bins.isEmpty { return }
        let i = layout.index(v)
        let full = bins.withUnsafeMutableBufferPointer { b -> Bool in
            b[i] &+= 1
            return b[i] == .max
        }
        if full { spill(i) }
    }

    /// Moves a full bin into `spilled`, recorded at a value inside the bin that cannot undercut
    /// the final smallest sample or pass the largest: the bin's lowest value, or the smallest
    /// sample so far when that is in this bin (the final minimum may be in it too).
    @inline(never)
    private mutating func spill(_ i: Int) {
        if spilled == nil { spilled = Self.emptyHistogram(layout.digits) }
        let clampedMin = Swift.min(minNonZeroNs, Self.histogramMaxNs)
        let value = layout.index(clampedMin) == i ? clampedMin : layout.lowestValue(i)
        spilled!.record(value, count: UInt64(UInt16.max))
        bins[i] = 0
    }

    /// This accumulator with the bins (and spilled samples) of `parts` added to its own: the
    /// histogram of a total kept unbinned, when `parts` hold exactly its samples between them.
    /// Count, min, max, mean and deviation stay this accumulator's own.
    public func addingBins(of parts: [LatencyAccumulator]) -> LatencyAccumulator {
        var sum = self
        if sum.bins.isEmpty { sum.bins = [UInt16](repeating: 0, count: layout.index(Self.histogramMaxNs) + 1) }
        for part in parts where part.count > 0 {
            precondition(part.layout.digits == layout.digits, "bins of another precision")
            if let other = part.spilled {
                if sum.spilled == nil { sum.spilled = Self.emptyHistogram(layout.digits) }
                sum.spilled!.add(other)
            }
            for i in part.bins.indices where part.bins[i] != 0 {
                let total = UInt32(sum.bins[i]) + UInt32(part.bins[i])
                if total >= UInt32(UInt16.max) {
                    sum.bins[i] = UInt16.max
                    sum.spill(i)
                    sum.bins[i] = UInt16(total - UInt32(UInt16.max))
                } else {
                    sum.bins[i] = UInt16(total)
                }
            }
        }
        return sum
    }

    static func emptyHistogram(_ digits: SignificantDigits) -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: histogramMaxNs,
                          numberOfSignificantValueDigits: digits)
    }

    /// The HDR histogram of every sample: each bin recorded at its lowest value, except the
    /// bins of the smallest non-zero sample and of the largest, recorded at those samples, so
    /// that its min and max (which valueAtPercentile clamps to) are the exact ones.
    public var histogram: Histogram<UInt64> {
        var h = spilled ?? Self.emptyHistogram(layout.digits)
        guard count > 0 else { return h }
        let top = Swift.min(maxNs, Self.histogramMaxNs)
        let bottom = Swift.min(minNonZeroNs, Self.histogramMaxNs)
        let topBin = layout.index(top)
        let bottomBin = minNonZeroNs == .max ? -1 : layout.index(bottom)
        bins.withUnsafeBufferPointer { b in
            for i in 0..<b.count where b[i] != 0 && i != topBin && i != bottomBin {
                h.record(layout.lowestValue(i), count: UInt64(b[i]))
            }
        }
        if bottomBin >= 0, bottomBin != topBin { h.record(bottom, count: UInt64(bins[bottomBin])) }
        h.record(top, count: UInt64(bins[topBin]))
        if bottomBin == topBin { h.record(bottom, count: 0) }
        return h
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

    public func percentileNs(_ p: Double) -> UInt64 { percentilesNs([p])[0] }

    /// Several percentiles from one histogram (it is made from the bins on every call).
    public func percentilesNs(_ ps: [Double]) -> [UInt64] {
        guard count > 0 else { return ps.map { _ in 0 } }
        let h = histogram
        return ps.map { h.valueAtPercentile($0) }
    }
}

/// HdrHistogram's counts-array index for lowestDiscernibleValue 1 (unitMagnitude 0), from the
/// same formulas as its init, bucketIndexForValue, subBucketIndexForValue, countsIndexFor and
/// valueFromIndex (hdrhistogram-swift Histogram.swift), which that package keeps internal.
struct BinLayout {
    let digits: SignificantDigits
    let halfCountMagnitude: Int
    let subBucketMask: UInt64
    let leadingZeroCountBase: Int

    init(_ digits: SignificantDigits) {
        self.digits = digits
        let largestValueWithSingleUnitResolution = UInt64(2 * Double.pow(10.0, Int(digits.rawValue)))
        let subBucketCountMagnitude = Int(Double.log2(Double(largestValueWithSingleUnitResolution)).rounded(.up))
        halfCountMagnitude = (subBucketCountMagnitude > 1 ? subBucketCountMagnitude : 1) - 1
        subBucketMask = UInt64((1 << subBucketCountMagnitude) - 1)
        leadingZeroCountBase = 64 - subBucketCountMagnitude
    }

    @inline(__always)
    func index(_ value: UInt64) -> Int {
        let bucket = leadingZeroCountBase - (value | subBucketMask).leadingZeroBitCount
        let subBucket = Int(truncatingIfNeeded: value &>> UInt64(bucket))
        return ((bucket + 1) &<< halfCountMagnitude) + (subBucket - (1 &<< halfCountMagnitude))
    }

    func lowestValue(_ index: Int) -> UInt64 {
        let halfCount = 1 << halfCountMagnitude
        var bucket = (index >> halfCountMagnitude) - 1
        var subBucket = (index & (halfCount - 1)) + halfCount
        if bucket < 0 { subBucket -= halfCount; bucket = 0 }
        return UInt64(subBucket) << UInt64(bucket)
    }
}
