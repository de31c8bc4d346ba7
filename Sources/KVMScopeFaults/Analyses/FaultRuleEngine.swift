import Foundation

/// blkdebug's rule engine, reproduced: a state machine (starts in state 1) whose events arm
/// `[inject-error]` rules and move the state (`[set-state]`), and a check that fails a request
/// when an armed rule covers it. Semantics follow block/blkdebug.c exactly:
/// - an event fired in state S arms the inject-error rules of that event whose `state` is 0 or S,
///   replacing the previously armed rules — but only if it arms at least one;
/// - the state moves to the `new_state` of the first (file order) set-state rule of that event
///   whose `state` is 0 or S (S being the state before the event);
/// - a request matches the first armed rule (file order) whose iotype covers it and, if it has a
///   sector, whose `sector * 512` lies in `[offset, offset + bytes)` (a flush has no bytes);
/// - a matched rule with errno 0 lets the request through; `once` deletes the rule after a hit.
/// kvmscope's extensions (`after`, `up`/`down`, `probability`, `delay`) decide per rule whether a
/// match is a hit; a rule that lets a request pass makes the next matching rule eligible.
///
/// Cost: rules are indexed by event and state; inside each group, rules with a sector sit in an
/// array sorted by byte offset, bucketed by 4 KiB (hash lookup for requests up to 64 KiB, binary
/// search for larger ones), and rules without one in per-iotype lists: a request that matches
/// nothing costs the same whatever the number of rules. Not thread-safe:
/// callers serialise access (`FaultInjectingBackend` holds a lock).
public final class FaultRuleEngine {
    public let config: BlkdebugConfig
    public private(set) var state: Int = 1
    /// Hits per inject-error rule (index = position in `config.injectErrors`).
    public private(set) var hits: [Int]
    /// Requests each rule matched (including those it let through because of after/probability/up).
    public private(set) var matches: [Int]

    /// Rules of one (event, state) group.
    struct Group {
        /// Rule indices without a sector, per iotype (file order).
        var sectorless: [[Int]] = Array(repeating: [], count: BlkdebugIOType.allCases.count)
        /// Sector rules sorted by (offset, index).
        var offsets: [Int64] = []
        var sectorRules: [Int] = []
        /// 4 KiB bucket → the contiguous slice of `offsets` inside it: a small request looks up
        /// one or two buckets (hashing, O(1)) instead of binary-searching all sector rules.
        var buckets: [Int64: Range<Int>] = [:]
        var alive = 0
    }

    static let bucketShift: Int64 = 12
    /// Requests spanning more buckets than this use binary search instead.
    static let maxBucketProbes: Int64 = 16

    private var anyState: [Group]                 // per event
    private var byState: [[Int: Group]]          // per event → state → group
    private var setStateRules: [[Int]]           // per event, indices into config.setStates (file order)
    private var deleted: [Bool]
    private var armed: (event: Int, state: Int)?
    private var rng: [SplitMix64]
    private let clock: () -> Double
    private let startTime: Double

    /// - Parameters:
    ///   - seed: seeds every rule's generator for `probability` (same seed → same failures).
    ///   - clock: monotonic seconds, for `up`/`down` windows (injected in tests).
    ///   - fireOpenEvent: fire `none` now, as blkdebug does when the node is opened.
    public init(config: BlkdebugConfig, seed: UInt64 = 1, clock: @escaping () -> Double = FaultRuleEngine.monotonicSeconds,
                fireOpenEvent: Bool = true) {
        self.config = config
        self.clock = clock
        self.startTime = clock()
        let n = config.injectErrors.count
        hits = Array(repeating: 0, count: n)
        matches = Array(repeating: 0, count: n)
        deleted = Array(repeating: false, count: n)
        rng = (0..<n).map { SplitMix64(seed: seed ^ (UInt64($0 + 1) &* 0x9E37_79B9_7F4A_7C15)) }
        let eventCount = BlkdebugEvent.allCases.count
        anyState = Array(repeating: Group(), count: eventCount)
        byState = Array(repeating: [:], count: eventCount)
        setStateRules = Array(repeating: [], count: eventCount)

        for (i, r) in config.injectErrors.enumerated() {
            let e = r.event.index
            if r.state == 0 { Self.add(i, r, to: &anyState[e]) } else { Self.add(i, r, to: &byState[e][r.state, default: Group()]) }
        }
        for g in anyState.indices {
            Self.sortSectors(&anyState[g])
            for k in byState[g].keys { Self.sortSectors(&byState[g][k]!) }
        }
        for (i, r) in config.setStates.enumerated() { setStateRules[r.event.index].append(i) }
        if fireOpenEvent { fire(.none) }
    }

