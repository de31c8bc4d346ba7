import Foundation

/// One kind of block request as query-blockstats counts it (qapi/block-core.json `BlockDeviceStats`:
/// `rd_*`, `wr_*`, `flush_*`, `unmap_*`, `zone_append_*`). The raw value is the `operation` label.
public enum BlockOperationKind: String, CaseIterable, Sendable {
    case read, write, flush, unmap
    case zoneAppend = "zone_append"

    /// The prefix QEMU's field names use for this kind.
    var qemuPrefix: String {
        switch self {
        case .read: return "rd"
        case .write: return "wr"
        case .flush: return "flush"
        case .unmap: return "unmap"
        case .zoneAppend: return "zone_append"
        }
    }
}

/// The cumulative counters of one operation kind on one disk, as QEMU keeps them since the
/// BlockBackend was created (block/accounting.c): exported as they are, never differenced.
public struct OperationCounters: Equatable, Sendable {
    public var operations: Int64?
    public var bytes: Int64?
    public var totalTimeNs: Int64?
    public var failed: Int64?
    public var invalid: Int64?
    /// QEMU's latency histogram of this kind, when `block-latency-histogram-set` turned it on.
    public var histogram: LatencyHistogram?
}

/// `rd_latency_histogram` & co. of query-blockstats (qapi/block-core.json
/// `BlockLatencyHistogramInfo`): `boundaries` in ns, strictly increasing; `bins` one more than
/// them, bin i counting requests of latency in [boundaries[i-1], boundaries[i]) (the last
/// open-ended). QEMU counts every request there, completed or failed (block/accounting.c
/// block_account_one_io), as total_time_ns does when account_failed is on.
public struct LatencyHistogram: Equatable, Sendable {
    public var boundariesNs: [Int64]
    public var bins: [Int64]
    /// More boundaries than any sensible layout: bounds what a monitor can make watch export.
    public static let maxBoundaries = 64
}

/// One disk's entry of query-blockstats, named as the `device` label (`DiskNaming`).
public struct DiskBlockStats: Equatable, Sendable {
    public let device: String
    public let nodeName: String?
    /// The attached device's QOM path (`/machine/peripheral-anon/device[0]/virtio-backend`):
    /// the `id` block-latency-histogram-set takes.
    public var qdev: String? = nil
    /// query-blockstats `account_failed`: failed requests are in total_time_ns too.
    public var accountFailed: Bool? = nil
    /// Only the kinds this QEMU reports (zone_append is QEMU ≥ 8.1, flush has no bytes).
    public var operations: [BlockOperationKind: OperationCounters]
}

/// A VM's state from query-status and query-block, and its disks' counters from query-blockstats.
public struct VMPollResult: Equatable, Sendable {
    public var running: Bool
    /// QEMU's RunState (`running`, `paused`, `io-error`, `shutdown`, `prelaunch`, …).
    public var status: String
    public var disks: [DiskBlockStats]
    /// device → `ok`, `failed` or `nospace` (query-block `io-status`: only disks whose device
    /// model keeps one, which QEMU enables for werror/rerror other than report).
    public var ioStatus: [String: String]
    /// Entries beyond `BlockStatsParser.maxDisks`, or with values out of range: not exported.
    public var skippedEntries: Int
}

/// Turns query-blockstats/query-block/query-status replies into `VMPollResult`, checking every
/// value at this boundary: a counter must be an integer in 0...Int64.max (QEMU's are uint64
/// but no real one reaches 2^63), anything else is left out and counted.
public enum BlockStatsParser {
    /// Disks per VM that are exported; the rest are counted. Bounds the label cardinality a
    /// misbehaving or hostile monitor can cause.
    public static let maxDisks = 256
    /// Longest device name kept as a label value.
    public static let maxNameBytes = 256

    /// The `device` label of a disk: the BlockBackend name (`-drive id=`) that BLOCK_IO_ERROR's
    /// `device` also carries, else the attached device's id or QOM path (`qdev`, how -blockdev
    /// disks appear: their BlockBackend is anonymous).
    public static func diskName(device: String?, qdev: String?) -> String? {
        if let d = device, !d.isEmpty { return clip(d) }
        if let q = qdev, !q.isEmpty { return clip(q) }
        return nil
    }

    static func clip(_ s: String) -> String {
        s.utf8.count <= maxNameBytes ? s : String(decoding: s.utf8.prefix(maxNameBytes), as: UTF8.self)
    }

