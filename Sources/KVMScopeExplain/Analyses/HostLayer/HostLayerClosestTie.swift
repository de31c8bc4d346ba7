extension HostLayerCorrelation {
    /// The ties explain reports: as many as `tie` makes, each QEMU failure paired with the host
    /// error that makes the sum of |delta| smallest.
    ///
    /// The greedies of `tie` count right but can pair a failure with its neighbour's error: a
    /// capture that begins mid-burst has host errors of failures QEMU's trace never saw, and the
    /// earliest-first greedy gives the first traced failure the error of the untraced one before
    /// it (40 ms off, in Tests/Fixtures/record/host-disk-eio), and so on down the burst.
    ///
    /// On a line with a window of one width, two crossing pairs (q1 < q2 tied to h1 > h2) can
    /// always be uncrossed: each new delta lies between the two old ones, so it is inside the
    /// window, and |·| is convex, so the sum does not grow. An order-preserving matching is
    /// therefore as good as any, and a dynamic programme over the two time-ordered lists finds
    /// the best: most pairs, then least total |delta|. The read/write kind can forbid an
    /// uncrossing, so the programme's answer is used only when it ties no fewer than `tie`.
    ///
    /// Cost: the failures fall into clusters whose windows chain; each cluster's table is
    /// failures × host errors, at most `closestTieCellLimit` cells, or that cluster keeps `tie`'s pairs.
    static func tieClosest(_ qemu: [QEMUFailure], _ host: [(index: Int, time: Double, write: Bool?)], offset: Double)
        -> [(qemu: Int, host: Int, delta: Double)] {
        let greedy = tie(qemu, host, offset: offset)
        let order = qemu.indices.filter { qemu[$0].time != nil }.sorted { (qemu[$0].time!, $0) < (qemu[$1].time!, $1) }
        let target = order.map { qemu[$0].time! - offset }
        // The window of each failure: host[lo ..< hi].
        func firstHost(atLeast t: Double) -> Int {
            var lo = 0, hi = host.count
            while lo < hi { let m = (lo + hi) / 2; if host[m].time < t { lo = m + 1 } else { hi = m } }
            return lo
        }
        let windows = target.map { t in (firstHost(atLeast: t - tolerance), firstHost(atLeast: t + tolerance.nextUp)) }

        var greedyFor: [Int: (host: Int, delta: Double)] = [:]
        for p in greedy { greedyFor[p.qemu] = (p.host, p.delta) }
        var out: [(qemu: Int, host: Int, delta: Double)] = []
        var start = 0
        while start < order.count {
            // A cluster: failures whose windows overlap the ones before them.
            var end = start + 1
            var hostEnd = windows[start].1
            while end < order.count, windows[end].0 < hostEnd { hostEnd = max(hostEnd, windows[end].1); end += 1 }
            let hostStart = windows[start].0
            let cluster = start..<end
            let hostRange = hostStart..<max(hostStart, hostEnd)
            let greedyPairs = cluster.compactMap { k in greedyFor[order[k]].map { (qemu: order[k], host: $0.host, delta: $0.delta) } }
            if let best = closestInCluster(cluster, hostRange, order: order, target: target, qemu: qemu, host: host),
               best.count >= greedyPairs.count {
                out += best
            } else {
                out += greedyPairs
            }
            start = end
        }
        return out.count >= greedy.count ? out.sorted { $0.qemu < $1.qemu } : greedy
    }

    /// Cells one cluster's table may have: 4 M (a byte each for the choices, two rows of scores).
    static let closestTieCellLimit = 1 << 22

    /// The order-preserving matching of one cluster with the most pairs, then the least total
    /// |delta|; nil when the cluster is too large for its table.
    private static func closestInCluster(_ cluster: Range<Int>, _ hosts: Range<Int>, order: [Int], target: [Double],
                                         qemu: [QEMUFailure], host: [(index: Int, time: Double, write: Bool?)])
        -> [(qemu: Int, host: Int, delta: Double)]? {
        let n = cluster.count, m = hosts.count
        guard m > 0 else { return [] }
        let (cells, overflow) = (n + 1).multipliedReportingOverflow(by: m + 1)
        guard !overflow, cells <= closestTieCellLimit else { return nil }
        // score(i, j): the best over the first i failures and the first j host errors.
        // choice: 0 = skip the failure, 1 = skip the host error, 2 = pair them.
        struct Score { var pairs: Int; var cost: Double
            func better(than o: Score) -> Bool { pairs != o.pairs ? pairs > o.pairs : cost < o.cost }
        }
        var choice = [UInt8](repeating: 1, count: cells)
        var previous = [Score](repeating: Score(pairs: 0, cost: 0), count: m + 1)
        var current = previous
        for i in 1...n {
            let k = cluster.lowerBound + i - 1
            let q = qemu[order[k]], t = target[k]
            current[0] = Score(pairs: 0, cost: 0)
            choice[i * (m + 1)] = 0
            for j in 1...m {
                let h = host[hosts.lowerBound + j - 1]
                var best = previous[j], pick: UInt8 = 0
                if current[j - 1].better(than: best) { best = current[j - 1]; pick = 1 }
                let d = abs(t - h.time)
                if d <= tolerance, compatible(q.write, h.write) {
                    let paired = Score(pairs: previous[j - 1].pairs + 1, cost: previous[j - 1].cost + d)
                    if paired.better(than: best) { best = paired; pick = 2 }
                }
                current[j] = best
                choice[i * (m + 1) + j] = pick
            }
            swap(&previous, &current)
        }
        var pairs: [(qemu: Int, host: Int, delta: Double)] = []
        var i = n, j = m
        while i > 0 && j > 0 {
            switch choice[i * (m + 1) + j] {
            case 0: i -= 1
            case 1: j -= 1
            default:
                let k = cluster.lowerBound + i - 1, hi = hosts.lowerBound + j - 1
                pairs.append((order[k], hi, target[k] - host[hi].time))
                i -= 1; j -= 1
            }
        }
        return pairs.reversed()
    }
}
