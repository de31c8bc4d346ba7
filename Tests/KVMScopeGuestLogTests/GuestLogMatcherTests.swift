import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeGuestLog

/// One test per kernel-version shape of each message family. Lines are real kernel output
/// where a published log had one (source in a comment), otherwise the kernel's format string
/// filled in.
@Suite struct BlockErrorShapeTests {
    typealias F = GuestFixtures

    @Test func endRequest_2_6() throws {
        // ≤2.6.33 `end_request: I/O error, dev %s, sector %llu` — the issue's classic report.
        let e = try #require(try F.block("[  439.490934] end_request: I/O error, dev vda, sector 494491"))
        #expect(e.device == "vda")
        #expect(e.sector == 494_491)
        #expect(e.errorType == .io)
        #expect(e.caller == "end_request")
        #expect(e.shape == .endRequest)
        #expect(e.shape.kernels == "≤3.17")
        #expect(e.operation == nil)
        #expect(e.location.line == 1)
        #expect(e.location.time.uptimeMicroseconds == 439_490_934)
    }

    @Test func endRequestErrorTypes_3_x() throws {
        // 3.2–3.17 `end_request: %s error, dev %s, sector %llu` with the errno-derived words.
        let types: [(String, BlockErrorType)] = [
            ("critical medium", .criticalMedium), ("critical target", .criticalTarget), ("critical nexus", .criticalNexus),
            ("recoverable transport", .recoverableTransport), ("timeout", .timeout),
            ("critical space allocation", .criticalSpaceAllocation), ("I/O", .io),
        ]
        for (words, type) in types {
            let e = try #require(try F.block("[  10.000001] end_request: \(words) error, dev sda, sector 2048"), "\(words)")
            #expect(e.errorType == type)
            #expect(e.errorType.text == words)
            #expect(e.shape == .endRequest)
        }
    }

    @Test func blkUpdateRequest_3_18_to_4_12() throws {
        // Real: a 4.x host, `dmesg | tail` (forum post): critical medium error.
        let e = try #require(try F.block("[83297.472971] blk_update_request: critical medium error, dev sdc, sector 69141760"))
        #expect(e.device == "sdc")
        #expect(e.sector == 69_141_760)
        #expect(e.errorType == .criticalMedium)
        #expect(e.errorType.errnoName == "ENODATA")
        #expect(e.caller == "blk_update_request")
        #expect(e.shape == .blkUpdateRequest)
        #expect(e.shape.kernels == "3.18–4.12")
    }

    @Test func printReqError_4_13_to_4_20() throws {
        // Real: dmesg -T from a Ceph OSD host (2020).
        let e = try #require(try F.block("[Sat Apr 11 09:06:51 2020] print_req_error: I/O error, dev sdf, sector 937702912"))
        #expect(e.device == "sdf")
        #expect(e.sector == 937_702_912)
        #expect(e.shape == .printReqError)
        #expect(e.shape.kernels == "4.13–4.20")
        #expect(e.location.time.wallClock?.year == 2020)
    }

    @Test func printReqErrorFlags_5_0_to_5_2() throws {
        // Real: nbd timeouts on 5.0 (linux-block): `flags %x` is the whole cmd_flags, op in the low byte.
        let e = try #require(try F.block("[270581.165041] print_req_error: I/O error, dev nbd0, sector 5123224 flags 8801"))
        #expect(e.shape == .printReqErrorFlags)
        #expect(e.shape.kernels == "5.0–5.2")
        #expect(e.flags == 0x8801)
        #expect(e.opCode == 1)
        #expect(e.operation == .write)
        #expect(e.physSegments == nil)
    }

    @Test func blkUpdateRequestWithOp_5_3_to_5_15() throws {
        // Real: kern.log, failing SATA disk (5.x).
        let e = try #require(try F.block("Aug 26 09:12:55 dottypi kernel: [808772.369195] blk_update_request: critical medium error, dev sda, sector 2641769448 op 0x0:(READ) flags 0x80700 phys_seg 5 prio class 0"))
        #expect(e.shape == .callerWithOp)
        #expect(e.shape.kernels == "5.3–5.15")
        #expect(e.device == "sda")
        #expect(e.sector == 2_641_769_448)
        #expect(e.operation == .read)
        #expect(e.reportedOperation == .read)
        #expect(e.opCode == 0)
        #expect(e.flags == 0x80700)
        #expect(e.physSegments == 5)
        #expect(e.prioClass == 0)
        #expect(e.location.time.uptimeMicroseconds == 808_772_369_195)
    }