    private static func add(_ i: Int, _ r: InjectErrorRule, to g: inout Group) {
        g.alive += 1
        if let off = r.byteOffset {
            g.offsets.append(off)
            g.sectorRules.append(i)
        } else {
            for t in BlkdebugIOType.allCases where r.iotypeMask & t.bit != 0 { g.sectorless[t.index].append(i) }
        }
    }

    private static func sortSectors(_ g: inout Group) {
        let order = g.offsets.indices.sorted { (g.offsets[$0], g.sectorRules[$0]) < (g.offsets[$1], g.sectorRules[$1]) }
        g.offsets = order.map { g.offsets[$0] }
        g.sectorRules = order.map { g.sectorRules[$0] }
        var k = 0
        while k < g.offsets.count {
            let b = g.offsets[k] >> bucketShift
            var end = k + 1
            while end < g.offsets.count, g.offsets[end] >> bucketShift == b { end += 1 }
            g.buckets[b] = k..<end
            k = end
        }
    }

    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Whether any rule exists at all (lets callers skip the engine entirely).
    public var isEmpty: Bool { config.isEmpty }

    /// The rules currently armed (indices, file order).
    public var armedRules: [Int] {
        guard let a = armed else { return [] }
        var out: [Int] = []
        for g in [anyState[a.event], byState[a.event][a.state]].compactMap({ $0 }) {
            out += g.sectorRules
            for list in g.sectorless { out += list }
        }
        return Array(Set(out)).filter { !deleted[$0] }.sorted()
    }

    /// An event happened in the block layer (blkdebug_co_debug_event).
    public func fire(_ event: BlkdebugEvent) {
        let e = event.index
        let s = state
        let armedCount = anyState[e].alive + (byState[e].isEmpty ? 0 : byState[e][s]?.alive ?? 0)
        if armedCount > 0 { armed = (e, s) }
        for i in setStateRules[e] {
            let r = config.setStates[i]
            if r.state == 0 || r.state == s {
                state = r.newState
                break
            }
        }
    }

    /// What happens to a request (blkdebug's rule_check). nil: no armed rule matched.
    public func check(offset: Int64, bytes: Int64, iotype: BlkdebugIOType) -> FaultDecision? {
        guard let a = armed else { return nil }
        var candidates: [Int] = []
        collect(&anyState[a.event], offset: offset, bytes: bytes, iotype: iotype, into: &candidates)
        if !byState[a.event].isEmpty, byState[a.event][a.state] != nil {
            collect(&byState[a.event][a.state]!, offset: offset, bytes: bytes, iotype: iotype, into: &candidates)
        }
        guard !candidates.isEmpty else { return nil }
        if candidates.count > 1 { candidates.sort() }
        for i in candidates where !deleted[i] {
            let r = config.injectErrors[i]
            matches[i] += 1
            if !isHit(i, r) { continue }
            if r.errno == 0 && r.extensions.delayNanoseconds == nil {
                return FaultDecision(ruleIndex: i, rule: r, errno: 0, delayNanoseconds: 0)   // QEMU: matched, succeeds, kept
            }
            hits[i] += 1
            if r.once { delete(i) }
            return FaultDecision(ruleIndex: i, rule: r, errno: r.errno, delayNanoseconds: r.extensions.delayNanoseconds ?? 0)
        }
        return nil
    }

