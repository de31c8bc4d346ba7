import Foundation
import Testing
@testable import KVMScope

/// Sums and products of traced values stay true at the edges of their types: sector ranges
/// reaching 2^64, nsectors no QEMU request has, retry waits summed over time jumps.
@Suite struct TraceArithmeticEdgeTests {
    static let vdev = "0x564184f66810", vq = "0x7fd4ad2cc010", req = "0x55d0c8a1c000"

    static func request(_ t: String, op: String = "write", sector: String, nsectors: String, ret: Int, status: Int) -> String {
        """
        1@\(t)00:virtqueue_pop vq \(vq) elem \(req) in_num 1 out_num 2
        1@\(t)10:virtio_blk_handle_\(op) vdev \(vdev) req \(req) sector \(sector) nsectors \(nsectors)
        1@\(t)20:virtio_blk_rw_complete vdev \(vdev) req \(req) ret \(ret)
        1@\(t)30:virtio_blk_req_complete vdev \(vdev) req \(req) status \(status)
        1@\(t)40:virtqueue_fill vq \(vq) elem \(req) len 1 idx 0

        """
    }

    @Test func sectorEndDoesNotWrap() throws {
        let text = Self.request("1795363592.7540", sector: "18446744073709551612", nsectors: "8", ret: -5, status: 1)
        let r = try TraceSession.analyse(MemoryByteSource(text, name: "t.log"), catalog: .bundled)
        let g = try #require(r.failureGroups.first)
        #expect(g.sectorMin == 18_446_744_073_709_551_612)
        #expect(g.sectorEnd == UInt64.max)          // it wrapped to 4 before
    }

    @Test func impossibleSectorCountsAreUnknownNotWrapped() throws {
        // 2^60 + 1 sectors: * 512 wrapped to 512 bytes read.
        let text = Self.request("1795363592.7540", op: "read", sector: "0", nsectors: "1152921504606846977", ret: 0, status: 0)
        let r = try TraceSession.analyse(MemoryByteSource(text, name: "t.log"), catalog: .bundled)
        #expect(r.latency["read"]?.requests == 1)
        #expect(r.latency["read"]?.bytes == 0)
    }

    @Test func retryWaitsSummedOverTimeJumpsDoNotTrap() throws {
        // A request paused (rw_complete failed, no status) and retried, with the clock jumping
        // back to the epoch after each failure: each wait is ~2^62 ns, their sum overflowed.
        var lines = ["1@0.000001:virtqueue_pop vq \(Self.vq) elem \(Self.req) in_num 1 out_num 2",
                     "1@0.000002:virtio_blk_handle_write vdev \(Self.vdev) req \(Self.req) sector 8 nsectors 8",
                     "1@0.000003:virtio_blk_rw_complete vdev \(Self.vdev) req \(Self.req) ret -28"]
        for _ in 0..<3 {
            lines.append("1@4611686019.000000:virtio_blk_handle_write vdev \(Self.vdev) req \(Self.req) sector 8 nsectors 8")
            lines.append("1@0.000003:virtio_blk_rw_complete vdev \(Self.vdev) req \(Self.req) ret -28")
        }
        let dir = TempDir()
        let f = dir.file("jumps.log", lines.joined(separator: "\n") + "\n")
        let r = try CLIRunner.run(["trace", "--json", f], environment: ["SWIFT_BACKTRACE": "enable=no"])
        #expect(r.status == 0 || r.status == 1, "status \(r.status): \(r.stderr)")
        #expect(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) is [String: Any])
    }
}