    @Test func blkPrintReqError_5_16_plus() throws {
        // Real: the lab's 6.1 guest (lab/scenarios/write-eio).
        let e = try #require(try F.block("[    2.172479] I/O error, dev vda, sector 2048 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2"))
        #expect(e.shape == .op)
        #expect(e.shape.kernels == "5.16+")
        #expect(e.caller == nil)
        #expect(e.sector == 2048)
        #expect(e.operation == .write)
        #expect(e.flags == 0x8800)
        #expect(e.physSegments == 1)
        #expect(e.prioClass == 2)
        #expect(!e.isCacheFlush)
        // Real: a 6.x SCSI disk (linux-scsi): another error name in the 5.16 shape.
        let t = try #require(try F.block("[  152.341091] critical target error, dev sdb, sector 0 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2"))
        #expect(t.errorType == .criticalTarget)
        #expect(t.errorType.errnoName == "EREMOTEIO")
        #expect(t.operation == .read)
    }

    @Test func emptyWriteAtSectorZeroIsACacheFlush() throws {
        // Real: the lab's flush-eio scenario (6.1) and a 5.x Android cuttlefish boot (PRINTK_CALLER).
        let lab = try #require(try F.block("[    2.231954] I/O error, dev vda, sector 0 op 0x1:(WRITE) flags 0x800 phys_seg 0 prio class 2"))
        #expect(lab.reportedOperation == .write)
        #expect(lab.operation == .flush)
        #expect(lab.isCacheFlush)
        let android = try #require(try F.block("[    0.770587][    C0] blk_update_request: I/O error, dev vdc, sector 0 op 0x1:(WRITE) flags 0x800 phys_seg 0 prio class 0"))
        #expect(android.operation == .flush)
        #expect(android.shape == .callerWithOp)
        // A write with data segments at sector 0 is a write of sector 0.
        let data = try #require(try F.block("[    1.000000] I/O error, dev vda, sector 0 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 2"))
        #expect(data.operation == .write)
    }

    @Test func everyOperationName() throws {
        let names: [(String, BlockIOOperation)] = [
            ("READ", .read), ("WRITE", .write), ("FLUSH", .flush), ("DISCARD", .discard), ("SECURE_ERASE", .secureErase),
            ("WRITE_SAME", .writeSame), ("WRITE_ZEROES", .writeZeroes), ("ZONE_RESET", .zoneReset),
            ("ZONE_RESET_ALL", .zoneResetAll), ("ZONE_OPEN", .zoneOpen), ("ZONE_CLOSE", .zoneClose),
            ("ZONE_FINISH", .zoneFinish), ("ZONE_APPEND", .zoneAppend), ("SCSI_IN", .scsiIn), ("SCSI_OUT", .scsiOut),
            ("DRV_IN", .driverIn), ("DRV_OUT", .driverOut), ("UNKNOWN", .unknown),
        ]
        for (name, op) in names {
            let e = try #require(try F.block("[    1.000000] I/O error, dev vda, sector 8 op 0x9:(\(name)) flags 0x0 phys_seg 1 prio class 2"), "\(name)")
            #expect(e.operation == op, "\(name)")
        }
        #expect(BlockIOOperation.writeZeroes.rawValue == "write-zeroes")
        #expect(BlockIOOperation.discard.rawValue == "discard")
    }

    @Test func everyErrorName() throws {
        for type in BlockErrorType.known {
            let e = try #require(try F.block("[    1.000000] \(type.text) error, dev vda, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2"), "\(type.text)")
            #expect(e.errorType == type)
            #expect(e.errorType.errnoName != nil)
        }
        // A name this table does not know is kept verbatim.
        let future = try #require(try F.block("[    1.000000] quantum flux error, dev vda, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2"))
        #expect(future.errorType == .other("quantum flux"))
        #expect(future.errorType.errnoName == nil)
    }

