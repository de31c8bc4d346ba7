import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeFaults

/// kvmscope's sections written out plainly, for comparison with `KvmscopeFaultEngine` (range
/// sets, binary search, modulo arithmetic on the clock): bad sectors in a Set, dm-flakey's
/// intervals walked one by one from the start, one generator per [error-rate] seeded with its seed.
private struct ReferenceSections {
    let s: KvmscopeFaultSections
    var bad: [Set<Int64>]
    var rng: [SplitMix64]
    var stallSeen: [Int]
    var stallSpent: [Bool]

    init(_ s: KvmscopeFaultSections) {
        self.s = s
        bad = s.badBlocks.map { b in Set(b.sectors.flatMap { Array($0) }) }
        rng = s.errorRates.map { SplitMix64(seed: $0.seed) }
        stallSeen = Array(repeating: 0, count: s.stalls.count)
        stallSpent = Array(repeating: false, count: s.stalls.count)
    }

    static func down(_ f: FlakeySection, at t: Double) -> Bool {
        var cycleStart = 0.0
        while cycleStart + f.upSeconds + f.downSeconds <= t { cycleStart += f.upSeconds + f.downSeconds }
        return t - cycleStart >= f.upSeconds
    }

    struct Outcome: Equatable { var errno: Int32; var drop: Bool; var stall: Int?; var delay: UInt64 }

    mutating func request(_ op: FaultOperationKind, offset: Int64, length: Int64, time t: Double,
                          exists: (String) -> Bool) -> Outcome {
        var errno: Int32 = 0, drop = false
        for f in s.flakeys where errno == 0 && !drop && Self.down(f, at: t) {
            if f.mode == .error || (f.mode == .errorWrites && [.write, .zero, .trim].contains(op)) { errno = f.errno }
            if f.mode == .dropWrites && [.write, .zero, .trim].contains(op) { drop = true }
        }
        if errno == 0 && !drop && length > 0 && [.read, .write, .zero].contains(op) {
            let touched = Set(((offset / 512)...((offset + length - 1) / 512)).map { $0 })
            for i in s.badBlocks.indices where !bad[i].isDisjoint(with: touched) {
                var fails = true
                switch s.badBlocks[i].mode {
                case .permanent: break
                case .failOnce: bad[i].subtract(touched)
                case .remapOnWrite:
                    if op != .read {
                        let head = offset % 512 != 0 && bad[i].contains(offset / 512)
                        let tail = (offset + length) % 512 != 0 && bad[i].contains((offset + length - 1) / 512)
                        fails = head || tail
                    }
                }
                if fails { errno = s.badBlocks[i].errno; break }
            }
        }
        if errno == 0 && !drop {
            for i in s.errorRates.indices {
                let r = s.errorRates[i]
                if r.rates[op.rawValue] == 0 { continue }
                if let f = r.triggerFile, !exists(f) { continue }
                if rng[i].nextUnit() < r.rates[op.rawValue] { errno = r.errno; break }
            }
        }
        var stall: Int?
        for i in s.stalls.indices where stall == nil && !stallSpent[i] {
            let st = s.stalls[i]
            guard st.operations & (1 << UInt8(op.rawValue)) != 0 else { continue }
            if let sector = st.sector, !(op != .flush && length > 0 && sector * 512 >= offset && sector * 512 < offset + length) { continue }
            stallSeen[i] += 1
            if stallSeen[i] <= st.after { continue }
            if st.once { stallSpent[i] = true }
            stall = i
        }
        let delay = s.delays.reduce(UInt64(0)) { $0 + $1.delays[op.rawValue] }
        // A write that reached the disk remaps the whole bad sectors it covered.
        if errno == 0 && !drop && (op == .write || op == .zero) && length > 0 {
            let first = (offset + 511) / 512, end = (offset + length) / 512
            for i in s.badBlocks.indices where s.badBlocks[i].mode == .remapOnWrite && end > first {
                bad[i].subtract(first..<end)
            }
        }
        return Outcome(errno: errno, drop: drop, stall: stall, delay: delay)
    }
}

@Suite struct KvmscopeFaultEnginePropertyTests {
    static let here = RuleLocation(file: "r.cfg", line: 1)

