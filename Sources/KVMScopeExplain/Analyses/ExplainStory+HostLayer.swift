import Foundation
import KVMScopeTrace
import KVMScopeGuestLog
import KVMScopeHost

/// What the host's own kernel log says under QEMU's failed requests: the sentences, the
/// verdict's layer and device, the advice and the evidence lines.
extension ExplainStory {
    /// The links the host log can speak for (those outside its span say nothing).
    private var hostLinksCovered: [HostLayerLink] {
        (hostLayer?.links ?? []).filter { $0.layer != "host-log-does-not-cover" && $0.layer != "host-log-rate-limited" }
    }

    /// The layer (and host device) every covered link agrees on; nil when they differ or
    /// the host log covers none of the failures.
    func hostLayerVerdict() -> (layer: String, device: String?)? {
        let links = hostLinksCovered
        guard let first = links.first, links.allSatisfy({ $0.layer == first.layer }) else { return nil }
        let devices = Set(links.compactMap(\.hostDevice))
        return (first.layer, devices.count == 1 ? devices.first : nil)
    }

    func hostLayerSentences() -> [String] {
        guard let hk = hostKernel, let account = hostLayer else { return [] }
        var out: [String] = []
        let links = account.links
        // Host messages tied to QEMU's failures, one sentence per host device and layer.
        struct Key: Hashable { let layer: String; let device: String? }
        var groups: [Key: [HostLayerLink]] = [:]
        var order: [Key] = []
        for l in links where l.hostFinding != nil {
            let k = Key(layer: l.layer, device: l.hostDevice)
            if groups[k] == nil { order.append(k) }
            groups[k, default: []].append(l)
        }
        for k in order {
            let g = groups[k]!
            let dev = k.device ?? "a host device"
            let ops = operationCounts(g)
            let errno = Set(g.compactMap { $0.hostErrno ?? $0.qemuErrno }).sorted().joined(separator: "/")
            // Each place once (a retried request fails at the same sector again).
            var seen = Set<UInt64>()
            let sectors = g.compactMap(\.hostSector).filter { seen.insert($0).inserted }
            let lines = g.compactMap(\.hostLine)
            let sectorText = sectors.isEmpty ? "" : " at its \(sectors.count == 1 ? "sector" : "sectors") \(list(sectors.map(String.init)))"
            let traced = g.compactMap(\.hostFinding).allSatisfy { $0 < hk.findings.count && hk.findings[$0].source == .blockTracepoint }
            let lineText = (traced ? "host block_rq_error tracepoint, \(lines.count == 1 ? "line" : "lines")" : "host kernel log \(lines.count == 1 ? "line" : "lines")")
                + " \(list(lines.map(String.init)))"
            let maxDelta = g.compactMap(\.timeDeltaSeconds).map(abs).max()
            var when = "at the same \(g.count == 1 ? "moment" : "moments") as QEMU's failed \(g.count == 1 ? "request" : "requests")"
            if let d = maxDelta { when += String(format: " (within %.0f ms", max(1, d * 1000).rounded()) + clockWords(account) + ")" }
            switch k.layer {
            case "host-block-device":
                var s = "Below QEMU, the host kernel logged \(g.count == 1 ? "the failure" : "the failures"): its block device \(dev) failed \(ops)"
                    + (errno.isEmpty ? "" : " with \(errno)") + "\(sectorText) (\(lineText)), \(when)."
                if let img = hostImages.first(where: { $0.disk == k.device }) {
                    s += " The image \(img.path) is on \(dev) (\(img.from == "this host" ? "this host, now" : img.from))."
                    let placed = g.filter { $0.samePlace != nil }
                    if !placed.isEmpty, placed.allSatisfy({ $0.samePlace == true }) {
                        s += " Its extents put the guest's \(placed.count == 1 ? "sector" : "sectors") at exactly \(placed.count == 1 ? "that place" : "those places") on \(dev): the same place as well as the same moment."
                    } else if let bad = placed.first(where: { $0.samePlace == false }) {
                        s += " But its extents put guest sector \(bad.guestSector ?? 0) at \(dev) sector \(bad.expectedHostSector ?? 0), not \(bad.hostSector ?? 0): the host error is at the same moment, not at the image's place."
                    }
                } else if let d = hk.devices.first(where: { $0.device == k.device }), (d.noise[.filesystemMounted] ?? 0) > 0 {
                    s += " \(dev) carries a filesystem the host mounted during the log."
                }
                if let other = hostImages.first(where: { $0.disk != nil && $0.disk != k.device && !$0.below.contains { $0.hasPrefix(k.device ?? "") } }),
                   !hostImages.contains(where: { $0.disk == k.device }) {
                    s += " The image \(other.path) is on \(other.disk ?? "?") (\(other.from == "this host" ? "this host, now" : other.from)), not on \(dev): if that is the VM's host, the failing device is not under the image."
                }
                out.append(s)
            default:
                let f = g.first.flatMap { $0.hostFinding }.map { hk.findings[$0] }
                out.append("Below QEMU, the host kernel logged a \(layerWords(k.layer)) failure on \(dev) \(when) (\(lineText)"
                    + (f.map { $0.message.isEmpty ? "" : ": \"\($0.message)\"" } ?? "") + ").")
            }
        }
        let full = links.filter { $0.layer == "host-filesystem-full" && $0.hostFinding == nil }
        if !full.isEmpty {
            out.append("The host kernel log covers the moment of \(full.count == 1 ? "that failure" : "those \(full.count) failures") and logged nothing for \(full.count == 1 ? "it" : "them"): the ENOSPC came from the host filesystem holding the image, which ran out of space (a full filesystem fails the write without a kernel message).")
        }
        let silent = links.filter { $0.layer == "not-logged-by-host-kernel" }
        if !silent.isEmpty {
            let tracepoint = hk.input.blockTracepointComplete
                ? ", and its block_rq_error tracepoint, recorded throughout with nothing lost, saw no failed block request" : ""
            out.append("The host kernel log covers the moment of \(silent.count == 1 ? "that failure" : "\(silent.count) of the failures") and logged no storage error then\(tracepoint): the error did not come from a host block device the kernel reports on, but from a layer it does not log (QEMU's own block layer or an injected fault, a user-space or network backend, a FUSE file).")
        }
        let limited = links.filter { $0.layer == "host-log-rate-limited" }
        if !limited.isEmpty {
            out.append("The host kernel log covers the moment of \(limited.count == 1 ? "that failure" : "\(limited.count) of the failures") and shows no storage error for \(limited.count == 1 ? "it" : "them"), but the kernel's rate limiter dropped \(count(Int(clamping: hk.input.suppressedMessages), "message")) from it (`callbacks suppressed`): the host's error may be among them, so its silence says nothing about the layer below QEMU.")
        }
        let outside = links.filter { $0.layer == "host-log-does-not-cover" }
        if !outside.isEmpty {
            let span = account.coveredSpan.map { " (\(Self.span($0.lowerBound, $0.upperBound)) on QEMU's clock)" } ?? ""
            out.append("The host kernel log\(span) does not cover \(outside.count == 1 ? "one failure" : "\(outside.count) failures")\(account.coveredSpan == nil && account.clockBasis != "wall-clock" ? ", or its clock could not be tied to QEMU's (its stamps have no zone or are the host's uptime, and no failure appears in both)" : ""): it cannot say what happened below QEMU then.")
        }
        if account.unpairedHostFailures > 0 {
            let n = account.unpairedHostFailures, before = account.unpairedBeforeTrace, after = account.unpairedAfterTrace
            var outside: [String] = []
            if before > 0 { outside.append("\(before == n ? (n == 1 ? "it" : "all \(n)") : "\(before)") came before the trace began") }
            if after > 0 { outside.append("\(after == n ? (n == 1 ? "it" : "all \(n)") : "\(after)") \(before > 0 ? "after it ended" : "came after the trace ended")") }
            let why = before + after == n ? outside.joined(separator: " and ") + ", so the trace has no request for \(n == 1 ? "it" : "them")"
                : "other devices or other times" + (outside.isEmpty ? "" : ": " + outside.joined(separator: " and "))
            out.append("The host kernel log has \(count(n, "other storage error")) that no QEMU failure is tied to (\(why); `kvmscope host` lists \(n == 1 ? "it" : "them")).")
        }
        return out
    }

    /// QEMU itself in the host's log (killed by the OOM killer, a task of it hung): said
    /// whatever the verdict, since a killed or stalled QEMU explains a guest that froze.
    func qemuProcessSentences() -> [String] {
        guard let hk = hostKernel, let account = hostLayer else { return [] }
        return account.qemuProcessFindings.prefix(2).map { i in
            let f = hk.findings[i]
            return "The host kernel reports QEMU itself: \(f.kind == .oomKill ? "killed by the OOM killer" : "a QEMU task blocked") (host kernel log line \(f.line)\(f.message.isEmpty ? "" : ": \"\(f.message)\"")); a guest whose QEMU was killed or stalled stops without an I/O error of its own."
        }
    }

    /// Evidence lines: QEMU's failure ↔ the host kernel message under it.
    func hostLayerEvidence() -> [String] {
        guard let hk = hostKernel, let a = hostLayer else { return [] }
        return a.links.compactMap { l in
            guard let fi = l.hostFinding else { return nil }
            let f = hk.findings[fi]
            var s = "QEMU " + (l.qemuTime.map(Self.clock) ?? "") + " \(l.operation) failed" + (l.qemuErrno.map { " \($0)" } ?? "")
            if let d = l.guestDevice { s += " (guest \(d)" + (l.guestSector.map { " sector \($0)" } ?? "") + ")" }
            s += (f.source == .blockTracepoint ? "  ↔  host block_rq_error line \(f.line) " : "  ↔  host kernel line \(f.line) ") + (f.device ?? "") + (f.sector.map { " sector \($0)" } ?? "")
                + (f.operation.map { " \($0)" } ?? "") + (f.errno.map { " \($0)" } ?? "") + " [\(f.kind.label)]"
            return s
        }
    }

    /// Advice for the layer the host log points at (nil: the general advice stands).
    /// When the host log's silence was set aside because its rate limiter dropped messages.
    func hostLogRateLimitedStep() -> String? {
        guard hostLayer?.links.contains(where: { $0.layer == "host-log-rate-limited" }) == true else { return nil }
        return "The host kernel rate-limits its I/O error messages (at most 10 per 5 s, printk_ratelimited): record the next occurrence with `kvmscope record` (as root it records the host's block:block_rq_error tracepoint, which is not rate-limited, beside the log), or give `kvmscope host` the output of `perf record -e block:block_rq_error -a` + `perf script`; and run `kvmscope host` on the full log for the devices it did name."
    }

    func hostLayerStep(image: String?) -> String? {
        guard let v = hostLayerVerdict() else { return nil }
        let img = image ?? "IMAGE"
        switch v.layer {
        case "host-block-device":
            guard let d = v.device else { return nil }
            var what = "`lsblk -s /dev/\(d)` (what is under it)"
            if d.hasPrefix("loop") { what += ", `losetup -l /dev/\(d)` (its backing file, and the device under that)" }
            else if d.hasPrefix("dm-") { what += ", `dmsetup table` and `multipath -ll`" }
            else if d.hasPrefix("md") { what += ", `cat /proc/mdstat`" }
            else { what += ", `smartctl -a /dev/\(d)`" }
            return "On the host, the device that failed: \(what); `dmesg --time-format iso | grep \(d)` for its other errors; `findmnt -T \(img)` shows which filesystem holds the image (the host log does not say)."
        case "host-filesystem-full":
            return nil
        case "not-logged-by-host-kernel":
            return "The host kernel logged nothing under the failure: look at the layer that produced it — the backend's own logs (NBD/iSCSI/Ceph server, FUSE daemon) or QEMU's block layer (`blkdebug` or other filters on the drive's command line)."
        case "multipath":
            return "On the host: `multipath -ll` (the paths and their state), then the SAN or fabric side of the failed paths."
        case "thin-pool":
            return "On the host: `lvs -a` (the thin pool's data and metadata use); extend the pool or free space, then resume the VM if it is paused."
        case "md-raid":
            return "On the host: `cat /proc/mdstat` and `mdadm --detail` for the array; replace the failed member."
        case "iscsi":
            return "On the host: `iscsiadm -m session -P 3` (session state), then the target and the network path to it."
        case "nfs":
            return "On the host: the NFS server and the network to it (`nfsstat -m`, `rpcinfo -p SERVER`)."
        case "ceph":
            return "On the host: `ceph -s` and `ceph health detail` from a node with access; the network to the monitors and OSDs."
        default:
            return nil
        }
    }

    private func operationCounts(_ links: [HostLayerLink]) -> String {
        var n: [String: Int] = [:]
        var order: [String] = []
        for l in links {
            if n[l.operation] == nil { order.append(l.operation) }
            n[l.operation, default: 0] += 1
        }
        let parts = order.map { count(n[$0]!, $0) }
        return parts.count <= 1 ? parts.joined() : parts.dropLast().joined(separator: ", ") + " and " + parts.last!
    }

    private func clockWords(_ a: HostLayerAccount) -> String {
        guard let o = a.clockOffset, a.clockBasis == "wall-clock", abs(o) >= 0.001 else { return "" }
        return String(format: ", the host log's clock moved by %+.3f s", o)
    }

    private func layerWords(_ layer: String) -> String {
        switch layer {
        case "multipath": return "multipath"
        case "thin-pool": return "thin-pool"
        case "md-raid": return "RAID"
        case "iscsi": return "iSCSI"
        case "nfs": return "NFS"
        case "ceph": return "Ceph"
        case "host-filesystem": return "filesystem"
        case "host-filesystem-full": return "full-filesystem"
        default: return "storage"
        }
    }

    private func list(_ items: [String], limit: Int = 6) -> String {
        let shown = items.prefix(limit).joined(separator: ", ")
        return items.count > limit ? shown + " and \(items.count - limit) more" : shown
    }
}