    @Test func truncatedLinesAreSkippedAndCounted() throws {
        for cut in ["[    5.000001] I/O error, dev vdj, sector 56 op 0x1:(WRI",
                    "[    5.000001] I/O error, dev vdj, sector 56 op 0x1:(WRITE) flags 0x8800 phys_s",
                    "[    5.000001] I/O error, dev vdj, sector 56",
                    "[    5.000001] I/O error, dev vdj, sec",
                    "[    5.000001] blk_update_request: I/O error, dev sda, sector"] {
            let r = try F.events(cut + "\n")
            #expect(r.events.isEmpty, "\(cut)")
            #expect(r.stats.malformedLines == 1, "\(cut)")
            #expect(r.stats.firstMalformedLine == 1)
        }
    }

    @Test func deviceQuestionMarkAndOddNames() throws {
        let q = try #require(try F.block("[    1.000000] I/O error, dev ?, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2"))
        #expect(q.device == "?")
        let cciss = try #require(try F.block("[    1.000000] end_request: I/O error, dev cciss!c0d0, sector 8"))
        #expect(cciss.device == "cciss!c0d0")
    }
}

@Suite struct BufferErrorShapeTests {
    typealias F = GuestFixtures

    @Test func oldOnDeviceAndLostPageWrite() throws {
        // The issue's classic excerpt (≤4.0 fs/buffer.c).
        let b = try #require(try F.buffer("[  436.044199] Buffer I/O error on device dm-0, logical block 6419939"))
        #expect(b.device == "dm-0")
        #expect(b.logicalBlock == 6_419_939)
        #expect(b.loss == nil)
        #expect(b.shape == .onDevice)
        let l = try #require(try F.buffer("[  436.044141] lost page write due to I/O error on dm-0"))
        #expect(l.device == "dm-0")
        #expect(l.logicalBlock == nil)
        #expect(l.loss == .write)
        #expect(l.shape == .lostPageWrite)
    }

    @Test func newShapesWithLossKinds() throws {
        // Real: the lab's 6.1 guest (ext4-readonly, async-write-esrch) and a dm-0 XFS report (linux-xfs).
        let sync = try #require(try F.buffer("[    2.331479] Buffer I/O error on dev vda, logical block 16385, lost sync page write"))
        #expect(sync.loss == .syncWrite)
        #expect(sync.shape == .onDev)
        #expect(sync.logicalBlock == 16385)
        let async = try #require(try F.buffer("[    2.130275] Buffer I/O error on dev vda, logical block 768, lost async page write"))
        #expect(async.loss == .asyncWrite)
        let read = try #require(try F.buffer("Buffer I/O error on dev dm-0, logical block 20639616, async page read"))
        #expect(read.loss == .asyncRead)
        #expect(read.device == "dm-0")
        let plain = try #require(try F.buffer("[    1.000000] Buffer I/O error on dev sdb, logical block 0"))
        #expect(plain.loss == nil)
        #expect(plain.shape == .onDev)
    }

    @Test func ext4WritebackStillPrintsOnDevice() throws {
        // Real: lab ext4-readonly (6.1): fs/ext4/page-io.c keeps the old wording.
        let b = try #require(try F.buffer("[    2.327985] Buffer I/O error on device vda, logical block 8513"))
        #expect(b.shape == .onDevice)
        #expect(b.logicalBlock == 8513)
    }

    @Test func truncatedBufferLines() throws {
        for cut in ["[    1.0] Buffer I/O error on dev vd", "[    1.0] Buffer I/O error on dev vda, logical bl",
                    "[    1.0] Buffer I/O error on dev"] {
            let r = try F.events(cut + "\n")
            #expect(r.events.isEmpty, "\(cut)")
            #expect(r.stats.malformedLines == 1, "\(cut)")
        }
    }
}

@Suite struct SuppressedShapeTests {
    typealias F = GuestFixtures

    @Test func everyRateLimitedFunction() throws {
        // Real lines: 4.x (forum), 5.16+ (linux-nbd), buffer (linux-xfs, mkfs on dm-0).
        let cases: [(String, String, UInt64, SuppressedFamily)] = [
            ("kernel: [2661766.640953] print_req_error: 4 callbacks suppressed", "print_req_error", 4, .blockErrors),
            ("[  738.321276] blk_print_req_error: 4 callbacks suppressed", "blk_print_req_error", 4, .blockErrors),
            ("[ 1618.875449] buffer_io_error: 1028 callbacks suppressed", "buffer_io_error", 1028, .bufferErrors),
            ("[   10.000000] blk_update_request: 7 callbacks suppressed", "blk_update_request", 7, .blockErrors),
            ("[   10.000000] net_ratelimit: 12 callbacks suppressed", "net_ratelimit", 12, .other),
        ]
        for (line, function, count, family) in cases {
            guard case .suppressed(let s)? = try F.event(line) else { Issue.record("no event for \(line)"); continue }
            #expect(s.function == function)
            #expect(s.count == count)
            #expect(s.family == family)
        }
    }
}

