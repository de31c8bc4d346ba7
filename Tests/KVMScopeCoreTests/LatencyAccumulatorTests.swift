import Histogram
import Testing
import KVMScopeCore

/// The accumulator's 16-bit bins against an HDR histogram fed every sample, as the
/// accumulator was before them: the same counts, total, exact min and max, and percentiles,
/// on seeded random samples that hit zeros, single bins over and over (so that bins fill and
/// spill, more than once), values past `histogramMaxNs`, and both precisions.
@Suite struct LatencyAccumulatorTests {
    static let percentiles: [Double] = [0, 0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 99.999, 100]

    static func check(_ samples: [UInt64], digits: SignificantDigits) {
        var a = LatencyAccumulator(digits: digits)
        var reference = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: LatencyAccumulator.histogramMaxNs,
                                          numberOfSignificantValueDigits: digits)
        for ns in samples {
            a.add(ns)
            reference.record(Swift.min(ns, LatencyAccumulator.histogramMaxNs))
        }
        let h = a.histogram
        #expect(h == reference)
        #expect(h.totalCount == reference.totalCount)
        #expect(h.maxRecorded == reference.maxRecorded)
        #expect(h.min == reference.min)
        #expect(h.minNonZero == reference.minNonZero)
        #expect(a.percentilesNs(Self.percentiles) == Self.percentiles.map { reference.valueAtPercentile($0) })
        #expect(a.count == UInt64(samples.count))
        #expect(a.clampedInHistogram == UInt64(samples.filter { $0 > LatencyAccumulator.histogramMaxNs }.count))
    }

    static func samples(_ n: Int, seed: UInt64) -> [UInt64] {
        var random = SplitMix64(seed: seed)
        let hot: [UInt64] = [0, 1, 1000, 2047, 2048, 2049, 4095, 65_535, 1_000_000]
        return (0..<n).map { _ in
            switch random.below(10) {
            case 0..<5: return hot[Int(random.below(UInt64(hot.count)))]            // fills bins: spills
            case 5: return LatencyAccumulator.histogramMaxNs + random.below(1 << 50)   // clamped
            case 6: return random.next()                                            // anything
            default: return random.below(1 << (random.below(44)))                   // every magnitude
            }
        }
    }

    @Test(arguments: [SignificantDigits.two, .three])
    func binsMakeTheHistogramOfEverySample(digits: SignificantDigits) {
        Self.check(Self.samples(1_000_000, seed: 19), digits: digits)
        Self.check(Self.samples(1000, seed: 20), digits: digits)
        Self.check([], digits: digits)
        Self.check([0, 0, 0], digits: digits)
        Self.check([5_000], digits: digits)
        // The smallest sample in a bin that spills before it arrives; and in the top bin.
        Self.check([UInt64](repeating: 3_000_000, count: 70_000) + [2_999_000, 3_001_000], digits: digits)
        Self.check([7] + [UInt64](repeating: 9_999_999, count: 200_000) + [9_999_000], digits: digits)
    }

    /// A total kept unbinned gets the histogram of every sample from the bins of parts that
    /// hold its samples between them (exits: the total from its reasons), bins that overflow
    /// in the sum included.
    @Test func unbinnedTotalFromItsParts() {
        // 150 000 of one value, spread: no part's bin fills, their sum does (twice).
        let samples = Self.samples(600_000, seed: 21) + [UInt64](repeating: 1_000, count: 150_000)
        var random = SplitMix64(seed: 22)
        var total = LatencyAccumulator(digits: .three, binned: false)
        var parts = [LatencyAccumulator](repeating: LatencyAccumulator(digits: .three), count: 5)
        var reference = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: LatencyAccumulator.histogramMaxNs,
                                          numberOfSignificantValueDigits: .three)
        for ns in samples {
            total.add(ns)
            parts[Int(random.below(5))].add(ns)
            reference.record(Swift.min(ns, LatencyAccumulator.histogramMaxNs))
        }
        // A bin that spills inside one part too.
        for _ in 0..<70_000 {
            total.add(2_000_000)
            parts[0].add(2_000_000)
            reference.record(2_000_000)
        }
        let summed = total.addingBins(of: parts)
        let h = summed.histogram
        #expect(h == reference)
        #expect(h.maxRecorded == reference.maxRecorded && h.min == reference.min && h.minNonZero == reference.minNonZero)
        #expect(summed.percentilesNs(Self.percentiles) == Self.percentiles.map { reference.valueAtPercentile($0) })
        #expect(summed.count == total.count && summed.stddevNs == total.stddevNs && summed.maxNs == total.maxNs)
    }
}
