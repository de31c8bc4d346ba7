import Foundation
import KVMScopeCore
import KVMScopeTrace

/// Synthetic traces for what the lab cannot produce, written in the log backend's
/// `TID@SEC.USEC:name args` form with QEMU's own format strings.
public struct SyntheticTrace {
    public var lines: [String] = []
    public var micros: Int64 = 1_000_000_000   // seconds since epoch × 1e6
    public let tid = 77

    public init() {}

    public mutating func at(_ deltaMicros: Int64 = 10, _ event: String) {
        micros += deltaMicros
        lines.append(String(format: "%d@%lld.%06lld:", tid, micros / 1_000_000, micros % 1_000_000) + event)
    }

    /// A complete request the way current QEMU traces it.
    public mutating func request(vq: String, vdev: String, elem: String, write: Bool, sector: Int, sectors: Int,
                          ret: Int = 0, status: Int = 0) {
        at(10, "virtqueue_pop vq \(vq) elem \(elem) in_num \(write ? 1 : 2) out_num \(write ? 2 : 1)")
        at(10, "virtio_blk_handle_\(write ? "write" : "read") vdev \(vdev) req \(elem) sector \(sector) nsectors \(sectors)")
        at(100, "virtio_blk_rw_complete vdev \(vdev) req \(elem) ret \(ret)")
        at(2, "virtio_blk_req_complete vdev \(vdev) req \(elem) status \(status)")
        at(2, "virtqueue_fill vq \(vq) elem \(elem) len 1 idx 0")
    }

    public var text: String { lines.joined(separator: "\n") + "\n" }

    public func report(_ options: VirtioBlkRequestTracker.Options = .init(),
                notices: ((VirtioBlkRequestTracker.Notice) -> Void)? = nil) throws -> TraceReport {
        try TraceSession.analyse(MemoryByteSource(text, name: "synthetic"), catalog: .bundled,
                                 options: options, onNotice: notices)
    }
}
