import Foundation

/// Applies kvmscope's own sections (Model/KvmscopeFaultSections.swift) to requests, after
/// blkdebug's rules have let a request through. Per request, in this order:
/// 1. [flakey] in its down interval: error (every request), error-writes, or drop-writes;
/// 2. [bad-blocks]: a request touching a bad sector fails (see `BadBlocksSection.Mode`);
/// 3. [error-rate]: each section, in file order, whose rate for the operation is above 0 and
///    whose trigger file exists (if it has one) draws from its generator and fails the request
///    with that rate — nbdkit's error filter;
/// 4. [stall], [rate] and [delay] apply whatever 1-3 decided (nbdkit's delay filter sits in front of
///    the error filter; a lost completion is lost for failures too).
/// The first of 1-3 that fails the request decides its errno; later ones do not draw.
/// After a successful read `flipBits` corrupts the data ([bit-flips]); after a successful write
/// `written` clears remapped bad sectors. Not thread-safe: `FaultInjectingBackend` holds a lock.
public final class KvmscopeFaultEngine {
    public let sections: KvmscopeFaultSections
    private let clock: () -> Double
    private let fileExists: (String) -> Bool
    private let startTime: Double
    private var errorRateRNG: [SplitMix64]
    private var bitFlipRNG: [SplitMix64]
    /// Current bad sectors per [bad-blocks] section.
    public private(set) var badSectors: [SectorRangeSet]
    private var stallMatches: [Int]
    private var stallSpent: [Bool]
    /// Per [rate] section: when the pipe is free again (clock seconds).
    private var rateFreeAt: [Double]

    /// - previous: the engine this one replaces (a change of rules): each [rate] pipe it had for
    ///   a section that is still there at the same speed is kept, backlog and all, so that new
    ///   requests wait behind the data already sent through it (`RateSection.sharesOverallPipe`).
    ///   Everything else starts afresh, as if blkdebug were reopened.
    public init(sections: KvmscopeFaultSections, clock: @escaping () -> Double = FaultRuleEngine.monotonicSeconds,
                fileExists: @escaping (String) -> Bool = FaultStall.fileExists, previous: KvmscopeFaultEngine? = nil) {
        self.sections = sections
        self.clock = clock
        self.fileExists = fileExists
        startTime = clock()
        errorRateRNG = sections.errorRates.map { SplitMix64(seed: $0.seed) }
        bitFlipRNG = sections.bitFlips.map { SplitMix64(seed: $0.seed ^ 0x5851_F42D_4C95_7F2D) }
        badSectors = sections.badBlocks.map { SectorRangeSet($0.sectors) }
        stallMatches = Array(repeating: 0, count: sections.stalls.count)
        stallSpent = Array(repeating: false, count: sections.stalls.count)
        rateFreeAt = sections.rates.map { r in
            guard let previous, let i = previous.sections.rates.firstIndex(where: r.sharesOverallPipe(with:)) else { return -Double.infinity }
            return previous.rateFreeAt[i]
        }
    }

    public struct Decision {
        public var errno: Int32 = 0
        public var delayNanoseconds: UInt64 = 0
        public var stall: FaultStall?
        /// Acknowledge the write without making it.
        public var dropWrite = false
        public var faults: [InjectedFault] = []
    }

    private func fault(_ kind: FaultKind, _ effect: FaultEffect, _ location: RuleLocation, _ id: String?, _ op: BlockOperation,
                       _ offset: Int64, _ length: Int64, errno: Int32 = 0, delay: UInt64 = 0, bits: Int = 0) -> InjectedFault {
        // The fault log names the rule by its location; the event is blkdebug's only.
        let rule = InjectErrorRule(event: .none, errno: errno, location: location, id: id)
        return InjectedFault(rule: rule, ruleIndex: -1, operation: op, offset: offset, length: length, errno: errno,
                             delayNanoseconds: delay, kind: kind, effect: effect, bitsFlipped: bits)
    }