    /// Candidates of one group: the first live sectorless rule per iotype list — plus the ones after it,
    /// in case extensions let it pass — and every live sector rule inside the byte range.
    private func collect(_ g: inout Group, offset: Int64, bytes: Int64, iotype: BlkdebugIOType, into out: inout [Int]) {
        guard g.alive > 0 else { return }
        let t = iotype.index
        if !g.sectorless[t].isEmpty {
            // Drop rules deleted by `once` from the front so they are skipped only once.
            var dead = 0
            while dead < g.sectorless[t].count, deleted[g.sectorless[t][dead]] { dead += 1 }
            if dead > 0 { g.sectorless[t].removeFirst(dead) }
            for i in g.sectorless[t] where !deleted[i] {
                out.append(i)
                if config.injectErrors[i].extensions.isEmpty { break }   // a plain rule always wins
            }
        }
        guard bytes > 0, !g.offsets.isEmpty else { return }
        let end = offset &+ bytes
        let first = offset >> Self.bucketShift, last = (end &- 1) >> Self.bucketShift
        if last &- first < Self.maxBucketProbes {
            var b = first
            while b <= last {
                if let range = g.buckets[b] {
                    for k in range where g.offsets[k] >= offset && g.offsets[k] < end {
                        let i = g.sectorRules[k]
                        if !deleted[i] && config.injectErrors[i].iotypeMask & iotype.bit != 0 { out.append(i) }
                    }
                }
                b += 1
            }
            return
        }
        var lo = 0, hi = g.offsets.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if g.offsets[mid] < offset { lo = mid + 1 } else { hi = mid }
        }
        var k = lo
        while k < g.offsets.count, g.offsets[k] < end {
            let i = g.sectorRules[k]
            if !deleted[i] && config.injectErrors[i].iotypeMask & iotype.bit != 0 { out.append(i) }
            k += 1
        }
    }

    private func isHit(_ i: Int, _ r: InjectErrorRule) -> Bool {
        let ext = r.extensions
        if ext.isEmpty { return true }
        if let up = ext.upSeconds, let down = ext.downSeconds {
            let t = (clock() - startTime).truncatingRemainder(dividingBy: up + down)
            if t < up { return false }
        }
        if let after = ext.after, matchesCounted(i) <= after { return false }
        if let p = ext.probability {
            if p <= 0 { return false }
            if p < 1 && rng[i].nextUnit() >= p { return false }
        }
        return true
    }

    /// Matches counted towards `after`: those outside `up` windows (the window check ran first).
    private var afterCounts: [Int: Int] = [:]
    private func matchesCounted(_ i: Int) -> Int {
        afterCounts[i, default: 0] += 1
        return afterCounts[i]!
    }

    private func delete(_ i: Int) {
        guard !deleted[i] else { return }
        deleted[i] = true
        let r = config.injectErrors[i]
        let e = r.event.index
        if r.state == 0 { anyState[e].alive -= 1 } else { byState[e][r.state]?.alive -= 1 }
    }

    public func isDeleted(_ ruleIndex: Int) -> Bool { deleted[ruleIndex] }
}

/// What a rule decided for one request.
public struct FaultDecision: Sendable {
    public var ruleIndex: Int
    public var rule: InjectErrorRule
    /// 0: the request succeeds (possibly after `delayNanoseconds`).
    public var errno: Int32
    public var delayNanoseconds: UInt64
}

extension BlkdebugEvent {
    /// Position in QEMU's enum (array index for the engine's tables). A payload-free enum is
    /// stored as its case number in declaration order (checked by a test against allCases).
    @inline(__always) var index: Int { Int(unsafeBitCast(self, to: UInt8.self)) }
}

extension BlkdebugIOType {
    var index: Int {
        switch self {
        case .read: return 0
        case .write: return 1
        case .writeZeroes: return 2
        case .discard: return 3
        case .flush: return 4
        case .blockStatus: return 5
        }
    }
}
