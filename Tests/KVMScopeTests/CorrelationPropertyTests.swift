import Foundation
import Testing
@testable import KVMScope

/// Thousands of small random cases per run against brute-force oracles, to complement the
/// large fixed-shape cases in CorrelationStructureTests: many tiny trees and heaps reach the
/// corner shapes (rotations at the root, equal starts, ranges at the ends of UInt64, merges
/// of empty heaps, slot reuse) that a few big ones rarely do.
@Suite struct IntervalTreePropertyTests {
    /// The tree's contract: `[start, end)`, an empty range is one sector at `start`; at
    /// UInt64.max there is no sector after it, so an empty range there is stored empty.
    static func stored(_ start: UInt64, _ end: UInt64) -> (UInt64, UInt64) {
        (start, end > start ? end : (start == .max ? .max : start + 1))
    }

    /// A value from one of several scales, with the ends of the domain on purpose.
    static func point(_ rng: inout SplitMix64, scale: Int) -> UInt64 {
        switch scale {
        case 0: return rng.below(16)                              // everything collides
        case 1: return rng.below(10_000)
        case 2: return UInt64.max - rng.below(16)                 // the top of the domain
        default: return rng.next()
        }
    }

    @Test(arguments: [UInt64(101), 102, 103])
    func randomTreesAnswerLikeALinearScan(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var queries = 0, hits = 0
        for _ in 0..<1_500 {
            let scale = Int(rng.below(4))
            let n = Int(rng.below(60))
            var ranges: [(start: UInt64, end: UInt64, id: Int)] = []
            var tree = IntervalTree<Int>()
            for id in 0..<n {
                let a = Self.point(&rng, scale: scale)
                let length = rng.below(4) == 0 ? 0 : rng.below(scale == 0 ? 8 : 3_000)
                let b = a.addingReportingOverflow(length).overflow ? UInt64.max : a + length
                tree.insert(start: a, end: b, value: id)
                ranges.append((a, b, id))
            }
            #expect(tree.count == n)
            // AVL: height ≤ 1.44 log2(n + 2).
            #expect(Double(tree.height) <= 1.4405 * log2(Double(n + 2)))
            for _ in 0..<20 {
                let qs = Self.point(&rng, scale: scale)
                let qlen = rng.below(3) == 0 ? 0 : rng.below(scale == 0 ? 8 : 5_000)
                let qe = qs.addingReportingOverflow(qlen).overflow ? UInt64.max : qs + qlen
                let (s, e) = Self.stored(qs, qe)
                let expected = ranges.filter { r in
                    let (rs, re) = Self.stored(r.start, r.end)
                    return rs < e && re > s
                }
                let got = tree.overlapping(start: qs, end: qe)
                // Same set, no duplicates, ascending start order.
                #expect(got.sorted() == expected.map(\.id).sorted())
                let starts = got.map { id in ranges[id].start }
                #expect(starts == starts.sorted())
                queries += 1
                hits += got.count
            }
        }
        #expect(queries == 30_000 && hits > 10_000)
    }
}

@Suite struct LeftistHeapPropertyTests {
    /// Several heaps at once under random inserts, pops and merges (including of empty heaps
    /// and heaps with freed slots): each behaves as a sorted multiset.
    @Test(arguments: [UInt64(201), 202, 203])
    func randomMergesAndPopsBehaveLikeSorting(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for _ in 0..<1_000 {
            let k = 1 + Int(rng.below(4))
            var heaps = (0..<k).map { _ in LeftistHeap<Int>(by: <) }
            var oracles = [[Int]](repeating: [], count: k)
            for _ in 0..<Int(rng.below(120)) {
                let h = Int(rng.below(UInt64(k)))
                switch rng.below(10) {
                case 0...4:
                    let v = Int(rng.below(50)) - 25          // many equal keys
                    heaps[h].insert(v)
                    oracles[h].append(v)
                case 5...7:
                    let want = oracles[h].min()
                    if let w = want { oracles[h].remove(at: oracles[h].firstIndex(of: w)!) }
                    #expect(heaps[h].popMin() == want)
                default:
                    let other = Int(rng.below(UInt64(k)))
                    guard other != h else { continue }
                    heaps[h].merge(heaps[other])
                    oracles[h] += oracles[other]
                    heaps[other] = LeftistHeap<Int>(by: <)
                    oracles[other] = []
                }
                #expect(heaps[h].count == oracles[h].count)
                #expect(heaps[h].min == oracles[h].min())
            }
            for h in 0..<k {
                var drained: [Int] = []
                while let v = heaps[h].popMin() { drained.append(v) }
                #expect(drained == oracles[h].sorted())
            }
        }
    }

    /// k sorted inputs with many equal keys: the merge is the stable sort of their
    /// concatenation by (key, input, position).
    @Test(arguments: [UInt64(301), 302])
    func kWayMergeIsTheStableSort(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for _ in 0..<2_000 {
            let k = Int(rng.below(6))
            var inputs: [[(key: Double, tag: Int)]] = []
            var tag = 0
            for _ in 0..<k {
                var keys = (0..<Int(rng.below(25))).map { _ in Double(rng.below(10)) / 2 }
                keys.sort()
                inputs.append(keys.map { k in tag += 1; return (k, tag) })
            }
            let merged = TimeOrderedMerge(inputs.map { AnyIterator($0.makeIterator()) }, key: { $0.key }).map(\.tag)
            let expected = inputs.enumerated().flatMap { (source, list) in
                list.enumerated().map { (key: $0.element.key, source: source, position: $0.offset, tag: $0.element.tag) }
            }.sorted { ($0.key, $0.source, $0.position) < ($1.key, $1.source, $1.position) }.map(\.tag)
            #expect(merged == expected)
        }
    }
}
