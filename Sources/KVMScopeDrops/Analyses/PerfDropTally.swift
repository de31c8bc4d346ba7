/// A perf.data's drops counted by what the file holds — address, reason, protocol (and the
/// comm when grouping by it), all numbers — so that the millions of samples of a large capture cost an
/// integer comparison each; the DropEvents (symbols, reason names) are made once per distinct
/// key when an interval closes. The counts are the same as adding every drop to the
/// aggregator one by one: it sums them, whatever the order.
struct PerfDropTally {
    struct Key: Hashable {
        var location: UInt64
        var reasonID: Int
        var protocolNumber: UInt16
        /// PerfDropNames' number of the thread's name; -1 when not grouping by it.
        var commID: Int
    }

    private var counts: [Key: Int] = [:]
    /// Floods repeat a handful of keys: the last few are counted here, compared field by
    /// field (cheaper than hashing one per drop), before they reach the dictionary.
    private var recentKeys: [Key] = []
    private var recentCounts: [Int] = []
    static let recentCapacity = 8

    @inline(__always)
    mutating func add(_ key: Key) {
        for i in recentKeys.indices where recentKeys[i] == key {
            recentCounts[i] += 1
            return
        }
        if recentKeys.count == Self.recentCapacity { flushRecent() }
        recentKeys.append(key)
        recentCounts.append(1)
    }

    private mutating func flushRecent() {
        for (k, n) in zip(recentKeys, recentCounts) { counts[k, default: 0] += n }
        recentKeys.removeAll(keepingCapacity: true)
        recentCounts.removeAll(keepingCapacity: true)
    }

    /// Every key with its count; the tally starts over.
    mutating func drain() -> [(key: Key, count: Int)] {
        flushRecent()
        defer { counts.removeAll(keepingCapacity: true) }
        return counts.map { ($0.key, $0.value) }
    }
}
