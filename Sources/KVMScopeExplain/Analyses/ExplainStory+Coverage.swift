import Foundation
import KVMScopeQMP
import KVMScopeTrace
import KVMScopeGuestLog
import KVMScopeHost

/// The verdict's sentences for disks the host saw working, and for disks it could not see.
extension ExplainStory {
    /// What the guest shows on a disk, for "the guest logged …".
    func troubleWords(_ disk: String) -> String {
        var parts: [String] = []
        let errors = guestErrors.filter { GuestDiskBus.disk(of: $0.device) == disk }.count
        if errors > 0 { parts.append(count(errors, "I/O error")) }
        for d in guest?.devices ?? [] where GuestDiskBus.disk(of: d.name) == disk {
            if let t = d.timeouts, t.total > 0 {
                parts.append(count(t.total, "device timeout or abort") + (t.maxWaitedSeconds.map { " (up to \($0) s)" } ?? ""))
            }
            for fs in d.filesystems where fs.corruptionReports > 0 {
                parts.append("\(count(fs.corruptionReports, "\(fs.type) corruption report")) (\(Self.corruptionWhere(fs)))")
            }
            for fs in d.filesystems where fs.errors > 0 && fs.corruptionReports == 0 {
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
            if let span = host?.timeSpan { proof += " from \(Self.span(span.start, span.end, joiner: " to "))" }
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
        if let h = guest?.hungTasks, h.total > 0 {
            out.append("The guest also reported \(count(h.total, "hung task"))" + (h.maxBlockedSeconds.map { " (blocked for more than \($0) s)" } ?? "") + ": tasks waited on I/O that QEMU was not holding.")
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

    /// What the trace's SCSI requests say: per guest request the guest logged, the command,
    /// the errno behind the sense, and the attempts; then those no guest error pairs with.
    func scsiSentences() -> [String] {
        var out: [String] = []
        for m in matches {
            guard let i = m.scsi, i < scsiFailures.count else { continue }
            let f = scsiFailures[i]
            let cmd = f.command.map { "\($0.name)" } ?? "command"
            let at = f.sector.map { " at sector \($0)" + (f.sectors.map { "+\($0)" } ?? "") } ?? ""
            let attempts = m.attempts ?? 1
            var t = "The host's storage under QEMU failed the guest's SCSI \(f.command?.kind ?? "") request (\(cmd)\(at)"
            t += attempts > 1 ? ", \(attempts) attempts)" : ")"
            if let e = f.sense?.hostErrno { t += " with \(e)" }
            if let sense = f.sense {
                t += "; QEMU's SCSI disk answered \(f.statusName ?? "CHECK CONDITION") with sense \(sense.keyName)" + (sense.ascName.map { " / \($0)" } ?? "")
            }
            if attempts > 1 {
                t += "; the guest's SCSI layer retried it \(attempts - 1) time\(attempts == 2 ? "" : "s") (ABORTED COMMAND is retried, drivers/scsi/scsi_error.c) and logged the error once, after the last"
            }
            out.append(t + ".")
        }
        let rest = scsiRealFailures.filter { !scsiMatchedFailures.contains($0) }
        if !rest.isEmpty, guest != nil {
            out.append("\(count(rest.count, "other failed SCSI request")) in the trace \(rest.count == 1 ? "has" : "have") no guest error paired with \(rest.count == 1 ? "it" : "them").")
        } else if !rest.isEmpty, let f = rest.first.map({ scsiFailures[$0] }) {
            out.append("QEMU failed \(count(rest.count, "SCSI request")) (first: \(f.explanation)).")
        }
        return out
    }

    /// The NBD client's account: the connection lost, the reconnects, the requests failed.
    func nbdSentence(_ nbd: NbdClientAccount) -> String {
        let address = nbd.server ?? disks?.disks.first { $0.drivers.contains("nbd") }?.server
        var t = "The storage under QEMU is an NBD server" + (address.map { " (\($0))" } ?? "")
        if let loss = nbd.connectionLosses.first {
            t += ": it closed the connection" + (loss.time.map { " at \(Self.clock($0))" } ?? "") + " (\(loss.reason))"
        }
        if nbd.reconnectAttempts > 0 {
            let why = nbd.reconnectFailures.map { "\($0.errnoName ?? "ret \($0.ret)") ×\($0.count)" }.joined(separator: ", ")
            t += "; QEMU tried to reconnect \(count(nbd.reconnectAttempts, "time")), \(nbd.reconnectsSucceeded) succeeded" + (why.isEmpty ? "" : " (failed: \(why))")
        }
        if nbd.failedRequestsTotal > 0 {
            let reasons = Set(nbd.failedRequests.compactMap(\.reason)).sorted()
            t += "; the NBD client failed \(count(nbd.failedRequestsTotal, "request"))" + (reasons.isEmpty ? "" : " (\(reasons.joined(separator: "; ")))")
        }
        return t + "."
    }

    /// Where a filesystem's damage is, as its messages name it: "block-bitmap of group 0
    /// (checksum), inode 17 (checksum)".
    static func corruptionWhere(_ fs: FilesystemReport) -> String {
        let parts = fs.corruption.prefix(6).map { c -> String in
            var t = c.structure.rawValue
            if !c.groups.isEmpty { t += " of group " + c.groups.prefix(3).map(String.init).joined(separator: ", ") }
            if !c.inodes.isEmpty { t += " " + c.inodes.prefix(3).map(String.init).joined(separator: ", ") }
            if !c.blocks.isEmpty { t += " at block " + c.blocks.prefix(3).map(String.init).joined(separator: ", ") }
            if c.checksum { t += " (checksum)" }
            return t
        }
        return parts.isEmpty ? "no structure named" : parts.joined(separator: ", ") + (fs.corruption.count > 6 ? ", …" : "")
    }
}

extension ExplainStory {
    /// Why BLOCK_IO_ERRORs have no traced request: the ones stamped before the trace's first
    /// event or after its last. QMP's stamp (g_get_real_time, qapi/qmp-event.c) and the log
    /// backend's (gettimeofday, trace/log.h) are the same host clock, so a small margin is
    /// enough; a trace on another clock says nothing about them.
    func outsideTraceWords(_ errors: [QMPTimeline.IOError]) -> String {
        guard let span = host?.timeSpan, span.clock == .wall else { return "" }
        let margin = 0.01
        let before = errors.filter { ($0.time ?? span.start) < span.start - margin }.count
        let after = errors.filter { ($0.time ?? span.end) > span.end + margin }.count
        guard before + after > 0 else { return "" }
        var parts: [String] = []
        if before > 0 { parts.append("\(before) came before the trace began") }
        if after > 0 { parts.append("\(after) after it ended") }
        let all = before + after == errors.count
        return "; \(all && errors.count > 1 ? "all " : "")\(parts.joined(separator: " and ")), so the trace has no request for \(before + after == 1 ? "it" : "them")"
    }
}