    /// Whether a [flakey] section is in its down interval now.
    public func isDown(_ i: Int) -> Bool {
        let f = sections.flakeys[i]
        let t = (clock() - startTime).truncatingRemainder(dividingBy: f.upSeconds + f.downSeconds)
        return t >= f.upSeconds
    }

    /// `offset ..< offset+length` clamped to 0 ... Int64.max: callers check requests against the
    /// disk's size first, but the engine must not trap on any input.
    static func clamp(_ offset: Int64, _ length: Int64) -> (Int64, Int64) {
        let o = max(offset, 0)
        return (o, min(max(length, 0), Int64.max - o))
    }

    public func decide(_ op: BlockOperation, offset requestOffset: Int64, length: Int64) -> Decision {
        var d = Decision()
        guard let kind = FaultOperationKind(op) else { return d }
        let (offset, bytes) = op == .flush ? (0, 0) : Self.clamp(requestOffset, length)

        for (i, f) in sections.flakeys.enumerated() where d.errno == 0 && !d.dropWrite && isDown(i) {
            switch f.mode {
            case .error:
                d.errno = f.errno
            case .errorWrites:
                if kind.isWrite { d.errno = f.errno }
            case .dropWrites:
                if kind.isWrite { d.dropWrite = true }
            }
            if d.errno != 0 { d.faults.append(fault(.flakey, .error, f.location, f.id, op, requestOffset, length, errno: f.errno)) }
            if d.dropWrite { d.faults.append(fault(.flakey, .dropWrite, f.location, f.id, op, requestOffset, length)) }
        }

        if d.errno == 0 && !d.dropWrite && bytes > 0 && (kind == .read || kind == .write || kind == .zero) {
            let first = offset >> 9, last = (offset + bytes - 1) >> 9
            for (i, b) in sections.badBlocks.enumerated() where badSectors[i].overlaps(first...last) {
                let fails: Bool
                switch b.mode {
                case .permanent:
                    fails = true
                case .failOnce:
                    fails = true
                    badSectors[i].remove(first...last)
                case .remapOnWrite:
                    if kind == .read {
                        fails = true
                    } else {
                        // Only whole sectors are remapped: a partial one would have to be read first.
                        let headPartial = offset & 511 != 0 && badSectors[i].contains(first)
                        let tailPartial = (offset + bytes) & 511 != 0 && badSectors[i].contains(last)
                        fails = headPartial || tailPartial
                    }
                }
                if fails {
                    d.errno = b.errno
                    d.faults.append(fault(.badBlocks, .error, b.location, b.id, op, requestOffset, length, errno: b.errno))
                    break
                }
            }
        }

        if d.errno == 0 && !d.dropWrite {
            for (i, r) in sections.errorRates.enumerated() {
                let rate = r.rates[kind.rawValue]
                guard rate > 0 else { continue }
                if let trigger = r.triggerFile, !fileExists(trigger) { continue }
                if errorRateRNG[i].nextUnit() < rate {
                    d.errno = r.errno
                    d.faults.append(fault(.errorRate, .error, r.location, r.id, op, requestOffset, length, errno: r.errno))
                    break
                }
            }
        }

        for (i, s) in sections.stalls.enumerated() where d.stall == nil && !stallSpent[i] {
            guard s.operations & (1 << UInt8(kind.rawValue)) != 0 else { continue }
            if let sector = s.sector {
                let (at, overflow) = sector.multipliedReportingOverflow(by: 512)
                guard !overflow else { continue }
                guard bytes > 0, at >= offset, at < offset + bytes else { continue }
            }
            stallMatches[i] += 1
            guard stallMatches[i] > s.after else { continue }
            if s.once { stallSpent[i] = true }
            let deadline = s.timeoutNanoseconds.map { clock() + Double($0) / 1e9 }
            d.stall = FaultStall(releaseFile: s.releaseFile, deadline: deadline, location: s.location)
            d.faults.append(fault(.stall, .stall, s.location, s.id, op, requestOffset, length, errno: d.errno))
        }

        if (kind == .read || kind == .write) && bytes > 0 {
            for (i, r) in sections.rates.enumerated() {
                if let perConnection = r.connectionBitsPerSecond {
                    var f = fault(.rate, .delay, r.location, r.id, op, requestOffset, length, errno: d.errno)
                    f.connectionBitsPerSecond = perConnection
                    d.faults.append(f)
                }
                guard r.bitsPerSecond > 0 else { continue }
                let now = clock()
                let start = max(now, rateFreeAt[i])
                rateFreeAt[i] = start + Double(bytes) * 8 / Double(r.bitsPerSecond)
                let wait = rateFreeAt[i] - now
                let ns = wait >= 1e9 ? UInt64(1e18) : UInt64((wait * 1e9).rounded())
                guard ns > 0 else { continue }
                d.delayNanoseconds = d.delayNanoseconds.addingReportingOverflow(ns).overflow ? UInt64.max : d.delayNanoseconds + ns
                var f = fault(.rate, .delay, r.location, r.id, op, requestOffset, length, errno: d.errno, delay: ns)
                f.bitsPerSecond = r.bitsPerSecond
                d.faults.append(f)
            }
        }

        for s in sections.delays where s.delays[kind.rawValue] > 0 {
            let ns = s.delays[kind.rawValue]
            d.delayNanoseconds = d.delayNanoseconds.addingReportingOverflow(ns).overflow ? UInt64.max : d.delayNanoseconds + ns
            d.faults.append(fault(.delay, .delay, s.location, s.id, op, requestOffset, length, errno: d.errno, delay: ns))
        }
        return d
    }

