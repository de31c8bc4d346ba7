import Foundation
import KVMScopeCore
import KVMScopeQMP

/// One line of `watch`'s event log (docs/json.md, ```keys watchEvent```): a QMP event of a
/// watched VM (`type: "event"`), a change in watch's connection to it (`type: "connection"`:
/// `event` is `connected`, `lost` or `removed`), or an `--auto-record` capture of it (`type:
/// "capture"`: `event` is `started`, `ended`, `failed` or `skipped`, `capture` its directory), or
/// a host kernel storage error (`--host-kernel`, `type: "host"`: `event` is the kind label of
/// kvmscope_host_block_errors_total, `domain` and `qmp` null: it is the host's, not a VM's), or
/// a summary of the host's packet drops (`--drops`, `type: "drops"`: per reason and `location`,
/// the `count` of the last interval).
/// Every key is always present, null when it does not apply.
public struct WatchEventRecord: Encodable, Sendable {
    public enum Kind: String, Encodable, Sendable { case event, connection, capture, host, drops }
    public var type: Kind
    /// Host wall clock (seconds since the epoch): QEMU's timestamp for events, watch's clock otherwise.
    public var time: Double
    /// Null on host records.
    public var domain: String?
    public var qmp: String?
    public var event: String
    public var data: JSONValue?
    public var device: String?
    public var node: String?
    public var operation: String?
    public var action: String?
    public var errno: String?
    public var errnoNumber: Int?
    public var errnoMessage: String?
    public var nospace: Bool?
    public var reason: String?
    public var explanation: String?
    public var message: String?
    public var qemuVersion: String?
    /// The capture directory of a `capture` record.
    public var capture: String?
    /// The failed sector of a host record (512-byte units, as the kernel prints it).
    public var sector: UInt64?
    /// A drops record's kernel function and the packets it dropped in the interval.
    public var location: String?
    public var count: Int64?

    public init(type: Kind, time: Double, domain: String?, qmp: String?, event: String) {
        self.type = type; self.time = time; self.domain = domain; self.qmp = qmp; self.event = event
    }

    /// The record of one QMP event; `device` is the disk label a BLOCK_IO_ERROR was counted under.
    public init(event: QMPEvent, domain: String, qmp: String, device: String) {
        self.init(type: .event, time: event.time ?? Date().timeIntervalSince1970, domain: domain, qmp: qmp, event: event.name)
        data = event.data
        if let e = event.blockIOError {
            let entry = BlockIOErrorExplanation.errno(of: e)
            self.device = device; node = e.nodeName; operation = e.operation.rawValue; action = e.action.rawValue
            errno = entry?.name; errnoNumber = entry.map { Int($0.number) }; errnoMessage = entry?.message
            nospace = e.nospace; reason = e.reason
            explanation = BlockIOErrorExplanation.text(e, device: device)
        } else {
            reason = event.data?["reason"]?.stringValue
        }
    }

    enum CodingKeys: String, CodingKey {
        case schemaVersion, type, time, domain, qmp, event, data, device, node, operation, action, errno, errnoNumber,
             errnoMessage, nospace, reason, explanation, message, qemuVersion, capture, sector, location, count
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(JSONContract.schemaVersion, forKey: .schemaVersion)
        try c.encode(type, forKey: .type)
        try c.encode(time, forKey: .time)
        try c.encode(event, forKey: .event)
        // `data` is QEMU's event data as QEMU sent it: a map (its keys are QEMU's, kebab-case).
        if let data { try c.encode(data, forKey: .data) } else { try c.encodeNil(forKey: .data) }
        func put<T: Encodable>(_ v: T?, _ k: CodingKeys) throws { if let v { try c.encode(v, forKey: k) } else { try c.encodeNil(forKey: k) } }
        try put(domain, .domain); try put(qmp, .qmp)
        try put(device, .device); try put(node, .node); try put(operation, .operation); try put(action, .action)
        try put(errno, .errno); try put(errnoNumber, .errnoNumber); try put(errnoMessage, .errnoMessage)
        try put(nospace, .nospace); try put(reason, .reason); try put(explanation, .explanation)
        try put(message, .message); try put(qemuVersion, .qemuVersion); try put(capture, .capture); try put(sector, .sector)
        try put(location, .location); try put(count, .count)
    }

    /// One JSON Line (no newline).
    public func jsonLine() -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? e.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// What a BLOCK_IO_ERROR, alone, says: which layer failed and what the guest saw, and what it
/// cannot say. QEMU sends it when a request of a device's BlockBackend fails in the block layer
/// (block/block-backend.c `blk_error_action` → `send_qmp_error_event`), with the errno QEMU got
/// (`reason` is strerror of it) and the action the drive's werror/rerror chose.
public enum BlockIOErrorExplanation {
    public static func errno(of e: BlockIOError) -> ErrnoEntry? {
        if let reason = e.reason, let entry = ErrnoTable.standard.entry(message: reason) { return entry }
        // `nospace` is QEMU's own `error == ENOSPC` (send_qmp_error_event).
        return e.nospace ? ErrnoTable.standard.entry(name: "ENOSPC") : nil
    }

    public static func text(_ e: BlockIOError, device: String) -> String {
        let entry = errno(of: e)
        let what = entry.map { "\($0.name) (\($0.message))" } ?? (e.reason.map { "an error QEMU described as \"\($0)\"" } ?? "an error")
        let op: String
        switch e.operation {
        case .read: op = "a read"
        case .write: op = "a write or flush (QEMU reports both as write)"
        case .unknown: op = "a request"
        }
        let action: String
        switch e.action {
        case .report: action = "passed it to the guest (werror/rerror=report): the guest saw the request fail"
        case .stop: action = "paused the VM (werror/rerror=stop or enospc): the guest has not seen the error, and the request is retried when the VM is resumed (`cont`)"
        case .ignore: action = "ignored it (werror/rerror=ignore): the guest was told the request succeeded, though it did not"
        case .unknown: action = "took an action this version of kvmscope does not know"
        }
        var s = "\(device.isEmpty ? "a disk" : device): QEMU's block layer got \(what) on \(op) and \(action). "
        if entry?.name == "ENOSPC" {
            s += "ENOSPC means the storage under the disk ran out of space or quota (host filesystem, thin pool, network storage). "
        }
        s += "From this event alone the failure lies in QEMU's block layer or the storage beneath it (image format, image file, host filesystem or disk, network storage), not in the guest; which of those layers failed, which guest request and sector it was, and whether the guest retried are not known: `kvmscope record` then `kvmscope explain` on the capture with the guest's kernel log narrow it."
        return s
    }
}
