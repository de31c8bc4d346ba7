import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope

/// `kvmscope guest` on the real captures of guest-internal trouble and of a virtio-scsi error.
@Suite struct GuestInternalCLITests {
    typealias F = GuestFixtures

    @Test func scsiWriteEIOShowsTheDecodedCommand() throws {
        let r = try CLIRunner.run(["guest", F.lab("scsi-write-eio")])
        #expect(r.status == 1)
        #expect(r.stdout.contains("1 failed command logged, 1 distinct request:"))
        #expect(r.stdout.contains("Write(10) LBA 2048 × 8; sector 2048+8; Aborted Command / I/O process terminated"))
        #expect(r.stdout.contains("the host sees up to 6 attempts"))
        let j = try CLIRunner.run(["guest", "--json", F.lab("scsi-write-eio")])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any])
        let sda = try #require((doc["devices"] as? [[String: Any]])?.first { $0["name"] as? String == "sda" })
        let f = try #require(((sda["scsi"] as? [String: Any])?["failedRequests"] as? [[String: Any]])?.first)
        #expect(f["blockErrorSector"] as? Int == 2048)
        #expect((f["cdb"] as? [String: Any])?["lba"] as? Int == 2048)
        #expect(f["ascq"] as? Int == 6)
        #expect(f["silentRetriesUpTo"] as? Int == 5)
    }

    @Test func ext4CorruptShowsWhereTheCorruptionIs() throws {
        let r = try CLIRunner.run(["guest", F.lab("ext4-corrupt")])
        #expect(r.status == 1)
        #expect(r.stdout.contains("3 corruption reports"))
        #expect(r.stdout.contains("block-bitmap checksum mismatch (ext4_validate_block_bitmap): 1×; group 0; seen by dd"))
        #expect(r.stdout.contains("inode checksum mismatch (ext4_lookup): 2×; inode 17; seen by ls, cat"))
        #expect(r.stdout.contains("e2fsck -fn /dev/vda"))
    }

    @Test func hungTasksAndTimeoutsAreReported() throws {
        let r = try CLIRunner.run(["guest", F.fixture("guest-internal-6.1.log")])
        #expect(r.status == 1)
        #expect(r.stdout.contains("Hung tasks: 2 reports of a task blocked in D state (longest: more than 241 s)"))
        #expect(r.stdout.contains("jbd2/vda-8 (pid 123) blocked for more than 120 s"))
        #expect(r.stdout.contains("scsi-abort 1, scsi-command-timeout 1, scsi-device-offlined 1, scsi-device-reset 1; waited up to 180 s"))
        #expect(r.stdout.contains("nvme0 — NVMe controller"))
        #expect(r.stdout.contains("in-memory damaged (xfs_trans_cancel): 1×"))
        #expect(r.stdout.contains("btrfs error counters of /dev/vdc"))
    }
}
