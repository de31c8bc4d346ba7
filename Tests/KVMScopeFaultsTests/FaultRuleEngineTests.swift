import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeFaults

@Suite struct FaultRuleEngineTests {
    func engine(_ text: String, seed: UInt64 = 1, clock: @escaping () -> Double = { 0 }) -> FaultRuleEngine {
        let r = BlkdebugConfigReader().parse(text, file: "r.cfg")
        #expect(!r.hasErrors)
        return FaultRuleEngine(config: r.config, seed: seed, clock: clock)
    }

    @Test func sectorMatchesWhenTheByteRangeContainsIt() {
        let e = engine("[inject-error]\nevent = \"none\"\niotype = \"write\"\nsector = \"2048\"\n")
        #expect(e.check(offset: 1 << 20, bytes: 4096, iotype: .write)?.errno == 5)
        #expect(e.check(offset: (1 << 20) - 4096, bytes: 4096, iotype: .write) == nil)   // ends exactly at it
        #expect(e.check(offset: (1 << 20) - 512, bytes: 1024, iotype: .write)?.errno == 5)
        #expect(e.check(offset: (1 << 20) + 1, bytes: 4096, iotype: .write) == nil)
        #expect(e.check(offset: 1 << 20, bytes: 4096, iotype: .read) == nil)             // iotype
        #expect(e.check(offset: 0, bytes: 0, iotype: .write) == nil)
        #expect(e.hits == [2])
    }

    @Test func flushHasNoRangeAndDefaultMaskSkipsBlockStatus() {
        let e = engine("[inject-error]\nevent = \"none\"\nerrno = \"28\"\n[inject-error]\nevent = \"none\"\nsector = \"0\"\nerrno = \"5\"\n")
        #expect(e.check(offset: 0, bytes: 0, iotype: .flush)?.errno == 28)
        #expect(e.check(offset: 0, bytes: 512, iotype: .blockStatus) == nil)
        #expect(e.check(offset: 0, bytes: 512, iotype: .discard)?.errno == 28)   // first rule in file order wins
    }

    @Test func onceDeletesTheRuleAfterItsFirstHit() {
        let e = engine("[inject-error]\nevent = \"read_aio\"\niotype = \"read\"\nsector = \"8200\"\nonce = \"on\"\n")
        #expect(e.check(offset: 8192 * 512, bytes: 65536, iotype: .read) == nil)   // not armed before read_aio
        e.fire(.readAIO)
        #expect(e.check(offset: 8192 * 512, bytes: 65536, iotype: .read)?.errno == 5)
        e.fire(.readAIO)
        #expect(e.check(offset: 8192 * 512, bytes: 65536, iotype: .read) == nil)
        #expect(e.isDeleted(0))
    }

    @Test func stateMachineUsesTheStateBeforeTheEventAndTheFirstSetStateWins() {
        let e = engine("""
        [inject-error]
        event = "read_aio"
        state = "2"
        [set-state]
        event = "write_aio"
        state = "1"
        new_state = "2"
        [set-state]
        event = "write_aio"
        new_state = "7"
        [set-state]
        event = "write_aio"
        state = "2"
        new_state = "3"
        """)
        #expect(e.state == 1)
        e.fire(.readAIO)
        #expect(e.check(offset: 0, bytes: 512, iotype: .read) == nil)
        e.fire(.writeAIO)                 // state 1: the first matching set-state in file order → 2
        #expect(e.state == 2)
        e.fire(.readAIO)
        #expect(e.check(offset: 0, bytes: 512, iotype: .read)?.errno == 5)
        e.fire(.writeAIO)                 // state 2: "new_state 7" (any state) comes before "2 → 3"
        #expect(e.state == 7)
    }

    @Test func armingByAnotherEventReplacesTheArmedRules() {
        let e = engine("[inject-error]\nevent = \"none\"\niotype = \"write\"\nsector = \"2048\"\n[inject-error]\nevent = \"read_aio\"\niotype = \"read\"\nsector = \"8200\"\n")
        #expect(e.check(offset: 1 << 20, bytes: 4096, iotype: .write) != nil)
        e.fire(.readAIO)
        #expect(e.check(offset: 1 << 20, bytes: 4096, iotype: .write) == nil)
        e.fire(.writeAIO)                 // no rules for write_aio: the armed set stays
        #expect(e.check(offset: 8200 * 512, bytes: 512, iotype: .read) != nil)
        #expect(e.armedRules == [1])
    }

    @Test func errnoZeroMatchesAndShadowsLaterRules() {
        let e = engine("[inject-error]\nevent = \"none\"\nerrno = \"0\"\nonce = \"on\"\n[inject-error]\nevent = \"none\"\n")
        for _ in 0..<3 {
            let d = e.check(offset: 0, bytes: 512, iotype: .read)
            #expect(d?.errno == 0 && d?.ruleIndex == 0)
        }
        #expect(!e.isDeleted(0) && e.hits == [0, 0])
    }