    /// A write (or write-zeroes) of `offset ..< offset+length` reached the disk: the whole bad
    /// sectors it covered are remapped (dm-dust: "a write to a bad block removes it from the list").
    public func written(offset requestOffset: Int64, length requestLength: Int64) {
        let (offset, length) = Self.clamp(requestOffset, requestLength)
        guard length > 0 else { return }
        let first = (offset + 511) >> 9, end = (offset + length) >> 9   // whole sectors only
        guard end > first else { return }
        for (i, b) in sections.badBlocks.enumerated() where b.mode == .remapOnWrite {
            badSectors[i].remove(first...(end - 1))
        }
    }

    /// Corrupts data read from `offset` as the [bit-flips] sections say; one fault per section that changed a bit.
    public func flipBits(offset requestOffset: Int64, buffer: UnsafeMutableRawBufferPointer) -> [InjectedFault] {
        var out: [InjectedFault] = []
        let (offset, _) = Self.clamp(requestOffset, 0)
        guard offset <= Int64.max - Int64(buffer.count) else { return [] }
        for (i, s) in sections.bitFlips.enumerated() {
            let n: Int
            switch s.mode {
            case .cosmicRays: n = BitFlipper.cosmicRays(buffer, probability: s.probability, rng: &bitFlipRNG[i])
            case .stuckBits: n = BitFlipper.stuckBits(buffer, diskOffset: offset, section: s, rng: &bitFlipRNG[i])
            }
            if n > 0 {
                out.append(fault(.bitFlips, .bitFlips, s.location, s.id, .read, offset, Int64(buffer.count), bits: n))
            }
        }
        return out
    }
}

/// Sorted, disjoint inclusive ranges of sectors, with O(log n) overlap queries: a bad-block list
/// of "0-1000000000" costs one range, not a billion entries.
public struct SectorRangeSet: Sendable, Equatable {
    public private(set) var ranges: [ClosedRange<Int64>]

    public init(_ ranges: [ClosedRange<Int64>]) { self.ranges = ranges }