    static func randomSections(_ rng: inout SplitMix64) -> KvmscopeFaultSections {
        var s = KvmscopeFaultSections()
        func loc(_ n: Int) -> RuleLocation { RuleLocation(file: "r.cfg", line: n) }
        var line = 1
        for _ in 0..<rng.below(3) {
            let rates = FaultOperationKind.allCases.map { _ in [0, 0.1, 0.5, 1][Int(rng.below(4))] }
            s.errorRates.append(ErrorRateSection(rates: rates, errno: [5, 28][Int(rng.below(2))],
                                                 triggerFile: rng.below(2) == 0 ? "/t\(rng.below(2))" : nil,
                                                 seed: rng.next(), location: loc(line)))
            line += 1
        }
        for _ in 0..<rng.below(3) {
            var ranges: [ClosedRange<Int64>] = []
            var at: Int64 = Int64(rng.below(8))
            for _ in 0..<(1 + rng.below(6)) {
                let len = Int64(rng.below(4))
                ranges.append(at...(at + len))
                at += len + 2 + Int64(rng.below(40))
            }
            s.badBlocks.append(BadBlocksSection(sectors: ranges, mode: BadBlocksSection.Mode.allCases[Int(rng.below(3))],
                                                errno: 5, location: loc(line)))
            line += 1
        }
        for _ in 0..<rng.below(2) {
            s.flakeys.append(FlakeySection(upSeconds: Double(1 + rng.below(4)), downSeconds: Double(1 + rng.below(3)),
                                           mode: FlakeySection.Mode.allCases[Int(rng.below(3))], errno: 5, location: loc(line)))
            line += 1
        }
        for _ in 0..<rng.below(3) {
            s.stalls.append(StallSection(operations: UInt8(1 + rng.below(31)), sector: rng.below(2) == 0 ? Int64(rng.below(300)) : nil,
                                         after: Int(rng.below(4)), once: rng.below(2) == 0, releaseFile: "/r",
                                         timeoutNanoseconds: nil, location: loc(line)))
            line += 1
        }
        for _ in 0..<rng.below(2) {
            s.delays.append(DelaySection(delays: FaultOperationKind.allCases.map { _ in [0, 1_000_000][Int(rng.below(2))] }, location: loc(line)))
            line += 1
        }
        return s
    }

