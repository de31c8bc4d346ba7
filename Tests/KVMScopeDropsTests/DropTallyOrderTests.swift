import Testing
import KVMScopeTestSupport
@testable import KVMScopeDrops

/// Ties in count are ordered by every field of the key, so one capture always gives one report
/// (a fuzzed trace-cmd capture gave two: a drop without a protocol and one with protocol 0 sorted
/// the same and fell back to the dictionary's order, which changes from run to run).
@Suite struct DropTallyOrderTests {
    @Test func keysThatDifferOnlyInAbsentVersusZeroSortApart() {
        let location = DropLocation(symbol: "__udp6_libev", offset: 0)
        let reason = DropReason(name: "NO_SOCKET")
        let keys = [
            DropKey(location: location, reason: reason, protocolNumber: nil, origin: .software, comm: nil, hardwareTrap: nil),
            DropKey(location: location, reason: reason, protocolNumber: 0, origin: .software, comm: nil, hardwareTrap: nil),
            DropKey(location: location, reason: nil, protocolNumber: 0, origin: .software, comm: nil, hardwareTrap: nil),
            DropKey(location: location, reason: reason, protocolNumber: 0, origin: .software, comm: "", hardwareTrap: nil),
        ]
        #expect(Set(keys.map(DropTally.sortText)).count == keys.count)
        // Whatever order the counts were added in, the rows come out the same.
        var orders: Set<[String]> = []
        for permutation in [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]] {
            var t = DropTally()
            for i in permutation { t.add(keys[i], count: 1) }
            orders.insert(t.rows.map { DropTally.sortText($0.key) })
        }
        #expect(orders.count == 1)
    }
}
