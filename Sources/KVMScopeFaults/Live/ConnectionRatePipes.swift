/// One connection's pipes for [rate] sections with `connection-rate` (nbdkit's rate filter
/// `connection-rate=`, filters/rate/rate.c: a bucket per connection next to the global one).
/// The engine marks such a request with `InjectedFault.connectionBitsPerSecond`; the connection
/// (an NBD client's transmission handler, a `kvmscope io` session) passes each completion
/// through `apply` before it waits or logs: the request's bytes go through its own pipe, in the
/// order the connection's requests complete, and the reply waits until they have passed. With
/// an overall `rate` too, the data goes through both pipes at once, so the reply waits for the
/// slower one (the longer of the two waits), and the throughput is the lower limit's, as with
/// nbdkit, whose per-connection bucket refills while a request sleeps on the global one. A
/// charge that costs no wait (the pipe was idle long enough) is dropped from the faults, as
/// the overall pipe does. Not thread-safe: one per connection, used from one place at a time.
public struct ConnectionRatePipes: Sendable {
    /// When each section's pipe is free again (monotonic seconds), by the section's location and
    /// speed: a change of rules that keeps the section as it was keeps its backlog (its waiters
    /// keep their wait too), one that changes the speed starts an empty pipe (its waiters are
    /// let go: nothing is left to wait behind).
    private var freeAt: [String: Double] = [:]

    public init() {}

    /// The wait `faults` add up to, each counted as `owed` says (a held reply's faults after a
    /// change of rules): the overall [rate] pipes and the connection's own overlap (the slower
    /// one counts, as in `apply`), everything else adds up.
    public static func delay(of faults: [InjectedFault], owed: (InjectedFault) -> UInt64) -> UInt64 {
        var others: UInt64 = 0, overall: UInt64 = 0, own: UInt64 = 0
        func add(_ a: UInt64, _ b: UInt64) -> UInt64 { let (sum, overflow) = a.addingReportingOverflow(b); return overflow ? .max : sum }
        for f in faults {
            let d = owed(f)
            if f.kind == .rate && f.connectionBitsPerSecond > 0 { own = max(own, d) }
            else if f.kind == .rate { overall = add(overall, d) }
            else { others = add(others, d) }
        }
        return add(others, max(overall, own))
    }

    public mutating func apply(_ c: BlockCompletion, now: Double) -> BlockCompletion {
        guard c.faults.contains(where: { $0.connectionBitsPerSecond > 0 }) else { return c }
        var out = c
        out.faults = []
        // The overall pipes' waits, already in the delay: the connection's own wait overlaps them.
        let overall = c.faults.reduce(UInt64(0)) { sum, f in
            f.kind == .rate && f.connectionBitsPerSecond == 0 ? sum &+ f.delayNanoseconds : sum
        }
        var own: UInt64 = 0
        for var f in c.faults {
            guard f.connectionBitsPerSecond > 0 else { out.faults.append(f); continue }
            let key = "\(f.rule.location)@\(f.connectionBitsPerSecond)"
            let start = max(now, freeAt[key] ?? -Double.infinity)
            let done = start + Double(max(f.length, 0)) * 8 / Double(f.connectionBitsPerSecond)
            freeAt[key] = done
            let wait = done - now
            // As the overall pipe: over a second of backlog is a day-long wait, not an overflow.
            let ns = wait >= 1e9 ? UInt64(1e18) : UInt64((wait * 1e9).rounded())
            guard ns > 0 else { continue }
            f.delayNanoseconds = ns
            own = max(own, ns)
            out.faults.append(f)
        }
        if own > overall {
            let (sum, overflow) = out.delayNanoseconds.addingReportingOverflow(own - overall)
            out.delayNanoseconds = overflow ? .max : sum
        }
        return out
    }
}