    @Test func afterLetsTheFirstRequestsThroughToTheNextRule() {
        let e = engine("[inject-error]\nevent = \"none\"\nerrno = \"28\"\nafter = \"2\"\n[inject-error]\nevent = \"none\"\niotype = \"write\"\nerrno = \"5\"\n")
        #expect(e.check(offset: 0, bytes: 512, iotype: .write)?.errno == 5)
        #expect(e.check(offset: 0, bytes: 512, iotype: .read) == nil)
        #expect(e.check(offset: 0, bytes: 512, iotype: .read)?.errno == 28)
        #expect(e.check(offset: 0, bytes: 512, iotype: .write)?.errno == 28)
    }

    @Test func probabilityIsSeededAndRoughlyRight() {
        let text = "[inject-error]\nevent = \"none\"\nprobability = \"0.25\"\n"
        func run(_ seed: UInt64) -> [Bool] {
            let e = engine(text, seed: seed)
            return (0..<4000).map { _ in e.check(offset: 0, bytes: 512, iotype: .read) != nil }
        }
        let a = run(7), b = run(7), c = run(8)
        #expect(a == b && a != c)
        let rate = Double(a.filter { $0 }.count) / 4000
        #expect(rate > 0.22 && rate < 0.28)
    }

    @Test func upDownWindowsLikeDmFlakey() {
        var now = 100.0
        let e = engine("[inject-error]\nevent = \"none\"\nup = \"10\"\ndown = \"5\"\n", clock: { now })
        #expect(e.check(offset: 0, bytes: 512, iotype: .read) == nil)     // t=0: up
        now = 109.9
        #expect(e.check(offset: 0, bytes: 512, iotype: .read) == nil)
        now = 110.0
        #expect(e.check(offset: 0, bytes: 512, iotype: .read)?.errno == 5)  // down
        now = 114.9
        #expect(e.check(offset: 0, bytes: 512, iotype: .read)?.errno == 5)
        now = 115.0
        #expect(e.check(offset: 0, bytes: 512, iotype: .read) == nil)     // up again
    }

    @Test func delayWithErrnoZeroIsASlowSuccessThatCounts() {
        let e = engine("[inject-error]\nevent = \"none\"\nerrno = \"0\"\ndelay = \"20ms\"\nonce = \"on\"\n")
        let d = e.check(offset: 0, bytes: 512, iotype: .read)
        #expect(d?.errno == 0 && d?.delayNanoseconds == 20_000_000 && e.hits == [1] && e.isDeleted(0))
    }

    @Test func tenThousandRulesStillFindTheRightOne() {
        var text = ""
        for i in 0..<10_000 { text += "[inject-error]\nevent = \"none\"\niotype = \"write\"\nsector = \"\((i * 7919) % 1_000_003 + 1_000_000)\"\nerrno = \"\(i % 2 == 0 ? 5 : 28)\"\n" }
        let e = engine(text)
        #expect(e.check(offset: 0, bytes: 1 << 20, iotype: .write) == nil)          // below every rule
        let target = (1234 * 7919) % 1_000_003 + 1_000_000
        let d = e.check(offset: Int64(target) * 512, bytes: 512, iotype: .write)
        #expect(d?.ruleIndex == 1234 && d?.errno == 5)
    }
}

@Suite struct BlkdebugEventTableTests {
    @Test func fortyEightEventsInQEMUsOrderAndIndexMatchesIt() {
        #expect(BlkdebugEvent.allCases.count == 48)
        #expect(BlkdebugEvent.allCases.first == .l1Update && BlkdebugEvent.allCases.last == BlkdebugEvent.none)
        for (i, e) in BlkdebugEvent.allCases.enumerated() { #expect(e.index == i) }
        #expect(MemoryLayout<BlkdebugEvent>.size == 1)
    }
}

@Suite struct FaultRuleEngineIndexTests {
    /// The index (buckets for small requests, binary search for large ones) agrees with a plain
    /// scan of the rules in file order, as blkdebug's rule_check does it.
    @Test func indexAgreesWithALinearScan() {
        var rng = SplitMix64(seed: 42)
        var rules: [InjectErrorRule] = []
        let types: [BlkdebugIOType] = [.read, .write, .discard]
        for i in 0..<3000 {
            let sector = Int64(rng.next() % 40_000)
            rules.append(InjectErrorRule(event: .none, iotypeMask: i % 7 == 0 ? BlkdebugIOType.defaultMask : types[i % 3].bit,
                                         errno: Int32(1 + i % 100), sector: i >= 2990 ? nil : sector,
                                         location: RuleLocation(file: "r", line: i)))
        }
        let engine = FaultRuleEngine(config: BlkdebugConfig(injectErrors: rules))
        var sectorHits = 0
        for _ in 0..<5000 {
            let offset = Int64(rng.next() % (40_000 * 512))
            let lengths: [Int64] = [512, 4096, 65536, 65537, 1 << 20, 8 << 20]
            let bytes = lengths[Int(rng.next() % UInt64(lengths.count))]
            let t = types[Int(rng.next() % 3)]
            let expected = rules.firstIndex { r in
                (r.byteOffset == nil || (r.byteOffset! >= offset && r.byteOffset! < offset + bytes)) && r.iotypeMask & t.bit != 0
            }
            #expect(engine.check(offset: offset, bytes: bytes, iotype: t)?.ruleIndex == expected)
            if let e = expected, e < 2990 { sectorHits += 1 }
        }
        #expect(sectorHits > 1000)   // most answers come from the sector index, not the catch-all rules
    }
}