    /// A JSON number that is an integer in 0...Int64.max, else nil. JSONSerialization gives
    /// NSNumber (integer storage for integer text); `true`/`false` come as its Boolean subclass
    /// and are refused (`is Bool` cannot tell: corelibs-foundation bridges NSNumber 0 and 1 to Bool).
    static func counter(_ value: Any?) -> Int64? {
        guard let n = value as? NSNumber, !String(describing: type(of: n)).contains("Boolean") else { return nil }
        switch String(cString: n.objCType) {
        case "q", "l", "i", "s", "c": let i = n.int64Value; return i >= 0 ? i : nil
        case "Q", "L", "I", "S", "C": let u = n.uint64Value; return u <= UInt64(Int64.max) ? Int64(u) : nil
        default:
            let d = n.doubleValue
            guard d.isFinite, d >= 0, d == d.rounded(.towardZero) else { return nil }
            return Int64(exactly: d)
        }
    }

    public static func parseStatus(_ reply: Any) -> (running: Bool, status: String)? {
        guard let o = reply as? [String: Any], let running = o["running"] as? Bool, let status = o["status"] as? String,
              !status.isEmpty, status.utf8.count <= 64 else { return nil }
        return (running, status)
    }

    /// query-block: device → io-status, and the names a BLOCK_IO_ERROR may use instead of
    /// `device` (node-name of the inserted medium, qdev) → the device label.
    public static func parseBlock(_ reply: Any) -> (ioStatus: [String: String], aliases: [String: String]) {
        var status: [String: String] = [:], aliases: [String: String] = [:]
        for entry in (reply as? [Any] ?? []).prefix(maxDisks) {
            guard let o = entry as? [String: Any],
                  let name = diskName(device: o["device"] as? String, qdev: o["qdev"] as? String) else { continue }
            if let s = o["io-status"] as? String, ["ok", "failed", "nospace"].contains(s) { status[name] = s }
            if let inserted = o["inserted"] as? [String: Any], let node = inserted["node-name"] as? String, !node.isEmpty {
                aliases[clip(node)] = name
            }
            if let q = o["qdev"] as? String, !q.isEmpty { aliases[clip(q)] = name }
        }
        return (status, aliases)
    }

    /// A `BlockLatencyHistogramInfo`, or nil when absent or not one: boundaries strictly
    /// increasing (QEMU refuses others: block_latency_histogram_set), one bin more, every value
    /// a counter, at most `LatencyHistogram.maxBoundaries`. An empty one (set without
    /// boundaries) is none.
    static func histogram(_ value: Any?) -> LatencyHistogram? {
        guard let o = value as? [String: Any], let b = o["boundaries"] as? [Any], let n = o["bins"] as? [Any],
              !b.isEmpty, b.count <= LatencyHistogram.maxBoundaries, n.count == b.count + 1 else { return nil }
        let boundaries = b.compactMap(counter), bins = n.compactMap(counter)
        guard boundaries.count == b.count, bins.count == n.count,
              zip(boundaries, boundaries.dropFirst()).allSatisfy({ $0 < $1 }), boundaries[0] > 0 else { return nil }
        return LatencyHistogram(boundariesNs: boundaries, bins: bins)
    }

    /// query-blockstats: one `DiskBlockStats` per named entry, at most `maxDisks`.
    public static func parseBlockStats(_ reply: Any) -> (disks: [DiskBlockStats], skipped: Int) {
        guard let list = reply as? [Any] else { return ([], 1) }
        var disks: [DiskBlockStats] = [], skipped = 0, seen = Set<String>()
        for entry in list {
            guard let o = entry as? [String: Any], let stats = o["stats"] as? [String: Any],
                  let name = diskName(device: o["device"] as? String, qdev: o["qdev"] as? String) else { skipped += 1; continue }
            guard disks.count < maxDisks, seen.insert(name).inserted else { skipped += 1; continue }
            var ops: [BlockOperationKind: OperationCounters] = [:]
            for kind in BlockOperationKind.allCases {
                let p = kind.qemuPrefix
                let c = OperationCounters(
                    operations: counter(stats["\(p)_operations"]), bytes: counter(stats["\(p)_bytes"]),
                    totalTimeNs: counter(stats["\(p)_total_time_ns"]),
                    failed: counter(stats["failed_\(p)_operations"]), invalid: counter(stats["invalid_\(p)_operations"]),
                    histogram: histogram(stats["\(p)_latency_histogram"]))
                if c != OperationCounters() { ops[kind] = c }
            }
            var disk = DiskBlockStats(device: name, nodeName: o["node-name"] as? String, operations: ops)
            disk.qdev = (o["qdev"] as? String).flatMap { $0.isEmpty ? nil : clip($0) }
            disk.accountFailed = stats["account_failed"] as? Bool
            disks.append(disk)
        }
        return (disks, skipped)
    }
}
