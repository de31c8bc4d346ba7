import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeHost

/// One test per host message kind: the kernel's own format string (Linux 6.1, the file named)
/// filled in, behind a printk stamp, read as a one-line host log.
@Suite struct HostKernelMessageTests {
    static func read(_ text: String) throws -> HostKernelReport {
        var reader = HostKernelLogReader()
        var analysis = HostKernelAnalysis()
        try reader.read(MemoryByteSource(Array(text.utf8), name: "test"), into: &analysis)
        return analysis.report(source: "test", input: reader.stats)
    }

    static func one(_ message: String) throws -> HostKernelFinding {
        let r = try read("[ 1234.567890] \(message)\n")
        #expect(r.findings.count == 1, "\(message): \(r.findings.map(\.kind))")
        return try #require(r.findings.first)
    }

    struct Case: CustomStringConvertible, Sendable {
        var source: String
        var message: String
        var kind: HostFindingKind
        var device: String?
        var sector: UInt64? = nil
        var errno: String? = nil
        var operation: String? = nil
        var description: String { "\(kind.rawValue): \(message)" }
    }

    static let cases: [Case] = [
        // block/blk-core.c blk_print_req_error (5.16+): "%s error, dev %s, sector %llu op 0x%x:(%s) flags 0x%x phys_seg %u prio class %u"
        Case(source: "block/blk-core.c", message: "I/O error, dev sdb, sector 2048 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2",
             kind: .blockError, device: "sdb", sector: 2048, errno: "EIO", operation: "write"),
        Case(source: "block/blk-core.c", message: "critical medium error, dev nvme0n1, sector 95243456 op 0x0:(READ) flags 0x80700 phys_seg 13 prio class 2",
             kind: .blockError, device: "nvme0n1", sector: 95243456, errno: "ENODATA", operation: "read"),
        Case(source: "block/blk-core.c", message: "I/O error, dev dm-3, sector 8 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 2",
             kind: .blockError, device: "dm-3", sector: 8, errno: "EIO"),
        Case(source: "block/blk-core.c", message: "I/O error, dev md0, sector 16 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2",
             kind: .blockError, device: "md0", sector: 16, errno: "EIO"),
        Case(source: "block/blk-core.c", message: "I/O error, dev rbd0, sector 4096 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2",
             kind: .blockError, device: "rbd0", sector: 4096, errno: "EIO"),
        Case(source: "block/blk-core.c", message: "I/O error, dev nbd0, sector 0 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2",
             kind: .blockError, device: "nbd0", sector: 0, errno: "EIO"),
        Case(source: "block/blk-core.c", message: "I/O error, dev vdb, sector 64 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2",
             kind: .blockError, device: "vdb", sector: 64, errno: "EIO"),
        Case(source: "block/blk-core.c", message: "timeout error, dev sdc, sector 100 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2",
             kind: .blockError, device: "sdc", sector: 100, errno: "ETIMEDOUT"),
        // An unsupported WRITE is a failure (only the optional operations are noise).
        Case(source: "block/blk-core.c", message: "operation not supported error, dev sdc, sector 8 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 2",
             kind: .blockError, device: "sdc", sector: 8, errno: "EOPNOTSUPP"),
        // 3.18–4.12: "blk_update_request: %s error, dev %s, sector %llu"; ≤2.6.33: "end_request: I/O error, dev %s, sector %llu"
        Case(source: "block/blk-core.c (4.12)", message: "blk_update_request: I/O error, dev sdd, sector 123456",
             kind: .blockError, device: "sdd", sector: 123456, errno: "EIO"),
        Case(source: "block/blk-core.c (2.6.32)", message: "end_request: I/O error, dev sde, sector 99",
             kind: .blockError, device: "sde", sector: 99, errno: "EIO"),
        // fs/buffer.c: "Buffer I/O error on dev %pg, logical block %llu, lost async page write"
        Case(source: "fs/buffer.c", message: "Buffer I/O error on dev dm-0, logical block 1234, lost async page write",
             kind: .bufferIOError, device: "dm-0", errno: "EIO"),
        // drivers/scsi/scsi_logging.c scsi_print_result / scsi_print_sense
        Case(source: "drivers/scsi/scsi_logging.c", message: "sd 2:0:0:0: [sdb] tag#12 FAILED Result: hostbyte=DID_NO_CONNECT driverbyte=DRIVER_OK cmd_age=0s",
             kind: .scsiResult, device: "sdb"),
        Case(source: "drivers/scsi/scsi_logging.c", message: "sd 2:0:0:0: [sdb] tag#12 Sense Key : Medium Error [current] ",
             kind: .scsiSense, device: "sdb"),
        // drivers/scsi/scsi_lib.c scsi_device_state_check: sdev_printk(KERN_ERR, sdev, "rejecting I/O to offline device\n")
        Case(source: "drivers/scsi/scsi_lib.c", message: "sd 2:0:0:0: rejecting I/O to offline device",
             kind: .scsiOffline, device: "2:0:0:0", errno: "EIO"),
        // drivers/nvme/host/core.c nvme_log_error: "%s: %s(0x%x) @ LBA %llu, %llu blocks, %s (sct 0x%x / sc 0x%x) %s%s"
        Case(source: "drivers/nvme/host/core.c", message: "nvme0n1: Read(0x2) @ LBA 2048, 8 blocks, Unrecovered Read Error (sct 0x2 / sc 0x81) DNR ",
             kind: .nvmeCommandError, device: "nvme0n1", sector: 2048, operation: "Read"),
        // drivers/nvme/host/pci.c nvme_timeout: "I/O %d QID %d timeout, aborting" / ", reset controller"
        Case(source: "drivers/nvme/host/pci.c", message: "nvme nvme0: I/O 12 QID 3 timeout, aborting", kind: .nvmeTimeout, device: "nvme0"),
        Case(source: "drivers/nvme/host/pci.c", message: "nvme nvme0: I/O 864 QID 1 timeout, reset controller", kind: .nvmeReset, device: "nvme0"),
        // nvme_timeout: "controller is down; will reset: CSTS=0x%x, PCI_STATUS=0x%hx"
        Case(source: "drivers/nvme/host/pci.c", message: "nvme nvme0: controller is down; will reset: CSTS=0x3, PCI_STATUS=0x10",
             kind: .nvmeReset, device: "nvme0"),
        // nvme_remove_dead_ctrl: "Removing after probe failure status: %d"
        Case(source: "drivers/nvme/host/pci.c", message: "nvme nvme0: Removing after probe failure status: -19",
             kind: .nvmeReset, device: "nvme0", errno: "ENODEV"),
        // drivers/ata/libata-eh.c ata_eh_link_report / ata_eh_reset
        Case(source: "drivers/ata/libata-eh.c", message: "ata1.00: exception Emask 0x0 SAct 0x0 SErr 0x0 action 0x6 frozen", kind: .ataError, device: "ata1.00"),
        Case(source: "drivers/ata/libata-eh.c", message: "ata1.00: failed command: READ FPDMA QUEUED", kind: .ataError, device: "ata1.00",
             operation: "READ FPDMA QUEUED"),
        Case(source: "drivers/ata/libata-eh.c", message: "ata1.00: error: { UNC }", kind: .ataError, device: "ata1.00", errno: "EIO"),
        Case(source: "drivers/ata/libata-eh.c", message: "ata1: hard resetting link", kind: .ataLinkReset, device: "ata1"),
        // drivers/md/dm-mpath.c fail_path: DMWARN("%s: Failing path %s.", ...); DM_MSG_PREFIX "multipath"
        Case(source: "drivers/md/dm-mpath.c", message: "device-mapper: multipath: 253:0: Failing path 8:16.", kind: .multipathFailingPath, device: "253:0"),
        // queue_if_no_path_timeout_work: DMWARN("queue_if_no_path timeout on %s, failing queued IO", ...)
        Case(source: "drivers/md/dm-mpath.c", message: "device-mapper: multipath: queue_if_no_path timeout on 253:0, failing queued IO",
             kind: .multipathQueueTimeout, device: "253:0", errno: "EIO"),
        // drivers/md/dm-thin.c notify_of_pool_mode_change: DMINFO("%s: switching pool to %s%s mode", ...)
        Case(source: "drivers/md/dm-thin.c", message: "device-mapper: thin: 253:2: switching pool to out-of-data-space (error IO) mode",
             kind: .thinPoolOutOfSpace, device: "253:2", errno: "ENOSPC"),
        // drivers/md/dm-crypt.c: DMERR_LIMIT("%pg: INTEGRITY AEAD ERROR, sector %llu", ...)
        Case(source: "drivers/md/dm-crypt.c", message: "device-mapper: crypt: dm-5: INTEGRITY AEAD ERROR, sector 4096",
             kind: .dmCryptError, device: "dm-5", sector: 4096),
        // drivers/md/raid1.c raid1_error: "md/raid1:%s: Disk failure on %pg, disabling device.\n..."
        Case(source: "drivers/md/raid1.c", message: "md/raid1:md0: Disk failure on sdb1, disabling device.", kind: .mdMemberFailed, device: "md0"),
        Case(source: "drivers/md/raid5.c", message: "md/raid:md1: Disk failure on sdc, disabling device.", kind: .mdMemberFailed, device: "md1"),
        // drivers/scsi/scsi_transport_iscsi.c iscsi_conn_error_event: iscsi_cls_conn_printk(KERN_INFO, conn, "detected conn error (%d)\n", error); class device, no driver name: leading blank
        Case(source: "drivers/scsi/scsi_transport_iscsi.c", message: " connection1:0: detected conn error (1020)", kind: .iscsiConnectionError, device: "connection1:0"),
        // drivers/scsi/scsi_transport_iscsi.c session_recovery_timedout: "session recovery timed out after %d secs"
        Case(source: "drivers/scsi/scsi_transport_iscsi.c", message: " session1: session recovery timed out after 120 secs",
             kind: .iscsiSessionRecoveryTimeout, device: "session1"),
        // net/sunrpc/clnt.c call_timeout / call_decode
        Case(source: "net/sunrpc/clnt.c", message: "nfs: server 10.0.0.5 not responding, still trying", kind: .nfsNotResponding, device: nil),
        Case(source: "net/sunrpc/clnt.c", message: "nfs: server 10.0.0.5 not responding, timed out", kind: .nfsNotResponding, device: nil, errno: "EIO"),
        Case(source: "net/sunrpc/clnt.c", message: "nfs: server 10.0.0.5 OK", kind: .nfsRecovered, device: nil),
        // net/ceph/messenger.c con_fault: pr_warn("%s%lld %s %s\n", ENTITY_NAME(con->peer_name), ceph_pr_addr(...), con->error_msg)
        Case(source: "net/ceph/messenger.c", message: "libceph: osd3 (1)10.0.0.3:6800 socket closed (con state OPEN)", kind: .cephSocketError, device: "osd3"),
        Case(source: "net/ceph/messenger.c", message: "libceph: mon0 (1)10.0.0.1:6789 socket error on write", kind: .cephSocketError, device: "mon0"),
        // fs/ext4/super.c __ext4_error: "EXT4-fs error (device %s): %s:%d: comm %s: %pV"; ext4_handle_error: "Remounting filesystem read-only"
        Case(source: "fs/ext4/super.c", message: "EXT4-fs error (device dm-2): ext4_find_entry:1615: inode #2: comm qemu-system-x86: reading directory lblock 0",
             kind: .filesystemError, device: "dm-2"),
        Case(source: "fs/ext4/super.c", message: "EXT4-fs (dm-2): Remounting filesystem read-only", kind: .filesystemReadOnly, device: "dm-2"),
        // fs/ext4/inode.c mpage_map_and_submit_extent
        Case(source: "fs/ext4/inode.c", message: "EXT4-fs (dm-2): Delayed block allocation failed for inode 12 at logical offset 100 with max blocks 2 with error 28",
             kind: .filesystemFull, device: "dm-2", errno: "ENOSPC"),
        // fs/xfs/xfs_fsops.c xfs_do_force_shutdown
        Case(source: "fs/xfs/xfs_fsops.c", message: "XFS (dm-4): Filesystem has been shut down due to log error (0x2).", kind: .filesystemShutdown, device: "dm-4"),
        // fs/btrfs/super.c btrfs_printk "BTRFS %s (device %s%s): " and __btrfs_handle_fs_error
        Case(source: "fs/btrfs/super.c", message: "BTRFS error (device sdc): bdev /dev/sdc errs: wr 1, rd 0, flush 0, corrupt 0, gen 0",
             kind: .filesystemError, device: "sdc"),
        Case(source: "fs/btrfs/super.c", message: "BTRFS: error (device sdc) in btrfs_commit_transaction:2418: errno=-5 IO failure",
             kind: .filesystemError, device: "sdc", errno: "EIO"),
        Case(source: "fs/btrfs/super.c", message: "BTRFS info (device sdc): forced readonly", kind: .filesystemReadOnly, device: "sdc"),
        Case(source: "fs/btrfs/super.c", message: "BTRFS: error (device sdc: state A) in __btrfs_free_extent:3079: errno=-28 No space left",
             kind: .filesystemFull, device: "sdc", errno: "ENOSPC"),
    ]