    /// Index of the first range whose upper bound is >= s.
    private func firstEndingAtOrAfter(_ s: Int64) -> Int {
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].upperBound < s { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    public func overlaps(_ r: ClosedRange<Int64>) -> Bool {
        let k = firstEndingAtOrAfter(r.lowerBound)
        return k < ranges.count && ranges[k].lowerBound <= r.upperBound
    }

    public func contains(_ s: Int64) -> Bool { overlaps(s...s) }

    public mutating func remove(_ r: ClosedRange<Int64>) {
        var k = firstEndingAtOrAfter(r.lowerBound)
        var replacement: [ClosedRange<Int64>] = []
        let start = k
        while k < ranges.count, ranges[k].lowerBound <= r.upperBound {
            let x = ranges[k]
            if x.lowerBound < r.lowerBound { replacement.append(x.lowerBound...(r.lowerBound - 1)) }
            if x.upperBound > r.upperBound { replacement.append((r.upperBound + 1)...x.upperBound) }
            k += 1
        }
        if k > start { ranges.replaceSubrange(start..<k, with: replacement) }
    }

    public var sectorCount: Int64 { ranges.reduce(0) { $0 + ($1.upperBound - $1.lowerBound + 1) } }
}

/// nbdkit evil filter's two disk-side modes (filters/evil/nbdkit-evil-filter.pod).
enum BitFlipper {
    /// Stuck bits are laid out per 4 KiB chunk of the disk from a generator seeded with the
    /// section's seed and the chunk number, so a bit is stuck (or not) whatever request reads it.
    static let chunkBytes: Int64 = 4096

    /// Distance to the next chosen bit when each bit is chosen with probability p (geometric):
    /// the cost of a read is the number of bits chosen, not the number of bits read.
    @inline(__always)
    static func gap(_ p: Double, _ rng: inout SplitMix64) -> Int64 {
        if p >= 1 { return 0 }
        let u = 1 - rng.nextUnit()                 // (0, 1]
        let g = (log(u) / log1p(-p)).rounded(.down)
        return g >= 1e15 ? Int64(1e15) : Int64(g)
    }

    static func cosmicRays(_ buffer: UnsafeMutableRawBufferPointer, probability p: Double, rng: inout SplitMix64) -> Int {
        guard p > 0, !buffer.isEmpty else { return 0 }
        let bits = Int64(buffer.count) * 8
        var flipped = 0
        var bit = gap(p, &rng)
        while bit < bits {
            buffer[Int(bit >> 3)] ^= UInt8(1) << UInt8(bit & 7)
            flipped += 1
            bit += 1 + gap(p, &rng)
        }
        return flipped
    }

    static func chunkSeed(_ seed: UInt64, _ chunk: Int64) -> UInt64 {
        var g = SplitMix64(seed: seed ^ (UInt64(bitPattern: chunk) &* 0xD6E8_FEB8_6659_FD93))
        return g.next()
    }

    /// Calls `body(bitInChunk, stuckHigh)` for each stuck bit of chunk `chunk`, in order.
    static func forEachStuckBit(seed: UInt64, chunk: Int64, probability p: Double, _ body: (Int64, Bool) -> Void) {
        guard p > 0 else { return }
        var g = SplitMix64(seed: chunkSeed(seed, chunk))
        let bits = chunkBytes * 8
        var bit = gap(p, &g)
        while bit < bits {
            body(bit, g.next() & 1 == 1)
            bit += 1 + gap(p, &g)
        }
    }

    static func stuckBits(_ buffer: UnsafeMutableRawBufferPointer, diskOffset: Int64, section s: BitFlipSection,
                          rng: inout SplitMix64) -> Int {
        guard s.probability > 0, s.stuckProbability > 0, !buffer.isEmpty else { return 0 }
        let end = diskOffset + Int64(buffer.count)
        var changed = 0
        var chunk = diskOffset / chunkBytes
        while chunk * chunkBytes < end {
            let base = chunk * chunkBytes
            forEachStuckBit(seed: s.seed, chunk: chunk, probability: s.probability) { bitInChunk, high in
                let byteOnDisk = base + bitInChunk >> 3
                guard byteOnDisk >= diskOffset, byteOnDisk < end else { return }
                if s.stuckProbability < 1 && rng.nextUnit() >= s.stuckProbability { return }
                let i = Int(byteOnDisk - diskOffset)
                let mask = UInt8(1) << UInt8(bitInChunk & 7)
                let before = buffer[i]
                buffer[i] = high ? before | mask : before & ~mask
                if buffer[i] != before { changed += 1 }
            }
            chunk += 1
        }
        return changed
    }
}
