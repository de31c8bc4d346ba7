import KVMScopeQMP
import KVMScopeTrace
import KVMScopeGuestLog
/// Lines up guest block errors with the host requests behind them.
///
/// The guest logs the first sector of each failed request; the sector that really failed can be
/// anywhere inside it, and QEMU may have merged several guest requests into one. So host
/// failures are indexed by sector range in an interval tree (per host device) and each guest
/// error asks which failed host requests cover its sector, in O(log n). Guest times are seconds
/// since the guest booted and host times are wall clock: the offset between them is estimated
/// from the errors that have exactly one candidate, then used to pick among the rest.
struct GuestHostCorrelator {
    public struct GuestError: Equatable {
        public var device: String
        public var sector: UInt64
        public var operation: BlockIOOperation?
        public var uptime: Double?
        public var line: Int
        /// How fine the stamp is, in seconds (1 for syslog and journalctl short stamps): the
        /// error happened somewhere in [uptime, uptime + precision).
        public var precision: Double = 0.000_001
    }

    public struct HostFailure: Equatable {
        public var device: String
        public var sector: UInt64?
        public var sectors: UInt64?
        public var operation: VirtioBlkOperation
        public var time: Double?
    }

    public struct Result: Equatable {
        /// (guest index, host index, time delta after the offset).
        public var pairs: [(guest: Int, host: Int, delta: Double?)]
        /// guest device → host device, for the pairs of devices whose errors lined up.
        public var deviceMap: [String: String]
        public var clockOffset: Double?
        /// Largest minus smallest time difference of the final pairs (after the offset).
        public var clockOffsetSpread: Double?
        /// Per guest error: how many failed host requests could have been it.
        public var candidateCounts: [Int] = []

        public static func == (a: Result, b: Result) -> Bool {
            a.pairs.map { [$0.guest, $0.host] } == b.pairs.map { [$0.guest, $0.host] }
                && a.deviceMap == b.deviceMap && a.clockOffset == b.clockOffset
        }
    }

    /// Two requests QEMU merged come back as one failure: a host failure may answer several guest
    /// errors when they are this close in time (after the offset).
    static let mergedRequestWindow = 0.5

