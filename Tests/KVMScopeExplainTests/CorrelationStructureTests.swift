import Testing
import KVMScopeTestSupport
import KVMScope
@testable import KVMScopeExplain

@Suite struct IntervalTreeTests {
    /// Every query answer equals a linear scan over all ranges, for trees built in random,
    /// ascending (the usual trace order) and descending order.
    @Test(arguments: [(UInt64(1), 0), (2, 1), (3, 2)])
    func matchesBruteForce(seed: UInt64, order: Int) {
        var rng = SplitMix64(seed: seed)
        var ranges: [(UInt64, UInt64, Int)] = (0..<3000).map { i in
            let start = UInt64.random(in: 0..<100_000, using: &rng)
            let len = UInt64.random(in: 0..<300, using: &rng)   // 0 = a flush-like empty range
            return (start, start + len, i)
        }
        if order == 1 { ranges.sort { $0.0 < $1.0 } }
        if order == 2 { ranges.sort { $0.0 > $1.0 } }
        var tree = IntervalTree<Int>()
        for r in ranges { tree.insert(start: r.0, end: r.1, value: r.2) }
        #expect(tree.count == ranges.count)
        #expect(tree.height <= 17)   // 1.44 * log2(3000) ≈ 16.6: the AVL bound holds
        for _ in 0..<2000 {
            let qs = UInt64.random(in: 0..<100_500, using: &rng)
            let qe = qs + UInt64.random(in: 0..<200, using: &rng)
            let qEnd = qe > qs ? qe : qs + 1
            let expected = Set(ranges.filter { r in
                let e = r.1 > r.0 ? r.1 : r.0 + 1
                return r.0 < qEnd && e > qs
            }.map(\.2))
            let got = tree.overlapping(start: qs, end: qe)
            #expect(Set(got) == expected)
            #expect(got.count == expected.count)   // no duplicates
        }
    }

    @Test func resultsComeInStartOrder() {
        var tree = IntervalTree<String>()
        tree.insert(start: 100, end: 200, value: "b")
        tree.insert(start: 0, end: 1000, value: "a")
        tree.insert(start: 150, end: 151, value: "c")
        tree.insert(start: 500, end: 600, value: "d")
        #expect(tree.overlapping(start: 150, end: 160) == ["a", "b", "c"])
        #expect(tree.overlapping(start: 200, end: 500).isEmpty == false)
        #expect(tree.overlapping(start: 200, end: 500) == ["a"])
        #expect(tree.overlapping(start: 2000, end: 3000).isEmpty)
        #expect(IntervalTree<Int>().overlapping(start: 0, end: 10).isEmpty)
    }

    /// A guest error reports the first sector of its request; the injected sector may be
    /// anywhere inside: both must find the same host request.
    @Test func sectorInsideALargerRequest() {
        var tree = IntervalTree<Int>()
        tree.insert(start: 2040, end: 2040 + 128, value: 7)   // a 64 KiB read
        #expect(tree.overlapping(start: 2048, end: 2049) == [7])
        #expect(tree.overlapping(start: 2040, end: 2041) == [7])
        #expect(tree.overlapping(start: 2168, end: 2169).isEmpty)   // half-open end
    }
}

@Suite struct LeftistHeapTests {
    @Test(arguments: [UInt64(7), 8, 9])
    func popsInSortedOrderLikeSorting(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var heap = LeftistHeap<Int>(by: <)
        var oracle: [Int] = []
        // Interleave inserts and pops, checking each pop against the oracle's minimum.
        for _ in 0..<5000 {
            if Bool.random(using: &rng) || oracle.isEmpty {
                let v = Int.random(in: -1000...1000, using: &rng)
                heap.insert(v)
                oracle.append(v)
            } else {
                let expected = oracle.min()!
                oracle.remove(at: oracle.firstIndex(of: expected)!)
                #expect(heap.popMin() == expected)
            }
            #expect(heap.count == oracle.count)
            #expect(heap.min == oracle.min())
        }
        var drained: [Int] = []
        while let v = heap.popMin() { drained.append(v) }
        #expect(drained == oracle.sorted())
        #expect(heap.popMin() == nil)
    }

    @Test func mergeOfTwoHeaps() {
        var rng = SplitMix64(seed: 11)
        var a = LeftistHeap<Int>(by: <), b = LeftistHeap<Int>(by: <)
        var all: [Int] = []
        for _ in 0..<700 { let v = Int.random(in: 0..<10_000, using: &rng); a.insert(v); all.append(v) }
        for _ in 0..<300 { let v = Int.random(in: 0..<10_000, using: &rng); b.insert(v); all.append(v) }
        _ = b.popMin().map { v in all.remove(at: all.firstIndex(of: v)!) }   // leaves a free slot in b
        a.merge(b)
        #expect(a.count == all.count)
        var out: [Int] = []
        while let v = a.popMin() { out.append(v) }
        #expect(out == all.sorted())
    }

    @Test func kWayMergeIsSortedAndStable() {
        let guest: [(Double, String)] = [(1, "g1"), (3, "g3"), (3, "g3b"), (9, "g9")]
        let host: [(Double, String)] = [(0.5, "h0"), (3, "h3"), (4, "h4")]
        let qmp: [(Double, String)] = []
        let merged = TimeOrderedMerge([AnyIterator(guest.makeIterator()), AnyIterator(host.makeIterator()),
                                       AnyIterator(qmp.makeIterator())], key: { $0.0 })
        #expect(merged.map(\.1) == ["h0", "g1", "g3", "g3b", "h3", "h4", "g9"])
    }
}
