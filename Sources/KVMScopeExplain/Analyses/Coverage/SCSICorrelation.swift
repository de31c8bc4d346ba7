import KVMScopeQMP
import KVMScopeTrace

/// Guest `sd` block errors ↔ the SCSI requests QEMU failed (KVMScopeTrace's ScsiReport).
///
/// The guest's SCSI midlayer retries a command that ended in ABORTED COMMAND (drivers/scsi/
/// scsi_error.c scsi_check_sense() → NEEDS_RETRY; sd allows 5 retries) and logs the block
/// error once, after the last attempt; QEMU fails, traces and reports (BLOCK_IO_ERROR) every
/// attempt. So failures of one LBA range and kind, one right after the other, are the attempts
/// of one guest request: the guest error pairs with the last, the earlier ones are retries.
enum SCSICorrelation {
    /// One guest request's attempts: indices into `host.scsi.failures`, in trace order.
    struct Burst {
        var failures: [Int]
        var sector: UInt64?
        var isRead: Bool
        var first: Double?
        var last: Double?
    }

    struct Pair {
        var guest: Int
        var burst: Burst
        /// Host time minus (guest uptime + offset), when both are known.
        var delta: Double?
    }

    /// Attempts of one request follow each other within this many seconds.
    static let retryGapSeconds = 0.5
    static let maxAttempts = 6

    static func isRead(_ f: ScsiFailure) -> Bool { f.command?.kind == "read" }

    static func bursts(_ failures: [ScsiFailure]) -> [Burst] {
        var out: [Burst] = []
        for (i, f) in failures.enumerated() {
            if var b = out.last, b.sector == f.sector, b.isRead == isRead(f), b.failures.count < maxAttempts,
               let t0 = b.last, let t1 = f.time, t1 >= t0, t1 - t0 <= retryGapSeconds {
                b.failures.append(i)
                b.last = t1
                out[out.count - 1] = b
            } else {
                out.append(Burst(failures: [i], sector: f.sector, isRead: isRead(f), first: f.time, last: f.time))
            }
        }
        return out
    }

    /// Each guest error on a SCSI disk (indices given) with the first unused burst of the same
    /// sector and kind (closest in time when the clock offset is known); the offset, when it
    /// was unknown, from the pairs' median.
    static func correlate(_ guest: [GuestHostCorrelator.GuestError], candidates: [Int], failures: [ScsiFailure],
                          offset known: Double?) -> (pairs: [Pair], offset: Double?) {
        let all = bursts(failures)
        var used = Set<Int>()
        var chosen: [(Int, Int)] = []
        for g in candidates {
            let e = guest[g]
            let read = e.operation == .read
            let fits = all.indices.filter { !used.contains($0) && all[$0].sector == e.sector && all[$0].isRead == read }
            let pick: Int?
            if let known, let u = e.uptime {
                pick = fits.min { abs((all[$0].last ?? 0) - (u + known)) < abs((all[$1].last ?? 0) - (u + known)) }
            } else {
                pick = fits.first
            }
            if let b = pick { used.insert(b); chosen.append((g, b)) }
        }
        let diffs = chosen.compactMap { g, b -> Double? in
            guard let u = guest[g].uptime, let t = all[b].last else { return nil }
            return t - u
        }.sorted()
        let offset = known ?? (diffs.isEmpty ? nil : diffs[diffs.count / 2])
        let pairs = chosen.map { g, b -> Pair in
            let d: Double? = {
                guard let offset, let u = guest[g].uptime, let t = all[b].last else { return nil }
                return t - (u + offset)
            }()
            return Pair(guest: g, burst: all[b], delta: d)
        }
        return (pairs, offset)
    }

    /// The BLOCK_IO_ERRORs QEMU sent for a burst's attempts: same kind, within the burst's time
    /// (± 0.1 s). The last one is the error of the attempt the guest logged.
    static func qmpErrors(for burst: Burst, in errors: [QMPTimeline.IOError], excluding taken: Set<Int>) -> [Int] {
        guard let a = burst.first, let b = burst.last else { return [] }
        return errors.indices.filter { i in
            guard !taken.contains(i), let t = errors[i].time else { return false }
            return (errors[i].operation == .read) == burst.isRead && t >= a - 0.1 && t <= b + 0.1
        }
    }
}