    public static func correlate(guest: [GuestError], host: [HostFailure]) -> Result {
        let hostDevices = Set(host.map(\.device))
        let guestDevices = Set(guest.map(\.device))
        var trees: [String: IntervalTree<Int>] = [:]
        var rangeless: [String: [Int]] = [:]
        for (i, h) in host.enumerated() {
            if let s = h.sector {
                // Sectors are the trace's uint64_t: a range reaching past 2^64 - 1 ends there.
                let (end, past) = s.addingReportingOverflow(max(h.sectors ?? 1, 1))
                trees[h.device, default: IntervalTree()].insert(start: s, end: past ? .max : end, value: i)
            } else {
                rangeless[h.device, default: []].append(i)
            }
        }

        func candidates(_ g: GuestError, on device: String) -> [Int] {
            var found: [Int] = []
            if g.operation == .flush {
                found = rangeless[device] ?? []
            } else {
                // The guest's sector_t can be 2^64 - 1, which starts no sector range [s, s + 1).
                if g.sector < .max {
                    trees[device]?.forEachOverlapping(start: g.sector, end: g.sector + 1) { found.append($0) }
                }
                // Requests the trace saw without a sector (discard/other) can still be the one.
                if g.operation != .read && g.operation != .write { found += rangeless[device] ?? [] }
            }
            return found.filter { compatible(g.operation, host[$0].operation) }
        }

        // Which host device is which guest disk: the pairing whose errors line up best.
        var scores: [(g: String, h: String, score: Int)] = []
        for gd in guestDevices {
            for hd in hostDevices {
                let score = guest.filter { $0.device == gd && !candidates($0, on: hd).isEmpty }.count
                if score > 0 { scores.append((gd, hd, score)) }
            }
        }
        scores.sort { $0.score != $1.score ? $0.score > $1.score : ($0.g, $0.h) < ($1.g, $1.h) }
        var deviceMap: [String: String] = [:]
        var takenHost = Set<String>()
        for s in scores where deviceMap[s.g] == nil && !takenHost.contains(s.h) {
            deviceMap[s.g] = s.h
            takenHost.insert(s.h)
        }

        // Clock offset from the errors that have exactly one candidate.
        var samples: [Double] = []
        var candidateLists: [[Int]] = []
        for g in guest {
            let c = deviceMap[g.device].map { candidates(g, on: $0) } ?? []
            candidateLists.append(c)
            if c.count == 1, let ut = g.uptime, let ht = host[c[0]].time { samples.append(ht - ut) }
        }
        var offset: Double?
        var spread: Double?
        if !samples.isEmpty {
            let sorted = samples.sorted()
            offset = sorted[sorted.count / 2]
            spread = sorted.last! - sorted.first!
        }

        // Assign in guest time order, each host failure once unless it is a merged request.
        let order = guest.indices.sorted {
            (guest[$0].uptime ?? Double(guest[$0].line), guest[$0].line) < (guest[$1].uptime ?? Double(guest[$1].line), guest[$1].line)
        }
        var used: [Int: Double?] = [:]   // host index → guest-side time it answered
        var pairs: [(guest: Int, host: Int, delta: Double?)] = []
        for gi in order {
            let g = guest[gi]
            let cands = candidateLists[gi]
            guard !cands.isEmpty else { continue }
            func delta(_ hi: Int) -> Double? {
                guard let offset, let ut = g.uptime, let ht = host[hi].time else { return nil }
                return ht - (ut + offset)
            }
            // A coarse stamp is a window: any host time inside it is as close as can be told,
            // and then order decides (the k-th error of the second ↔ the k-th failure in it).
            func distance(_ hi: Int) -> Double? {
                guard let d = delta(hi) else { return nil }
                if g.precision <= 0.001 { return abs(d) }
                return d < 0 ? -d : max(0, d - g.precision)
            }
            let coarse = g.precision > 0.001
            // With times: the closest candidate wins, a used one only within the merged-request
            // window (the guest may log two errors for one host request) — never with coarse
            // stamps, which cannot tell a repeat from a merge. Without times: first unused.
            let pool: [Int]
            if offset != nil && g.uptime != nil {
                pool = cands.filter { hi in used[hi] == nil || (!coarse && (delta(hi).map { abs($0) <= mergedRequestWindow } ?? false)) }
            } else {
                let fresh = cands.filter { used[$0] == nil }
                pool = fresh.isEmpty ? [] : [fresh.min()!]
            }
            guard let best = pool.min(by: { a, b in
                let da = distance(a) ?? 0, db = distance(b) ?? 0
                return da != db ? da < db : a < b
            }) else { continue }
            used[best] = g.uptime
            pairs.append((gi, best, delta(best)))
        }
        // Every error had several candidates (the same sector failing again and again): the pairs
        // made in order still tell the offset.
        if offset == nil {
            let fromPairs = pairs.compactMap { p -> Double? in
                guard let u = guest[p.guest].uptime, let t = host[p.host].time else { return nil }
                return t - u
            }.sorted()
            if !fromPairs.isEmpty {
                let o = fromPairs[fromPairs.count / 2]
                offset = o
                spread = fromPairs.last! - fromPairs.first!
                pairs = pairs.map { p in
                    let d: Double? = guest[p.guest].uptime.flatMap { u in host[p.host].time.map { $0 - (u + o) } }
                    return (p.guest, p.host, d)
                }
            }
        }
        pairs.sort { $0.guest < $1.guest }
        let deltas = pairs.compactMap(\.delta)
        if let lo = deltas.min(), let hi = deltas.max() { spread = hi - lo }
        return Result(pairs: pairs, deviceMap: deviceMap, clockOffset: offset, clockOffsetSpread: spread,
                      candidateCounts: candidateLists.map(\.count))
    }

    /// Whether a guest operation can be the host's: flushes with flushes, reads with reads...
    static func compatible(_ g: BlockIOOperation?, _ h: VirtioBlkOperation) -> Bool {
        guard let g else { return h != .flush }   // old kernels print no operation
        switch g {
        case .read: return h == .read || h == .readOrWrite
        case .write: return h == .write || h == .readOrWrite
        case .flush: return h == .flush || h == .flushOrOther
        case .discard, .writeZeroes, .secureErase, .writeSame:
            return h == .discardOrWriteZeroes || h == .flushOrOther || h == .other
        default: return h == .other || h == .flushOrOther
        }
    }
}
