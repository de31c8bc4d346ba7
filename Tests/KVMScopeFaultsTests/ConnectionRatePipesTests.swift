import Testing
@testable import KVMScopeFaults

/// [rate] connection-rate: the engine marks the request, each connection's `ConnectionRatePipes`
/// charges its own pipe (clock given, so the figures are exact).
@Suite struct ConnectionRatePipesTests {
    func decision(_ engine: KvmscopeFaultEngine, _ length: Int64) -> BlockCompletion {
        let d = engine.decide(.read, offset: 0, length: length)
        return BlockCompletion(errno: d.errno, delayNanoseconds: d.delayNanoseconds, faults: d.faults)
    }

    @Test func eachConnectionHasItsOwnPipeAndTheOverallOneIsShared() throws {
        var now = 100.0
        let here = RuleLocation(file: "r.cfg", line: 1)
        // 8 Mi bits/s per connection: 1 MiB takes 1 s. Overall 16 Mi bits/s: 0.5 s per MiB, shared.
        var sections = KvmscopeFaultSections()
        sections.rates = [RateSection(bitsPerSecond: 16 << 20, connectionBitsPerSecond: 8 << 20, location: here)]
        let engine = KvmscopeFaultEngine(sections: sections, clock: { now })
        var a = ConnectionRatePipes(), b = ConnectionRatePipes()
        let mib: Int64 = 1 << 20
        let a1 = a.apply(decision(engine, mib), now: now)
        let b1 = b.apply(decision(engine, mib), now: now)
        let a2 = a.apply(decision(engine, mib), now: now)
        // Both pipes at once, the reply after the slower: A's first: its own pipe 1 s, overall
        // 0.5 s → 1 s; B's first: its own idle pipe 1 s, the overall behind A 1 s → 1 s; A's
        // second: behind its first on its own pipe 2 s, overall 1.5 s → 2 s.
        #expect(a1.delayNanoseconds == 1_000_000_000)
        #expect(b1.delayNanoseconds == 1_000_000_000)
        #expect(a2.delayNanoseconds == 2_000_000_000)
        #expect(a1.faults.map(\.delayNanoseconds).sorted() == [500_000_000, 1_000_000_000])
        #expect(a1.faults.allSatisfy { $0.kind == .rate && $0.effect == .delay })
        // Once its data has passed, a pipe is idle again: a later small request waits only its share.
        now += 10
        let a3 = a.apply(decision(engine, 1024), now: now)
        #expect(a3.faults.first { $0.connectionBitsPerSecond > 0 }?.delayNanoseconds == 976_563)   // 8192 bits at 8 Mi/s
    }

    /// A change of rules keeps a connection's pipe for a connection-rate it left as it was
    /// (the data sent still has to pass) and starts an empty one for a new speed (the replies
    /// waiting at the old speed are let go, so nothing is left to wait behind).
    @Test func aChangedConnectionRateStartsWithAnEmptyPipe() {
        let now = 100.0
        let here = RuleLocation(file: "r.cfg", line: 1)
        var sections = KvmscopeFaultSections()
        sections.rates = [RateSection(bitsPerSecond: 0, connectionBitsPerSecond: 8 << 20, location: here)]
        var pipes = ConnectionRatePipes()
        let mib: Int64 = 1 << 20
        #expect(pipes.apply(decision(KvmscopeFaultEngine(sections: sections, clock: { now }), mib), now: now).delayNanoseconds == 1_000_000_000)
        #expect(pipes.apply(decision(KvmscopeFaultEngine(sections: sections, clock: { now }), mib), now: now).delayNanoseconds == 2_000_000_000)
        sections.rates[0].connectionBitsPerSecond = 16 << 20
        #expect(pipes.apply(decision(KvmscopeFaultEngine(sections: sections, clock: { now }), mib), now: now).delayNanoseconds == 500_000_000)
    }

    @Test func aCompletionWithoutConnectionRateIsUnchanged() {
        var p = ConnectionRatePipes()
        let c = BlockCompletion(errno: 5, delayNanoseconds: 7, faults: [])
        let out = p.apply(c, now: 1)
        #expect(out.errno == 5 && out.delayNanoseconds == 7 && out.faults.isEmpty)
    }
}