@Suite struct FilesystemShapeTests {
    typealias F = GuestFixtures

    @Test func ext4FromTheLab() throws {
        let err = try #require(try F.filesystem("[    2.342043] EXT4-fs error (device vda): ext4_journal_check_start:83: comm dd: Detected aborted journal"))
        #expect(err.filesystem == .ext4)
        #expect(err.device == "vda")
        #expect(err.kind == .error(function: "ext4_journal_check_start", abortedJournal: true))
        #expect(err.message == "EXT4-fs error (device vda): ext4_journal_check_start:83: comm dd: Detected aborted journal")
        let std = try #require(try F.filesystem("[    2.344589] EXT4-fs error (device vda) in __ext4_new_inode:1096: Journal has aborted"))
        #expect(std.kind == .error(function: "__ext4_new_inode", abortedJournal: true))
        let ro = try #require(try F.filesystem("[    2.344351] EXT4-fs (vda): Remounting filesystem read-only"))
        #expect(ro.kind == .remountedReadOnly)
        let sb = try #require(try F.filesystem("[    2.344163] EXT4-fs (vda): I/O error while writing superblock"))
        #expect(sb.kind == .superblockWriteError)
        let mounted = try #require(try F.filesystem("[    2.264871] EXT4-fs (vda): mounted filesystem with ordered data mode. Quota mode: none."))
        #expect(mounted.kind == .mounted)
        let plain = try #require(try F.filesystem("[   95.574725] EXT4-fs error (device sda2): ext4_find_entry:1455: inode #7209462: comm dpkg: reading directory lblock 0"))
        #expect(plain.kind == .error(function: "ext4_find_entry", abortedJournal: false))
    }

    @Test func ext4InodeWriteErrorStatusIsABlkStatus() throws {
        // 4.13+: "I/O error %d" is a blk_status_t (10 = BLK_STS_IOERR). Real: lab ext4-readonly.
        let w = try #require(try F.filesystem("[    2.327736] EXT4-fs warning (device vda): ext4_end_bio:343: I/O error 10 writing to inode 12 starting block 8513)"))
        #expect(w.kind == .inodeWriteError(inode: 12, startingBlock: 8513, status: 10))
        #expect(GuestDiskAnalysis.describeStatus(10) == "BLK_STS_IOERR")
        // ≤4.12 printed -errno and an offset/size (format string filled in).
        let old = try #require(try F.filesystem("[   10.000000] EXT4-fs warning (device sda1): ext4_end_bio:316: I/O error -5 writing to inode 1835011 (offset 0 size 4096 starting block 7340544)"))
        #expect(old.kind == .inodeWriteError(inode: 1_835_011, startingBlock: 7_340_544, status: -5))
        #expect(GuestDiskAnalysis.describeStatus(-5) == "-EIO")
    }

    @Test func ext3AndDataLoss() throws {
        // ext3_handle_error: ext3_msg(sb, KERN_CRIT, "error: remounting filesystem read-only").
        let ro = try #require(try F.filesystem("[  100.000000] EXT3-fs (sda1): error: remounting filesystem read-only"))
        #expect(ro.filesystem == .ext3)
        #expect(ro.kind == .remountedReadOnly)
        let loss = try #require(try F.filesystem("[  100.000000] EXT4-fs (dm-0): This should not happen!! Data will be lost"))
        #expect(loss.kind == .dataLoss)
        #expect(loss.device == "dm-0")
        let prev = try #require(try F.filesystem("[13830.899739] EXT4-fs (sdb1): previous I/O error to superblock detected"))
        #expect(prev.kind == .superblockWriteError)
    }

