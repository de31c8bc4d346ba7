import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeFaults

/// A change of rules (`nbd control`, SIGHUP: `FaultInjectingBackend.replaceRules`) builds a
/// fresh engine, but a [rate] it leaves as it was keeps its pipe: the data already sent through
/// it still has to pass, so a new request waits behind it as it would have without the change
/// (and as the replies already waiting still do). A [rate] whose speed changed starts empty.
/// The backend's clock is given, so the figures are exact.
@Suite struct RatePipeAcrossRuleChangesTests {
    @Test func anUnchangedRateKeepsItsBacklogAndAChangedOneStartsEmpty() throws {
        let dir = TempDir()
        let image = dir.image("d.img", size: 4 << 20)
        var now = 100.0
        let here = RuleLocation(file: "r.cfg", line: 1)
        // 8 Mi bits/s: 1 MiB takes 1 s.
        var rules = BlkdebugConfig()
        rules.kvmscope.rates = [RateSection(bitsPerSecond: 8 << 20, location: here)]
        let backend = FaultInjectingBackend(image: try RawImageFile(path: image), rules: rules, clock: { now })
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        func readWait() -> UInt64 { buffer.withUnsafeMutableBytes { backend.read(offset: 0, into: $0).delayNanoseconds } }

        #expect(readWait() == 1_000_000_000)
        backend.replaceRules(rules)                      // a reload of the same file
        #expect(readWait() == 2_000_000_000)             // behind the first MiB, as without the reload
        now += 0.5
        var other = rules
        other.kvmscope.rates[0].id = "renamed"          // same place, same speed: the same pipe
        backend.replaceRules(other)
        #expect(readWait() == 2_500_000_000)
        var faster = rules
        faster.kvmscope.rates[0].bitsPerSecond = 16 << 20
        backend.replaceRules(faster)                     // another speed: a pipe of its own, empty
        #expect(readWait() == 500_000_000)
        backend.replaceRules(nil)
        #expect(readWait() == 0)
        backend.replaceRules(faster)                     // gone in between: starts empty
        #expect(readWait() == 500_000_000)
    }
}
