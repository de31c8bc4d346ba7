import Foundation
import KVMScopeQMP
import KVMScopeTrace
import KVMScopeGuestLog

/// The verdict's sentences for disks the host saw working, and for disks it could not see.
extension ExplainStory {
    /// What the guest shows on a disk, for "the guest logged …".
    func troubleWords(_ disk: String) -> String {
        var parts: [String] = []
        let errors = guestErrors.filter { GuestDiskBus.disk(of: $0.device) == disk }.count
        if errors > 0 { parts.append(count(errors, "I/O error")) }
        for d in guest?.devices ?? [] where GuestDiskBus.disk(of: d.name) == disk {
            for fs in d.filesystems where fs.errors > 0 {
                let where_ = fs.errorFunctions.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.prefix(3).map(\.key)
                parts.append("\(count(fs.errors, "\(fs.type) error"))" + (fs.device == disk ? "" : " on \(fs.device)") + (where_.isEmpty ? "" : " (in \(where_.joined(separator: ", ")))"))
            }
            if d.totalBufferErrors > 0, errors == 0 { parts.append(count(d.totalBufferErrors, "buffer I/O error")) }
        }
        return parts.isEmpty ? "problems" : parts.joined(separator: " and ")
    }

    func guestInternalSentences() -> [String] {
        var out: [String] = []
        for c in coverage {
            var proof = "QEMU's trace holds \(c.bus.words) events"
            if let span = host?.timeSpan { proof += " from \(Self.clock(span.start)) to \(Self.clock(span.end))" }
            if let done = completedRequests(for: c.guestDevice) {
                proof += " and shows all \(count(done.completed, "request")) to the disk completing successfully"
            }
            if let a = c.problemsStartTime, let b = c.problemsEndTime {
                proof += "; the guest's trouble on \(c.guestDevice) (\(Self.clock(a))\(b - a >= 0.000_001 ? "–\(Self.clock(b))" : "") by the host clock, "
                    + (clockAnchored ? "placed by the guest's disk setup" : "placed by the matched requests") + ") falls inside it"
            }
            if c.qmpCoversTime == true { proof += ", and QMP reported no BLOCK_IO_ERROR meanwhile" }
            let blockErrors = guestErrors.contains { GuestDiskBus.disk(of: $0.device) == c.guestDevice }
            let cause = blockErrors
                ? "the guest failed requests QEMU completed: the error arose inside the guest (a timeout or abort in its block layer, or a layer above the disk)"
                : "the guest's filesystem found bad data that the disk returned faithfully: the corruption is in what is stored (written earlier, by an old failure, a bug, or something that wrote to the image outside the guest), not in a failing request now"
            out.append("The guest logged \(troubleWords(c.guestDevice)) on \(c.guestDevice), but \(proof): \(cause).")
        }
        return out
    }

    func notCoveredSentences() -> [String] {
        coverage.filter { !$0.covered && !$0.toCover.isEmpty }.map { c in
            "The guest logged \(troubleWords(c.guestDevice)) on \(c.guestDevice) (\(c.bus.words)); the host inputs cannot say where it failed: \(c.toCover.joined(separator: "; "))."
        }
    }

    /// For a verdict about other disks: the disks it does not speak for.
    func uncoveredAsides() -> [String] {
        let matchedDisks = Set(matches.map { GuestDiskBus.disk(of: $0.guestDevice) })
        return coverage.filter { !$0.covered && !matchedDisks.contains($0.guestDevice) && !$0.toCover.isEmpty }.map { c in
            "The errors on \(c.guestDevice) (\(c.bus.words)) are not covered by this verdict: \(c.toCover.joined(separator: "; "))."
        }
    }

    /// The drive's error policy as the evidence has it, for "QEMU passed it to the guest (…)".
    func policyWords(_ operation: VirtioBlkOperation) -> String {
        let op = operation == .read ? "read" : "write"
        let known = policies.filter { $0.operation == op }
        if let p = known.first, known.allSatisfy({ $0.possible == p.possible }) { return p.words }
        return operation == .read ? "rerror=report, the default" : "werror=report, or the default werror=enospc, which reports every error but ENOSPC"
    }
}