    @Test func jbd2Shapes() throws {
        // 6.2+ (lab 6.1 Debian kernel has the backport), 3.x–6.1, ≤2.6.3x (real, Ubuntu 2.6.31).
        let new = try #require(try F.filesystem("[    2.331876] JBD2: I/O error when updating journal superblock for vda-8."))
        #expect(new.filesystem == .jbd2)
        #expect(new.device == "vda")
        #expect(new.kind == .journalSuperblockWriteError(code: nil))
        let mid = try #require(try F.filesystem("[   10.000000] JBD2: Error -5 detected when updating journal superblock for dm-0-8."))
        #expect(mid.device == "dm-0")
        #expect(mid.kind == .journalSuperblockWriteError(code: -5))
        let old = try #require(try F.filesystem("[13830.899619] JBD2: I/O error detected when updating journal superblock for sdb1:8."))
        #expect(old.device == "sdb1")
        let abort = try #require(try F.filesystem("[    2.332061] Aborting journal on device vda-8."))
        #expect(abort.kind == .journalAborted)
        #expect(abort.device == "vda")
        let flush = try #require(try F.filesystem("[    2.334572] JBD2: Detected IO errors while flushing file data on vda-8"))
        #expect(flush.kind == .journalDataFlushError)
        // An external journal device named dm-3 keeps its name.
        #expect(JournalMatcherNames.device("dm-3") == "dm-3")
        #expect(JournalMatcherNames.device("nvme0n1p2-8.") == "nvme0n1p2")
    }

    @Test func xfsMetadataErrorInItsThreeShapes() throws {
        // 4.16+ (real, linux-xfs report), 3.x–4.15 and ≤3.x (format strings filled in).
        let new = try #require(try F.filesystem("XFS (dm-0): metadata I/O error in \"xfs_imap_to_bp+0x5c/0x80 [xfs]\" at daddr 0x8a66c0 len 32 error 5"))
        #expect(new.filesystem == .xfs)
        #expect(new.kind == .metadataIOError(daddr: 0x8a66c0, length: 32, errno: 5, function: "xfs_imap_to_bp+0x5c/0x80 [xfs]"))
        let mid = try #require(try F.filesystem("[  100.000000] XFS (sdb1): metadata I/O error: block 0x1d1c8f0 (\"xfs_trans_read_buf_map\") error 5 numblks 8"))
        #expect(mid.kind == .metadataIOError(daddr: 0x1d1c8f0, length: 8, errno: 5, function: "xfs_trans_read_buf_map"))
        let old = try #require(try F.filesystem("[  100.000000] XFS (sdb1): metadata I/O error: block 0x40 (\"xfs_trans_read_buf\") error 5 buf count 4096"))
        #expect(old.kind == .metadataIOError(daddr: 0x40, length: nil, errno: 5, function: "xfs_trans_read_buf"))
    }

    @Test func xfsShutdownShapes() throws {
        let log = try #require(try F.filesystem("XFS (dm-0): log I/O error -5"))
        #expect(log.kind == .logIOError(errno: -5))
        for line in ["XFS (dm-0): Filesystem has been shut down due to log error (0x2).",
                     "XFS (sda3): Metadata I/O Error (0x1) detected at xfs_trans_read_buf_map+0x2a0/0x3d0 [xfs] (fs/xfs/xfs_trans_buf.c:296).  Shutting down filesystem.",
                     "XFS (sda3): Log I/O Error Detected.  Shutting down filesystem",
                     "XFS (sda3): xfs_do_force_shutdown(0x2) called from line 1271 of file fs/xfs/xfs_log.c.  Return address = 0xffffffffa04dd3b2"] {
            let e = try #require(try F.filesystem(line), "\(line)")
            #expect(e.kind == .shutdown, "\(line)")
        }
        let mount = try #require(try F.filesystem("XFS (dm-0): Mounting V5 Filesystem"))
        #expect(mount.kind == .mounted)
        #expect(try F.event("XFS (dm-0): Please unmount the filesystem and rectify the problem(s)") == nil)
    }
}

/// Exposes JournalMatcher's name reduction to the tests without a log line.
enum JournalMatcherNames {
    static func device(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        return bytes.withUnsafeBufferPointer { JournalMatcher.journalDevice(LineBytes($0), 0, jbd2: true) }
    }
}

@Suite struct SCSIAndCapacityShapeTests {
    typealias F = GuestFixtures

