import Foundation
import Testing
@testable import KVMScope

/// Sectors are whatever a trace or a guest log printed (uint64_t / sector_t): a request or an
/// error at the top of that range must be correlated, not overflow `sector + sectors`.
@Suite struct SectorEdgeTests {
    @Test func correlatorTakesSectorsAtTheTopOfUInt64() {
        let guest = [GuestHostCorrelator.GuestError(device: "vda", sector: .max - 1, operation: .write, uptime: 5, line: 1),
                     GuestHostCorrelator.GuestError(device: "vda", sector: .max, operation: .write, uptime: 6, line: 2)]
        let host = [GuestHostCorrelator.HostFailure(device: "0x1", sector: .max - 3, sectors: 8, operation: .write, time: 100),
                    GuestHostCorrelator.HostFailure(device: "0x1", sector: .max, sectors: nil, operation: .write, time: 101)]
        let r = GuestHostCorrelator.correlate(guest: guest, host: host)
        // [max-3, max) covers max-1; nothing covers max itself (it is no sector of any range).
        #expect(r.candidateCounts.first == 1)
        #expect(r.pairs.contains { $0.guest == 0 && $0.host == 0 })
    }

    /// The same through the CLI: explain trapped (SIGILL) on `s + sectors` before.
    @Test func explainWithASectorNearTwoToTheSixtyFour() throws {
        let dir = TempDir()
        let trace = dir.file("trace.log", """
        1@1795363592.754000:virtqueue_pop vq 0x7fd4ad2cc010 elem 0x55d0c8a1c000 in_num 1 out_num 2
        1@1795363592.754010:virtio_blk_handle_write vdev 0x564184f66810 req 0x55d0c8a1c000 sector 18446744073709551612 nsectors 8
        1@1795363592.754100:virtio_blk_rw_complete vdev 0x564184f66810 req 0x55d0c8a1c000 ret -5
        1@1795363592.754102:virtio_blk_req_complete vdev 0x564184f66810 req 0x55d0c8a1c000 status 1
        1@1795363592.754104:virtqueue_fill vq 0x7fd4ad2cc010 elem 0x55d0c8a1c000 len 1 idx 0

        """)
        let guest = dir.file("console.log", "[   12.345678] I/O error, dev vda, sector 18446744073709551614 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 0\n")
        let r = try CLIRunner.run(["explain", "--json", "--guest", guest, "--trace", trace], environment: ["SWIFT_BACKTRACE": "enable=no"])
        #expect(r.status == 1, "\(r.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect((o["matches"] as? [Any])?.count == 1)
    }

    @Test func explainClockNeverTraps() {
        for t in [9.3e12, -9.3e12, Double.infinity, -Double.infinity, Double.nan, 1e300, 9.223372036854776e12] {
            #expect(!ExplainStory.clock(t).isEmpty)
        }
        #expect(ExplainStory.clock(1795363592.754736) == "16:06:32.754736")
    }
}
