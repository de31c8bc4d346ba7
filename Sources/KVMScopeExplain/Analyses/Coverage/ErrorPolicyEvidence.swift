import KVMScopeQMP
import KVMScopeTrace
import KVMScopeHost

/// Which `werror`/`rerror` policy the evidence allows for a drive. Each observed error narrows
/// the set (QEMU block/block-backend.c blk_get_error_action(): `enospc` stops on ENOSPC and
/// reports every other error; blockdev.c parse_block_error_action() takes `enospc` for writes
/// only; the defaults are werror=enospc, rerror=report), so nothing is claimed that an
/// observation does not imply.
public struct ErrorPolicyEvidence: Sendable, Encodable, Equatable {
    public enum Policy: String, Sendable, Encodable, CaseIterable, Comparable {
        case report, enospc, stop, ignore
        /// In the order sentences name them: the common ones first.
        public static func < (a: Policy, b: Policy) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    /// The drive: the QMP `device` (or node name), or the trace's virtio device.
    public var device: String
    /// `write` (werror) or `read` (rerror).
    public var operation: String
    /// The policies every observation is consistent with; empty when they contradict each
    /// other (two drives, or inputs from different runs).
    public var possible: [Policy]
    /// What narrowed it down, one phrase per kind of observation.
    public var from: [String]
    /// True when QEMU's command line sets the option, false when it leaves QEMU's default,
    /// nil without a command line.
    @NullEncoded public var statedOnCommandLine: Bool? = nil

    /// `werror=report`, `werror=report or werror=enospc (the default)`, …
    public var words: String {
        let option = operation == "read" ? "rerror" : "werror"
        guard !possible.isEmpty else { return "\(option) unclear (the observations contradict each other)" }
        return possible.map { p in
            let isDefault = (option == "werror" && p == .enospc) || (option == "rerror" && p == .report)
            return "\(option)=\(p.rawValue)" + (isDefault && statedOnCommandLine != true ? " (the default)" : "")
        }.joined(separator: " or ")
    }
}

enum ErrorPolicyInference {
    typealias Policy = ErrorPolicyEvidence.Policy

    /// What one error with this outcome allows.
    static func allowed(isRead: Bool, enospc: Bool, outcome: QMPErrorAction) -> Set<Policy> {
        switch outcome {
        case .ignore: return [.ignore]
        case .report: return isRead ? [.report] : (enospc ? [.report] : [.report, .enospc])
        case .stop: return isRead ? [.stop] : (enospc ? [.stop, .enospc] : [.stop])
        case .unknown: return Set(Policy.allCases)
        }
    }

    static func infer(host: TraceReport?, qmp: QMPTimeline?, disks: QEMUDiskMap? = nil) -> [ErrorPolicyEvidence] {
        struct Key: Hashable { var device: String; var read: Bool }
        var sets: [Key: Set<Policy>] = [:]
        var from: [Key: [String]] = [:]
        var order: [Key] = []
        var stated: [Key: Bool] = [:]
        func observe(_ k: Key, _ allowed: Set<Policy>, _ why: String) {
            if sets[k] == nil { order.append(k); sets[k] = Set(Policy.allCases) }
            sets[k]!.formIntersection(allowed)
            if !(from[k]?.contains(why) ?? false) { from[k, default: []].append(why) }
        }
        for e in qmp?.ioErrors ?? [] {
            guard e.action != .unknown else { continue }
            let read = e.operation == .read
            let enospc = e.nospace || e.errnoName == "ENOSPC"
            observe(Key(device: e.device.isEmpty ? (e.nodeName ?? "?") : e.device, read: read),
                    allowed(isRead: read, enospc: enospc, outcome: e.action),
                    "QMP BLOCK_IO_ERROR action \(e.action.rawValue)\(enospc ? " (ENOSPC)" : "")")
        }
        // QMP names the drive and reports every storage error; the trace's view of the same
        // errors would list the drive a second time under its virtio pointer.
        let qmpSaysIt = !(qmp?.ioErrors.isEmpty ?? true)
        for f in host?.failures ?? [] where !qmpSaysIt && (f.cause == .backendError || f.cause == .pausedRetried) {
            guard f.operation == .read || f.operation == .write else { continue }
            let read = f.operation == .read
            let enospc = f.errno == 28
            let outcome: QMPErrorAction
            let why: String
            if f.cause == .pausedRetried { outcome = .stop; why = "the trace shows the VM paused and the request retried" }
            else if f.guestStatus == "OK" { outcome = .ignore; why = "the trace shows the guest told OK after a storage error" }
            else if f.guestStatus == "IOERR" { outcome = .report; why = "the trace shows the error passed to the guest" }
            else { continue }
            observe(Key(device: f.device, read: read), allowed(isRead: read, enospc: enospc, outcome: outcome),
                    why + (enospc ? " (ENOSPC)" : ""))
        }
        // The command line says it outright (or leaves QEMU's default), for the drives the other
        // inputs name, or for the only drive.
        if let disks {
            let named = order.map(\.device)
            for k in order.isEmpty ? [] : order {
                guard let d = disks.disk(named: k.device) ?? (named.count <= 2 ? disks.disk(named: nil) : nil) else { continue }
                let (value, isDefault) = d.policy(read: k.read)
                guard let p = Policy(rawValue: value) else { continue }
                let option = k.read ? "rerror" : "werror"
                stated[k] = !isDefault
                observe(k, [p], isDefault ? "QEMU command line: no \(option) on drive \(d.id ?? d.nodeName ?? "?"), so QEMU's default \(value)"
                                          : "QEMU command line: \(option)=\(value) on drive \(d.id ?? d.nodeName ?? "?")")
            }
        }
        return order.map { k in
            ErrorPolicyEvidence(device: k.device, operation: k.read ? "read" : "write",
                                possible: sets[k]!.sorted(), from: from[k] ?? [], statedOnCommandLine: stated[k])
        }
    }
}
