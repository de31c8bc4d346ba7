import Foundation
import KVMScopeLibvirt

/// libvirt's statistics of one domain as the `VMPollResult` a QMP poll gives, so one
/// `VMSeriesWriter` serves both:
/// - `state.state`/`state.reason` → running and QEMU's run-state name (`LibvirtDomainState`);
/// - `block.N.rd.reqs/bytes/times`, `wr.*`, `fl.reqs/times` → the read, write and flush
///   operations, bytes and total time of disk `block.N.name` (the target, `vda`);
/// - no failed or invalid counts (libvirt has none): they stay nil, and their series are
///   absent, never 0 (`withPassthrough` adds them from QEMU's query-blockstats);
/// - io-status from virDomainGetDiskErrors (`withDiskErrors`), which lists only the disks that
///   are not ok; without its answer there is none (absent, not a guessed `ok`).
enum LibvirtPollResult {
    static func make(_ s: LibvirtDomainStats, previousDisks: [DiskBlockStats]) -> VMPollResult {
        let state = LibvirtDomainState.runState(state: s.state, reason: s.reason)
        // Without block.count libvirt could not ask QEMU this time (NOWAIT and a busy domain):
        // the disks are as they were, not gone.
        let disks = s.disks.map { $0.map(disk) } ?? previousDisks
        return VMPollResult(running: state.running, status: state.status, disks: disks, ioStatus: [:], skippedEntries: 0)
    }

    static func disk(_ d: LibvirtDiskStats) -> DiskBlockStats {
        var ops: [BlockOperationKind: OperationCounters] = [:]
        let read = OperationCounters(operations: d.readRequests, bytes: d.readBytes, totalTimeNs: d.readTimeNs)
        let write = OperationCounters(operations: d.writeRequests, bytes: d.writeBytes, totalTimeNs: d.writeTimeNs)
        let flush = OperationCounters(operations: d.flushRequests, totalTimeNs: d.flushTimeNs)
        for (kind, c) in [(BlockOperationKind.read, read), (.write, write), (.flush, flush)] where c != OperationCounters() { ops[kind] = c }
        return DiskBlockStats(device: BlockStatsParser.clip(d.name), nodeName: nil, operations: ops)
    }

    /// Every disk of the poll gets its io-status: `failed`/`nospace` as libvirt listed it, else
    /// `ok`. A disk libvirt names that the statistics do not list is added to io-status only.
    static func withDiskErrors(_ r: VMPollResult, errors: [String: String]) -> VMPollResult {
        var out = r
        for d in r.disks { out.ioStatus[d.device] = "ok" }
        for (target, status) in errors { out.ioStatus[BlockStatsParser.clip(target)] = status }
        return out
    }

    /// `--libvirt-passthrough`: QEMU's own query-blockstats (through libvirt, which taints the
    /// domain) adds the failed and invalid counts to the disk of the same name — QEMU's names
    /// mapped to targets by `aliases` — and a disk libvirt does not list (one added outside the
    /// domain XML, `<qemu:commandline>`) as QEMU reports it, under QEMU's name.
    static func withPassthrough(_ r: VMPollResult, blockstats: [DiskBlockStats], aliases: [String: String]) -> VMPollResult {
        var out = r
        for q in blockstats {
            let name = aliases[q.device] ?? q.device
            if let i = out.disks.firstIndex(where: { $0.device == name }) {
                for (kind, c) in q.operations {
                    var mine = out.disks[i].operations[kind] ?? OperationCounters()
                    mine.failed = c.failed; mine.invalid = c.invalid
                    out.disks[i].operations[kind] = mine
                }
            } else {
                out.disks.append(DiskBlockStats(device: name, nodeName: q.nodeName, operations: q.operations))
            }
        }
        return out
    }
}