    @Test func scsiResultSenseAndAdditionalSense() throws {
        // Real: dmesg -T (Ceph host, 2020), a 5.x disk (forum), kmsg (targetcli).
        let r = try #require(try F.scsi("[Sat Apr 11 09:06:51 2020] sd 5:0:0:0: [sdf] tag#17 FAILED Result: hostbyte=DID_BAD_TARGET driverbyte=DRIVER_OK"))
        #expect(r.device == "sdf")
        #expect(r.address == "5:0:0:0")
        #expect(r.kind == .result(hostbyte: "DID_BAD_TARGET", driverbyte: "DRIVER_OK"))
        let aged = try #require(try F.scsi("Aug 26 09:13:19 dottypi kernel: [808797.156003] sd 0:0:0:0: [sda] tag#0 UNKNOWN(0x2003) Result: hostbyte=0x00 driverbyte=0x08 cmd_age=24s"))
        #expect(aged.kind == .result(hostbyte: "0x00", driverbyte: "0x08"))
        let old = try #require(try F.scsi("[13830.896273] sd 7:0:0:0: [sdb] Result: hostbyte=DID_ERROR driverbyte=DRIVER_OK"))
        #expect(old.kind == .result(hostbyte: "DID_ERROR", driverbyte: "DRIVER_OK"))
        let key = try #require(try F.scsi("[   95.572431] sd 0:0:0:0: [sda] tag#0 Sense Key : Medium Error [current]"))
        #expect(key.kind == .senseKey("Medium Error"))
        let add = try #require(try F.scsi("[   95.572435] sd 0:0:0:0: [sda] tag#0 Add. Sense: Unrecovered read error - auto reallocate failed"))
        #expect(add.kind == .additionalSense("Unrecovered read error - auto reallocate failed"))
        let asc = try #require(try F.scsi("[37716.939125] sd 0:0:0:0: [sda] tag#0 ASC=0x4b ASCQ=0x0 "))
        #expect(asc.kind == .additionalSense("ASC=0x4b ASCQ=0x0"))
        let unhandled = try #require(try F.scsi("[13830.896266] sd 7:0:0:0: [sdb] Unhandled error code"))
        #expect(unhandled.kind == .unhandled)
        let offline = try #require(try F.scsi("[Mon Jun 22 00:03:31 2020] sd 5:0:0:0: rejecting I/O to offline device"))
        #expect(offline.kind == .offline)
        // The CDB line is read since the SCSI command detail was added (GuestInternalMatcherTests).
        let cdb = try #require(try F.scsi("[   95.572439] sd 0:0:0:0: [sda] tag#0 CDB: Read(10) 28 00 0d c1 26 98 00 00 08 00"))
        guard case .cdb(let d) = cdb.kind else { Issue.record("\(cdb.kind)"); return }
        #expect(d.name == "Read(10)" && d.blockRange?.lba == 0x0DC1_2698 && d.blockRange?.blocks == 8)
    }

    @Test func virtioAndSCSICapacity() throws {
        // Real: the lab's 6.1 guest.
        guard case .capacity(let v)? = try F.event("[    1.879878] virtio_blk virtio0: [vda] 131072 512-byte logical blocks (67.1 MB/64.0 MiB)") else {
            Issue.record("no capacity event"); return
        }
        #expect(v.device == "vda")
        #expect(v.driver == "virtio_blk")
        #expect(v.logicalBlocks == 131_072)
        #expect(v.logicalBlockSize == 512)
        #expect(v.bytes == 67_108_864)
        #expect(v.sectors == 131_072)
        #expect(!v.resized)
        guard case .capacity(let resized)? = try F.event("[  200.000000] virtio_blk virtio1: [vdb] new size: 4194304 512-byte logical blocks (2.15 GB/2.00 GiB)") else {
            Issue.record("no resize event"); return
        }
        #expect(resized.resized)
        #expect(resized.logicalBlocks == 4_194_304)
        // sd_print_capacity, 4 KiB sectors.
        guard case .capacity(let sd)? = try F.event("[    2.000000] sd 0:0:0:0: [sda] 488378646 4096-byte logical blocks: (2.00 TB/1.82 TiB)") else {
            Issue.record("no sd capacity event"); return
        }
        #expect(sd.driver == "sd")
        #expect(sd.sectors == 488_378_646 * 8)
        #expect(try F.event("[    1.865014] virtio_blk virtio0: 1/0/0 default/read/poll queues") == nil)
    }
}