    /// 3 000 random section sets, 200 requests each, a clock moving in quarter seconds and
    /// trigger files appearing and disappearing: every errno, drop, stall, delay and the bad
    /// sectors left afterwards are the reference's.
    @Test(arguments: [UInt64(31), 32, 33])
    func engineMatchesTheReference(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var failed = 0, dropped = 0, stalled = 0, passed = 0, remapped = 0
        for _ in 0..<1_000 {
            let sections = Self.randomSections(&rng)
            let clock = ManualClock()
            let files = FileSet()
            let engine = KvmscopeFaultEngine(sections: sections, clock: { clock.now }, fileExists: { files.has($0) })
            var reference = ReferenceSections(sections)
            let before = reference.bad.map(\.count).reduce(0, +)
            for step in 0..<200 {
                if rng.below(8) == 0 { clock.now += 0.25 * Double(1 + rng.below(8)) }
                if rng.below(10) == 0 { files.toggle(["/t0", "/t1"][Int(rng.below(2))]) }
                let op = FaultOperationKind.allCases[Int(rng.below(5))]
                let blockOp: KVMScopeFaults.BlockOperation = [.read, .write, .writeZeroes, .discard, .flush][op.rawValue]
                var offset = Int64(rng.below(300)) * 512, length = Int64(rng.below(9)) * 512
                if rng.below(4) == 0 { offset += Int64(rng.below(512)) }
                if rng.below(4) == 0 { length += Int64(rng.below(512)) }
                if op == .flush { offset = 0; length = 0 }
                let d = engine.decide(blockOp, offset: offset, length: length)
                if d.errno == 0 && !d.dropWrite && (op == .write || op == .zero) { engine.written(offset: offset, length: length) }
                let want = reference.request(op, offset: offset, length: length, time: clock.now - 1000, exists: { files.has($0) })
                let got = ReferenceSections.Outcome(errno: d.errno, drop: d.dropWrite,
                    stall: d.stall.flatMap { st in sections.stalls.firstIndex { $0.location == st.location } },
                    delay: d.delayNanoseconds)
                #expect(got == want, "step \(step): \(op) \(offset)+\(length) at \(clock.now)\n\(sections)")
                if got != want { return }
                if want.errno != 0 { failed += 1 } else if want.drop { dropped += 1 } else { passed += 1 }
                if want.stall != nil { stalled += 1 }
            }
            for i in sections.badBlocks.indices {
                let left = Set(engine.badSectors[i].ranges.flatMap { Array($0) })
                #expect(left == reference.bad[i])
            }
            remapped += before - reference.bad.map(\.count).reduce(0, +)
        }
        #expect(failed > 20_000 && dropped > 1_000 && stalled > 5_000 && passed > 50_000 && remapped > 500,
                "failed \(failed) dropped \(dropped) stalled \(stalled) passed \(passed) remapped \(remapped)")
    }

    /// The range set against a plain Set over many random removals and queries.
    @Test func sectorRangeSetMatchesASet() {
        var rng = SplitMix64(seed: 5)
        for _ in 0..<2_000 {
            var ranges: [ClosedRange<Int64>] = []
            var at = Int64(rng.below(5))
            for _ in 0..<rng.below(8) {
                let len = Int64(rng.below(10))
                ranges.append(at...(at + len)); at += len + 2 + Int64(rng.below(10))
            }
            var set = SectorRangeSet(ranges)
            var plain = Set(ranges.flatMap { Array($0) })
            for _ in 0..<30 {
                let a = Int64(rng.below(120)), b = a + Int64(rng.below(15))
                #expect(set.overlaps(a...b) == !plain.isDisjoint(with: a...b))
                if rng.below(2) == 0 { set.remove(a...b); plain.subtract(a...b) }
                #expect(Set(set.ranges.flatMap { Array($0) }) == plain)
                #expect(zip(set.ranges, set.ranges.dropFirst()).allSatisfy { $0.upperBound + 1 < $1.lowerBound })
            }
        }
    }

    // MARK: bit flips

    static func flipSection(_ mode: BitFlipSection.Mode, p: Double, stuck: Double = 1, seed: UInt64) -> KvmscopeFaultSections {
        var s = KvmscopeFaultSections()
        s.bitFlips = [BitFlipSection(mode: mode, probability: p, stuckProbability: stuck, seed: seed, location: here)]
        return s
    }

    static func read(_ engine: KvmscopeFaultEngine, _ disk: [UInt8], offset: Int, length: Int) -> ([UInt8], Int) {
        var buf = Array(disk[offset..<(offset + length)])
        let faults = buf.withUnsafeMutableBytes { engine.flipBits(offset: Int64(offset), buffer: $0) }
        return (buf, faults.reduce(0) { $0 + $1.bitsFlipped })
    }

    static func popcount(_ a: [UInt8], _ b: [UInt8]) -> Int { zip(a, b).reduce(0) { $0 + ($1.0 ^ $1.1).nonzeroBitCount } }

    /// Stuck bits belong to the disk: reading any range, in any split, shows the bits a read of
    /// the whole disk shows (the brute-force reference), on every read; the count reported is
    /// the number of bits that differ; a bit stuck high never clears a 1 (so the all-ones and
    /// all-zeroes disks together show every stuck bit exactly once).
    @Test(arguments: [UInt64(1), 2, 3])
    func stuckBitsAreAPropertyOfTheDisk(seed: UInt64) {
        var rng = SplitMix64(seed: seed &* 77)
        let size = 64 * 1024
        var disk = [UInt8](repeating: 0, count: size)
        for i in disk.indices { disk[i] = UInt8(truncatingIfNeeded: rng.next()) }
        for p in [1e-3, 1e-2, 0.125] {
            let s = Self.flipSection(.stuckBits, p: p, seed: seed)
            let whole = Self.read(KvmscopeFaultEngine(sections: s), disk, offset: 0, length: size)
            #expect(whole.1 == Self.popcount(whole.0, disk))
            let engine = KvmscopeFaultEngine(sections: s)
            for _ in 0..<1_000 {
                let off = Int(rng.below(UInt64(size - 1))), len = 1 + Int(rng.below(UInt64(min(9000, size - off))))
                let (got, n) = Self.read(engine, disk, offset: off, length: len)
                #expect(got[...] == whole.0[off..<(off + len)] && n == Self.popcount(got, Array(disk[off..<(off + len)])))
            }
            let zeros = Self.read(engine, [UInt8](repeating: 0, count: size), offset: 0, length: size).1
            let ones = Self.read(engine, [UInt8](repeating: 0xff, count: size), offset: 0, length: size).1
            let expected = p * Double(size * 8), sd = (expected * (1 - p)).squareRoot()
            #expect(abs(Double(zeros + ones) - expected) < 6 * sd, "p \(p): \(zeros + ones) stuck bits, expected \(expected)")
        }
    }

    /// Cosmic rays: fresh each read (two reads differ), the count is the bits that differ, the
    /// rate is the probability, p = 1 flips every bit, and the same seed repeats the same flips.
    @Test func cosmicRaysFlipAtTheirRate() {
        let size = 256 * 1024
        let disk = [UInt8](repeating: 0x5a, count: size)
        for p in [1e-4, 1e-2, 0.3] {
            let engine = KvmscopeFaultEngine(sections: Self.flipSection(.cosmicRays, p: p, seed: 9))
            let a = Self.read(engine, disk, offset: 0, length: size), b = Self.read(engine, disk, offset: 0, length: size)
            #expect(a.1 == Self.popcount(a.0, disk) && b.1 == Self.popcount(b.0, disk) && a.0 != b.0)
            let expected = p * Double(size * 8), sd = (expected * (1 - p)).squareRoot()
            #expect(abs(Double(a.1) - expected) < 6 * sd, "p \(p): \(a.1) flips, expected \(expected)")
            let again = Self.read(KvmscopeFaultEngine(sections: Self.flipSection(.cosmicRays, p: p, seed: 9)), disk, offset: 0, length: size)
            #expect(again.0 == a.0)
        }
        let all = Self.read(KvmscopeFaultEngine(sections: Self.flipSection(.cosmicRays, p: 1, seed: 1)), disk, offset: 0, length: 4096)
        #expect(all.0 == [UInt8](repeating: 0xa5, count: 4096) && all.1 == 4096 * 8)
        let none = Self.read(KvmscopeFaultEngine(sections: Self.flipSection(.cosmicRays, p: 0, seed: 1)), disk, offset: 0, length: 4096)
        #expect(none.1 == 0)
    }

    /// [rate] against a pipe simulated second by second: k bytes pass per second, requests queue
    /// in arrival order, a reply goes when the tick carrying its last byte ends. Sizes are
    /// multiples of k and arrivals whole seconds, so both sides are exact.
    @Test func rateMatchesATickByTickPipe() {
        var rng = SplitMix64(seed: 12)
        var queued = 0
        for _ in 0..<500 {
            let k = 1 + Int64(rng.below(64))
            var s = KvmscopeFaultSections()
            s.rates = [RateSection(bitsPerSecond: UInt64(8 * k), location: Self.here)]
            let clock = ManualClock()
            let engine = KvmscopeFaultEngine(sections: s, clock: { clock.now })
            var arrivals: [(at: Int64, bytes: Int64)] = []
            var t: Int64 = 0
            for _ in 0..<40 {
                t += Int64(rng.below(4))
                arrivals.append((t, k * Int64(1 + rng.below(5))))
            }
            var got: [Int64] = []
            for a in arrivals {
                clock.now = 1000 + Double(a.at)
                let op: KVMScopeFaults.BlockOperation = rng.below(2) == 0 ? .read : .write
                let d = engine.decide(op, offset: 0, length: a.bytes)
                got.append(Int64(d.delayNanoseconds / 1_000_000_000) + a.at)
                #expect(d.delayNanoseconds % 1_000_000_000 == 0)
                if d.delayNanoseconds > UInt64(a.bytes / k) * 1_000_000_000 { queued += 1 }
            }
            // The reference pipe.
            var want = [Int64](repeating: -1, count: arrivals.count)
            var remaining = arrivals.map(\.bytes)
            var next = 0, head = 0, tick: Int64 = 0
            while head < arrivals.count {
                while next < arrivals.count && arrivals[next].at <= tick { next += 1 }
                var capacity = k
                while capacity > 0 && head < next {
                    let used = min(capacity, remaining[head])
                    remaining[head] -= used
                    capacity -= used
                    if remaining[head] == 0 { want[head] = tick + 1; head += 1 }
                }
                tick += 1
            }
            #expect(got == want, "k \(k) arrivals \(arrivals)")
            if got != want { return }
        }
        #expect(queued > 2_000)                                    // requests really waited for others
    }

    /// A stall is released by deleting its file or by its timeout, whichever comes first.
    @Test func stallReleases() throws {
        var s = KvmscopeFaultSections()
        s.stalls = [StallSection(operations: 1, releaseFile: "/x", timeoutNanoseconds: 2_000_000_000, location: Self.here)]
        let clock = ManualClock(), files = FileSet()
        files.toggle("/x")
        let engine = KvmscopeFaultEngine(sections: s, clock: { clock.now })
        let stall = try #require(engine.decide(.read, offset: 0, length: 512).stall)
        #expect(!stall.isReleased(now: clock.now + 1, fileExists: { files.has($0) }))
        #expect(stall.isReleased(now: clock.now + 2, fileExists: { files.has($0) }))
        files.toggle("/x")
        #expect(stall.isReleased(now: clock.now, fileExists: { files.has($0) }))
        #expect(engine.decide(.write, offset: 0, length: 512).stall == nil)       // reads only
    }
}

final class ManualClock: @unchecked Sendable { var now = 1000.0 }
final class FileSet: @unchecked Sendable {
    private var files = Set<String>()
    func has(_ f: String) -> Bool { files.contains(f) }
    func toggle(_ f: String) { if files.remove(f) == nil { files.insert(f) } }
}