    @Test(arguments: cases)
    func eachKernelFormatIsRead(_ c: Case) throws {
        let f = try Self.one(c.message)
        #expect(f.kind == c.kind, "\(c.source)")
        #expect(f.device == c.device, "\(c.source)")
        if let s = c.sector { #expect(f.sector == s, "\(c.source)") }
        if let e = c.errno { #expect(f.errno == e, "\(c.source)") }
        if let o = c.operation { #expect(f.operation == o, "\(c.source)") }
        #expect(f.line == 1)
        #expect(f.time.uptimeMicroseconds == 1_234_567_890)
    }

    /// kernel/hung_task.c check_hung_task: "INFO: task %s:%d blocked for more than %ld seconds."
    /// comm may hold ':' and blanks; QEMU's own names and its vCPU threads are flagged.
    @Test func hungTasksNameTheTaskAndFlagQEMU() throws {
        let q = try Self.one("INFO: task qemu-system-x86:4242 blocked for more than 120 seconds.")
        #expect(q.kind == .hungTask && q.process == "qemu-system-x86" && q.pid == 4242 && q.isQEMU)
        let v = try Self.one("INFO: task CPU 0/KVM:4250 blocked for more than 122 seconds.")
        #expect(v.process == "CPU 0/KVM" && v.pid == 4250 && v.isQEMU)
        let k = try Self.one("INFO: task kworker/u4:2:99 blocked for more than 120 seconds.")
        #expect(k.process == "kworker/u4:2" && k.pid == 99 && !k.isQEMU)
    }

    /// mm/oom_kill.c __oom_kill_process: "%s: Killed process %d (%s) total-vm:%lukB, anon-rss:%lukB,
    /// file-rss:%lukB, shmem-rss:%lukB, UID:%u pgtables:%lukB oom_score_adj:%hd"
    @Test func oomKillsNameTheVictim() throws {
        let o = try Self.one("Out of memory: Killed process 4242 (qemu-system-x86) total-vm:4321000kB, anon-rss:2000000kB, file-rss:0kB, shmem-rss:0kB, UID:64055 pgtables:5000kB oom_score_adj:0")
        #expect(o.kind == .oomKill && o.process == "qemu-system-x86" && o.pid == 4242 && o.isQEMU)
        let c = try Self.one("Memory cgroup out of memory: Killed process 77 (qemu-kvm) total-vm:100kB, anon-rss:10kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0")
        #expect(c.kind == .oomKill && c.process == "qemu-kvm" && c.isQEMU)
        let p = try Self.one("Out of memory: Killed process 5 (postgres) total-vm:100kB, anon-rss:10kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0")
        #expect(!p.isQEMU)
    }

    /// multipathd (user space) in a syslog file: only "remaining active paths: 0" is a finding.
    @Test func multipathdLosingItsLastPath() throws {
        let r = try Self.read("""
        Dec  1 11:50:30 host multipathd[812]: mpatha: remaining active paths: 1
        Dec  1 11:50:31 host multipathd[812]: mpatha: remaining active paths: 0
        Dec  1 11:50:31 host kernel: [ 100.000001] device-mapper: multipath: 253:0: Failing path 8:32.

        """)
        #expect(r.findings.map(\.kind) == [.multipathNoPaths, .multipathFailingPath])
        #expect(r.findings.first?.device == "mpatha" && r.findings.first?.line == 2)
        #expect(r.input.notKernelLines == 2)
        // Its time is the syslog line's (it used to be unknown: the line is not the kernel's).
        let wc = try #require(r.findings.first?.time.wallClock)
        #expect(wc.month == 12 && wc.day == 1 && wc.hour == 11 && wc.minute == 50 && wc.second == 31)
    }

    /// multipathd's time in the other journal/syslog styles: short-iso, short-unix, short-full.
    @Test func multipathdTimeInEveryJournalStyle() throws {
        for line in ["2026-12-01T11:50:31+0000 host multipathd[812]: mpatha: remaining active paths: 0",
                     "1796125831.000000 host multipathd[812]: mpatha: remaining active paths: 0",
                     "Tue 2026-12-01 11:50:31 UTC host multipathd[812]: mpatha: remaining active paths: 0"] {
            let r = try Self.read(line + "\n")
            let t = try #require(r.findings.first?.time.wallClock, "\(line)")
            #expect(t.year == 2026 && t.hour == 11 && t.minute == 50 && t.second == 31, "\(line)")
        }
    }

    /// Not failures: block/genhd.c "%s: detected capacity change from %lld to %lld"; DISCARD and
    /// WRITE_ZEROES that a device lacks (mkfs tries them, block/blk-lib.c falls back); mounts.
    @Test func noiseIsCountedNeverAFailure() throws {
        let r = try Self.read("""
        [   10.000000] loop0: detected capacity change from 0 to 262144
        [   10.100000] operation not supported error, dev loop0, sector 0 op 0x3:(DISCARD) flags 0x800 phys_seg 1 prio class 2
        [   10.200000] operation not supported error, dev loop0, sector 392 op 0x9:(WRITE_ZEROES) flags 0x20000800 phys_seg 0 prio class 2
        [   10.300000] EXT4-fs (loop0): mounted filesystem 6b0e1f2a-6c1d-4b6e-9a53-686f73746673 r/w with ordered data mode. Quota mode: none.

        """)
        #expect(r.findingsTotal == 0 && !r.hasFailures)
        #expect(r.noise == [.capacityChange: 1, .unsupportedOptionalOperation: 2, .filesystemMounted: 1])
        #expect(r.input.kernelMessages == 4)
    }

    /// The same message in every time format a host log comes in.
    @Test func everyHostLogFormat() throws {
        let m = "I/O error, dev sdb, sector 2048 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2"
        for line in ["[ 1234.567890] \(m)", "[Tue Dec  1 11:50:31 2026] \(m)", "2026-12-01T11:50:31,425726+00:00 \(m)",
                     "3,1234,1234567890,-;\(m)", "Dec  1 11:50:31 host kernel: \(m)",
                     "Dec  1 11:50:31 host kernel: [ 1234.567890] \(m)", "2026-12-01T11:50:31.425726+0000 host kernel: \(m)"] {
            let r = try Self.read(line + "\n")
            #expect(r.findings.count == 1 && r.findings.first?.sector == 2048, "\(line)")
            #expect(r.input.kernelMessages == 1, "\(line)")
        }
    }

    /// Cut-off and garbled lines are skipped and counted; huge numbers never trap.
    @Test func badInputIsSkippedAndCounted() throws {
        let r = try Self.read("""
        [    1.000000] I/O error, dev sdb, sector 99999999999999999999999 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2
        [    1.000001] I/O error, dev sdb, sector 2048 op 0x1:(WRI
        [    1.000002] INFO: task qemu-system-x86:99999999999 blocked for more than 120 seconds.
        [    1.000003] Out of memory: Killed process 18446744073709551616 (x) total-vm:1kB
        [    1.000004] nvme0n1: Read(0x2) @ LBA 2048, 8 blo
        [    1.000005] BTRFS error (device sdc
        \u{0}\u{1}\u{2}\u{3}garbage\u{ff}

        """)
        #expect(r.findingsTotal == 0)
        #expect(r.input.malformedLines >= 5)
    }

    /// Every message cut off at every length, and with its bytes flipped, is read without a
    /// trap (debug builds check every index) and never yields a finding of another device.
    @Test func everyCutAndGarbledMessageIsSafe() throws {
        for c in Self.cases {
            let bytes = Array(c.message.utf8)
            for n in 0...bytes.count {
                var text = "[    1.000000] ".utf8.map { $0 } + bytes[0..<n]
                text.append(0x0A)
                text += Array("2026-12-01T11:50:31,425726+00:00 ".utf8) + bytes[0..<n] + [0x0A]
                var reader = HostKernelLogReader()
                var analysis = HostKernelAnalysis()
                try reader.read(MemoryByteSource(text, name: "cut"), into: &analysis)
                let r = analysis.report(source: "cut", input: reader.stats)
                for f in r.findings where f.device != nil && c.device != nil {
                    #expect(c.device!.hasPrefix(f.device!) || f.device!.hasPrefix(c.device!) || f.device == "?",
                            "\(c.message) cut at \(n): device \(f.device!)")
                }
            }
            var flipped = bytes
            for i in stride(from: 0, to: flipped.count, by: 3) { flipped[i] ^= 0xA5 }
            var reader = HostKernelLogReader()
            var analysis = HostKernelAnalysis()
            try reader.read(MemoryByteSource(flipped + [0x0A], name: "flipped"), into: &analysis)
        }
        // A message that is a single blank, or nothing at all after the stamp.
        _ = try Self.read("[    1.000000]  \n[    1.000000] \n[    1.000000]\n")
    }

    /// A file with no kernel message at all is not a host kernel log.
    @Test func aQMPStreamIsNotAKernelLog() throws {
        let text = try String(contentsOfFile: LabFixtures.path("write-eio", "qmp.jsonl"), encoding: .utf8)
        let r = try Self.read(text)
        #expect(r.isNotAKernelLog)
    }
}
