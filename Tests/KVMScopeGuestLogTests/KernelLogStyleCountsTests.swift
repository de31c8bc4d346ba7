import Testing
@testable import KVMScopeGuestLog

/// The guest and host readers count lines per style in a fixed block of counters indexed by
/// hand: every style, including ones added later (journal JSON and export came after the
/// first readers), must have a counter of its own, or two styles' counts would be merged.
@Suite struct KernelLogStyleCountsTests {
    @Test func everyStyleHasItsOwnCounter() {
        let indices = KernelLogStyle.allCases.map(\.counterIndex)
        #expect(Set(indices).count == KernelLogStyle.allCases.count)
        #expect(indices.allSatisfy { (0..<13).contains($0) })
    }

    @Test func countsComeBackPerStyle() {
        var counts = KernelLogStyleCounts()
        for (n, style) in KernelLogStyle.allCases.enumerated() {
            for _ in 0...n { counts.add(style) }
        }
        for (n, style) in KernelLogStyle.allCases.enumerated() {
            #expect(counts.count(style) == n + 1, "\(style)")
        }
        #expect(counts.nonZero.count == KernelLogStyle.allCases.count)
        #expect(KernelLogStyleCounts().nonZero.isEmpty)
    }
}
