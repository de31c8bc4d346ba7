import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeGuestLog

/// Filesystem corruption, hung tasks, timeouts/aborts and SCSI command detail: the guest-side
/// findings that `explain` needs to tell "the guest's own problem" from "the host failed".
/// Lines are real 6.1 output from the lab captures where there is one (`lab/scenarios/...`),
/// otherwise the 6.1 format string filled in (quoted in the matcher's source).
@Suite struct GuestInternalMatcherTests {
    typealias F = GuestFixtures

    func corruption(_ line: String) throws -> (FilesystemEvent, FilesystemCorruptionEvent) {
        let e = try #require(try F.filesystem(line), "\(line)")
        guard case .corruption(let c) = e.kind else {
            Issue.record("not a corruption event: \(e.kind) for \(line)")
            throw CancellationError()
        }
        return (e, c)
    }

    @Test func ext4BlockBitmapChecksumFromTheLab() throws {
        // lab/scenarios/ext4-corrupt/console.log
        let (e, c) = try corruption("[    3.498360] EXT4-fs error (device vda): ext4_validate_block_bitmap:420: comm dd: bg 0: bad block bitmap checksum")
        #expect(e.filesystem == .ext4)
        #expect(e.device == "vda")
        #expect(c.structure == .blockBitmap)
        #expect(c.checksum)
        #expect(c.function == "ext4_validate_block_bitmap")
        #expect(c.sourceLine == 420)
        #expect(c.group == 0)
        #expect(c.process == "dd")
        #expect(c.inode == nil && c.block == nil)
    }

    @Test func ext4InodeChecksumFromTheLab() throws {
        let (_, c) = try corruption("[    3.528973] EXT4-fs error (device vda): ext4_lookup:1860: inode #17: comm ls: iget: checksum invalid")
        #expect(c.structure == .inode)
        #expect(c.checksum)
        #expect(c.inode == 17)
        #expect(c.function == "ext4_lookup")
        #expect(c.process == "ls")
    }

    @Test func ext4OtherShapes() throws {
        let invalid = try corruption("[   13.000050] EXT4-fs error (device vda1): ext4_validate_block_bitmap:404: comm dd: bg 3: block 98306: invalid block bitmap").1
        #expect(invalid.structure == .blockBitmap && !invalid.checksum)
        #expect(invalid.group == 3 && invalid.block == 98306 && invalid.blockUnit == .filesystemBlock)

        let deleted = try corruption("[   13.1] EXT4-fs error (device vda1): ext4_lookup:1847: inode #2: comm ls: deleted inode referenced: 13").1
        #expect(deleted.structure == .inode && deleted.inode == 2)

        let dir = try corruption("[   13.2] EXT4-fs error (device vda1): htree_dirblock_to_tree:1080: inode #2: block 1058: comm ls: Directory block failed checksum").1
        #expect(dir.structure == .directory && dir.checksum && dir.inode == 2 && dir.block == 1058)

        // __ext4_grp_locked_error: `group %u, [inode %lu: ][block %llu:]%pV`
        let grp = try corruption("[   13.3] EXT4-fs error (device vda1): ext4_mb_generate_buddy:1147: group 1, block bitmap and bg descriptor inconsistent: 32768 vs 32767 free clusters").1
        #expect(grp.structure == .blockBitmap && grp.group == 1)
        let freed = try corruption("[   13.4] EXT4-fs error (device vda1): mb_free_blocks:1890: group 7, inode 12: block 229377:freeing already freed block (bit 1); block bitmap corrupt.").1
        #expect(freed.structure == .blockBitmap && freed.group == 7 && freed.inode == 12 && freed.block == 229_377)

        let ibitmap = try corruption("[   13.5] EXT4-fs error (device vda1): ext4_read_inode_bitmap:152: comm touch: Corrupt inode bitmap - block_group = 0, inode_bitmap = 1043").1
        #expect(ibitmap.structure == .inodeBitmap && ibitmap.checksum && ibitmap.group == 0 && ibitmap.block == 1043)

        let extent = try corruption("[   13.6] EXT4-fs error (device vda1): ext4_find_extent:936: inode #14: comm cat: pblk 33794 bad header/extent: invalid magic - magic 0, entries 0, max 0(0), depth 0(0)").1
        #expect(extent.structure == .extentTree && extent.block == 33794 && extent.inode == 14)

        // A comm with a colon (kworker/u4:2) does not end the comm field early.
        let worker = try corruption("[   13.7] EXT4-fs error (device vda1): ext4_validate_block_bitmap:390: comm kworker/u4:2: bg 1: bad block bitmap checksum").1
        #expect(worker.process == "kworker/u4:2" && worker.group == 1)

        // __ext4_error_file adds `path %s: ` before the message.
        let file = try corruption("[   13.8] EXT4-fs error (device vda1): ext4_readdir:260: inode #2: comm ls: path /mnt: bad entry in directory: rec_len % 4 != 0 - offset=0, inode=0, rec_len=2, size=4096 fake=0").1
        #expect(file.structure == .directory && file.inode == 2)
    }

    @Test func ext4MountTimeChecksums() throws {
        let gd = try corruption("[    2.327010] EXT4-fs (vda): ext4_check_descriptors: Checksum for group 0 failed (61125!=45911)").1
        #expect(gd.structure == .groupDescriptor && gd.checksum && gd.group == 0)
        let sb = try corruption("[    2.3] EXT4-fs (vda): VFS: Found ext4 filesystem with invalid superblock checksum.  Run e2fsck?").1
        #expect(sb.structure == .superblock && sb.checksum)
        let notInGroup = try corruption("[    2.4] EXT4-fs (vda): ext4_check_descriptors: Block bitmap for group 2 not in group (block 4294967295)!").1
        #expect(notInGroup.structure == .groupDescriptor && notInGroup.group == 2 && notInGroup.block == 4_294_967_295)
    }

    @Test func ext4ReadFailuresAndJournalStateAreNotCorruption() throws {
        // The bytes were never read, or the message is about the journal: the old kinds stay.
        for line in [
            "[    3.527277] EXT4-fs error (device vda): ext4_journal_check_start:83: comm ls: Detected aborted journal",
            "[    3.515448] EXT4-fs error (device vda) in ext4_writepages:2872: Journal has aborted",
            "[   10.1] EXT4-fs error (device vda): ext4_wait_block_bitmap:577: comm dd: Cannot read block bitmap - block_group = 0, block_bitmap = 1026",
            "[   10.2] EXT4-fs error (device vda): __ext4_get_inode_loc_noinmem:4449: inode #12: block 1060: comm ls: unable to read itable block",
        ] {
            let e = try #require(try F.filesystem(line), "\(line)")
            guard case .error = e.kind else { Issue.record("\(line): \(e.kind)"); continue }
        }
    }

    @Test func xfsVerifiersAndShutdown() throws {
        let crc = try corruption("[   21.2] XFS (vdb): Metadata CRC error detected at xfs_agf_read_verify+0x10e/0x120 [xfs], xfs_agf block 0x1 ")
        #expect(crc.0.filesystem == .xfs && crc.0.device == "vdb")
        #expect(crc.1.structure == .metadata && crc.1.checksum && crc.1.function == "xfs_agf_read_verify")
        #expect(crc.1.block == 1 && crc.1.blockUnit == .sector512)

        let plain = try corruption("[   21.25] XFS (sda1): Metadata corruption detected at xfs_buf_ioend+0x58/0x1e0 [xfs], xfs_inode block 0x4a0 xfs_inode_buf_verify").1
        #expect(plain.structure == .metadata && !plain.checksum && plain.block == 0x4a0)

        let inode = try corruption("[   21.3] XFS (vdb): Metadata corruption detected at xfs_dinode_verify+0xa3/0x760 [xfs], inode 0x83 dinode").1
        #expect(inode.structure == .inode && inode.inode == 0x83 && inode.function == "xfs_dinode_verify")

        let incore = try corruption("[   21.4] XFS (vdb): Corruption of in-memory data (0x8) detected at xfs_trans_cancel+0x105/0x140 [xfs] (fs/xfs/xfs_trans.c:1097).  Shutting down filesystem.").1
        #expect(incore.structure == .inMemory && incore.shutsDown && incore.function == "xfs_trans_cancel")

        // Follow-up lines are not further reports.
        #expect(try F.event("[   21.21] XFS (vdb): Unmount and run xfs_repair") == nil)
        #expect(try F.event("[   21.22] XFS (vdb): First 128 bytes of corrupted metadata buffer:") == nil)
        // A metadata I/O error stays an I/O error.
        if case .metadataIOError? = try F.filesystem("[ 5.0] XFS (vdb): metadata I/O error in \"xfs_buf_ioend+0x1a/0x60 [xfs]\" at daddr 0x2 len 1 error 5")?.kind {} else {
            Issue.record("metadata I/O error no longer recognised")
        }
    }

    @Test func btrfs() throws {
        let csum = try corruption("[   30.5] BTRFS warning (device vdc): csum failed root 5 ino 257 off 0 csum 0x8941f998 expected csum 0x98f94189 mirror 1")
        #expect(csum.0.filesystem == .btrfs && csum.0.device == "vdc")
        #expect(csum.1.structure == .data && csum.1.checksum && csum.1.root == 5 && csum.1.inode == 257 && csum.1.fileOffset == 0 && csum.1.mirror == 1)
        let reloc = try corruption("[   30.51] BTRFS warning (device vdc): csum failed root -9 ino 257 off 4096 csum 0x8941f998 expected csum 0x98f94189 mirror 2").1
        #expect(reloc.root == nil && reloc.fileOffset == 4096)

        let transid = try corruption("[   30.6] BTRFS error (device vdc: state EA): parent transid verify failed on logical 30490624 mirror 1 wanted 9 found 7")
        #expect(transid.0.device == "vdc")
        #expect(transid.1.structure == .transid && transid.1.block == 30_490_624 && transid.1.blockUnit == .logicalByte)
        let old = try corruption("[   30.7] BTRFS error (device sdb): parent transid verify failed on 30490624 wanted 9 found 7").1
        #expect(old.block == 30_490_624 && old.mirror == nil)

        let e = try #require(try F.filesystem("[   30.5] BTRFS error (device vdc): bdev /dev/vdc errs: wr 0, rd 0, flush 0, corrupt 1, gen 0"))
        guard case .btrfsDeviceStats(let s) = e.kind else { Issue.record("\(e.kind)"); return }
        #expect(s == BtrfsDeviceStatsEvent(bdev: "/dev/vdc", writeErrors: 0, readErrors: 0, flushErrors: 0, corruptionErrors: 1, generationErrors: 0))
        // Counters past u32 are not this line: skipped and counted, never wrapped.
        let r = try F.events("[   30.5] BTRFS error (device vdc): bdev /dev/vdc errs: wr 99999999999, rd 0, flush 0, corrupt 1, gen 0\n")
        #expect(r.events.isEmpty && r.stats.malformedLines == 1)
    }

    @Test func hungTasks() throws {
        let r = try F.events("""
        [  242.123456] INFO: task jbd2/vda-8:123 blocked for more than 120 seconds.
        [  242.123460]       Not tainted 6.1.0-56-amd64 #1 Debian 6.1.192-2
        [  242.2] INFO: task my prog: x:456 blocked for more than 241 seconds.

        """)
        #expect(r.events.count == 2)
        guard case .hungTask(let a) = r.events[0], case .hungTask(let b) = r.events[1] else { Issue.record("\(r.events)"); return }
        #expect(a.task == "jbd2/vda-8" && a.pid == 123 && a.blockedSeconds == 120 && a.journalDevice == "vda")
        #expect(b.task == "my prog: x" && b.pid == 456 && b.blockedSeconds == 241 && b.journalDevice == nil)
    }

    func timeout(_ line: String) throws -> DeviceTimeoutEvent {
        guard case .deviceTimeout(let t)? = try F.event(line) else {
            Issue.record("not a timeout: \(line)"); throw CancellationError()
        }
        return t
    }

    @Test func scsiAndNVMeTimeouts() throws {
        let abort = try timeout("[   50.0] sd 0:0:1:0: [sdb] tag#7 abort")
        #expect(abort.device == "sdb" && abort.kind == .scsiAbort && abort.tag == 7 && abort.address == "0:0:1:0")
        let reset = try timeout("[   50.1] sd 0:0:1:0: device reset")
        #expect(reset.device == "sd 0:0:1:0" && reset.kind == .scsiDeviceReset)
        let waited = try timeout("[   80.2] sd 0:0:1:0: [sdb] tag#7 timing out command, waited 180s")
        #expect(waited.kind == .scsiCommandTimeout && waited.waitedSeconds == 180)
        let offlined = try timeout("[   80.3] sd 0:0:1:0: Device offlined - not ready after error recovery")
        #expect(offlined.kind == .scsiDeviceOfflined)
        // Published 5.x/6.x output (an AMD laptop's NVMe over suspend).
        let nvme = try timeout("[   83.556118] nvme nvme0: I/O 161 QID 2 timeout, aborting")
        #expect(nvme.device == "nvme0" && nvme.kind == .nvmeAbort && nvme.tag == 161 && nvme.queue == 2)
        #expect(try timeout("[   95.332114] nvme nvme0: I/O 25 QID 0 timeout, reset controller").kind == .nvmeControllerReset)
        let newer = try timeout("[ 9.0] nvme nvme1: I/O tag 12 (300c) opcode 0x1 (Write) QID 3 timeout, aborting req_op:WRITE(1) size:4096")
        #expect(newer.device == "nvme1" && newer.tag == 12 && newer.queue == 3)
        #expect(try F.event("[   95.332843] nvme nvme0: Abort status: 0x371") == nil)
    }

    @Test func scsiCommandLinesFromTheLab() throws {
        // lab/scenarios/scsi-write-eio/console.log
        let result = try #require(try F.scsi("[    5.199319] sd 0:0:0:0: [sda] tag#103 FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_OK cmd_age=0s"))
        #expect(result.tag == 103 && result.disposition == "FAILED" && result.commandAgeSeconds == 0)
        let key = try #require(try F.scsi("[    5.199504] sd 0:0:0:0: [sda] tag#103 Sense Key : Aborted Command [current] "))
        #expect(key.kind == .senseKey("Aborted Command") && key.senseDeferred == false && key.tag == 103)
        let cdbEvent = try #require(try F.scsi("[    5.199868] sd 0:0:0:0: [sda] tag#103 CDB: Write(10) 2a 00 00 00 08 00 00 00 08 00"))
        guard case .cdb(let cdb) = cdbEvent.kind else { Issue.record("\(cdbEvent.kind)"); return }
        #expect(cdb.name == "Write(10)")
        #expect(cdb.opcode == 0x2A && cdb.operation == .write)
        #expect(cdb.blockRange?.lba == 2048 && cdb.blockRange?.blocks == 8)
        #expect(cdb.hex == "2a 00 00 00 08 00 00 00 08 00")
    }

    @Test func cdbDecoding() throws {
        func cdb(_ text: String) throws -> SCSICommandDescriptor? {
            guard case .cdb(let c)? = try F.scsi("[ 1.0] sd 0:0:0:0: [sda] tag#1 CDB: \(text)")?.kind else { return nil }
            return c
        }
        let r16 = try #require(try cdb("Read(16) 88 00 00 00 00 01 00 00 00 10 00 00 01 00 00 00"))
        #expect(r16.blockRange?.lba == 0x1_0000_0010 && r16.blockRange?.blocks == 256 && r16.operation == .read)
        let r6 = try #require(try cdb("Read(6) 08 1f ff ff 00 00"))   // 21-bit LBA; length 0 means 256
        #expect(r6.blockRange?.lba == 0x1F_FFFF && r6.blockRange?.blocks == 256)
        let sync = try #require(try cdb("Synchronize Cache(10) 35 00 00 00 00 00 00 00 00 00"))
        #expect(sync.name == "Synchronize Cache(10)" && sync.operation == .synchronizeCache && sync.blockRange?.blocks == 0)
        let unnamed = try #require(try cdb("opcode=0x2a 2a 00 00 00 00 10 00 00 01 00"))
        #expect(unnamed.name == "opcode=0x2a" && unnamed.blockRange?.lba == 16)
        // The largest LBA a READ(16) can carry decodes without trapping.
        let huge = try #require(try cdb("Read(16) 88 00 ff ff ff ff ff ff ff ff ff ff ff ff 00 00"))
        #expect(huge.blockRange?.lba == UInt64.max && huge.blockRange?.blocks == UInt32.max)
        #expect(SCSIFailureTracker.sectorFactor(lba: UInt64.max, sector: 8, logicalBlockSize: 4096) == nil)
        // `ASC=0x%x ASCQ=0x%x ` (with `<<vendor>>` before vendor-specific codes) is read as numbers.
        #expect(SCSIFailureTracker.printedCodes("ASC=0x4b ASCQ=0x0") .map { [$0.0, $0.1] } == [0x4B, 0])
        #expect(SCSIFailureTracker.printedCodes("<<vendor>>ASC=0x80 ASCQ=0x1 ").map { [$0.0, $0.1] } == [0x80, 1])
        #expect(SCSIFailureTracker.printedCodes("ASC=0x123 ASCQ=0x0") == nil)
        // Garbage after `CDB:` is skipped and counted, never guessed.
        let bad = try F.events("[ 1.0] sd 0:0:0:0: [sda] tag#1 CDB: Write(10) zz yy\n[ 1.1] sd 0:0:0:0: [sda] tag#1 CDB: \(String(repeating: "00 ", count: 40))\n")
        #expect(bad.events.isEmpty && bad.stats.malformedLines == 2)
    }
}

@Suite struct GuestInternalAnalysisTests {
    typealias F = GuestFixtures

    @Test func scsiWriteEIOLabCaptureTiesTheCommandToItsBlockError() throws {
        let r = try F.report(file: F.lab("scsi-write-eio"))
        let sda = try #require(F.device(r, "sda"))
        let s = try #require(sda.scsi)
        // The console and the dmesg replay print the failure twice; the replay is one event.
        #expect(s.commandFailures == 1)
        let f = try #require(s.failedRequests.first)
        #expect(f.tag == 103)
        #expect(f.hostbyte == "DID_OK" && f.driverbyte == "DRIVER_OK" && f.commandAgeSeconds == 0)
        #expect(f.senseKey == "Aborted Command" && f.additionalSense == "I/O process terminated")
        #expect(f.asc == 0x00 && f.ascq == 0x06)
        #expect(f.cdb?.name == "Write(10)" && f.cdb?.blockRange?.lba == 2048 && f.cdb?.blockRange?.blocks == 8)
        #expect(f.blockErrorSector == 2048 && f.blockOperation == .write && f.blockErrorLine != nil)
        #expect(f.sector == 2048 && f.sectors == 8)
        #expect(f.loggedFailures == 1)
        // QEMU's 6 attempts (and 6 BLOCK_IO_ERRORs) for this one logged failure.
        #expect(f.silentRetriesUpTo == 5)
    }

    @Test func ext4CorruptLabCapture() throws {
        let r = try F.report(file: F.lab("ext4-corrupt"))
        let vda = try #require(F.device(r, "vda"))
        let fs = try #require(vda.filesystems.first { $0.type == "ext4" })
        #expect(fs.corruptionReports == 3)
        let bitmap = try #require(fs.corruption.first { $0.structure == .blockBitmap })
        #expect(bitmap.checksum && bitmap.groups == [0] && bitmap.count == 1 && bitmap.function == "ext4_validate_block_bitmap")
        let inode = try #require(fs.corruption.first { $0.structure == .inode })
        #expect(inode.checksum && inode.inodes == [17] && inode.count == 2 && inode.processes == ["ls", "cat"])
        #expect(inode.first.location.time.uptimeMicroseconds == 3_528_973)
        // No I/O failed: the block layer reported nothing.
        #expect(vda.totalBlockErrors == 0 && vda.totalBufferErrors == 0)
        #expect(fs.journalAborted && fs.readOnly)
    }

    @Test func interleavedCommandsTieByTheirCDB() throws {
        // Two CPUs completing two failed commands at once: the block error names sector 4096,
        // which is tag#2's LBA, although tag#1's lines came last.
        let r = try F.report("""
        [ 1.000001] sd 0:0:0:0: [sda] 131072 512-byte logical blocks: (67.1 MB/64.0 MiB)
        [ 1.000010] sd 0:0:0:0: [sda] tag#2 FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_OK cmd_age=0s
        [ 1.000011] sd 0:0:0:0: [sda] tag#1 FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_OK cmd_age=0s
        [ 1.000012] sd 0:0:0:0: [sda] tag#2 Sense Key : Medium Error [current] 
        [ 1.000013] sd 0:0:0:0: [sda] tag#2 CDB: Read(10) 28 00 00 00 10 00 00 00 08 00
        [ 1.000014] sd 0:0:0:0: [sda] tag#1 Sense Key : Aborted Command [current] 
        [ 1.000015] sd 0:0:0:0: [sda] tag#1 CDB: Write(10) 2a 00 00 00 08 00 00 00 08 00
        [ 1.000016] critical medium error, dev sda, sector 4096 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2
        [ 1.000017] I/O error, dev sda, sector 2048 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 2

        """)
        let s = try #require(F.device(r, "sda")?.scsi)
        #expect(s.failedRequests.count == 2)
        let read = try #require(s.failedRequests.first { $0.tag == 2 })
        #expect(read.blockErrorSector == 4096 && read.blockOperation == .read && read.senseKey == "Medium Error")
        #expect(read.silentRetriesUpTo == 0)
        let write = try #require(s.failedRequests.first { $0.tag == 1 })
        #expect(write.blockErrorSector == 2048 && write.blockOperation == .write)
    }

    @Test func repeatsOfARequestAreCountedEvenWhenRateLimited() throws {
        var text = ""
        for k in 0..<3 {
            let t = 10 + k
            text += "[ \(t).000001] sd 0:0:0:0: [sda] tag#\(k) FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_OK cmd_age=0s\n"
            text += "[ \(t).000002] sd 0:0:0:0: [sda] tag#\(k) CDB: Write(10) 2a 00 00 00 08 00 00 00 08 00\n"
            text += "[ \(t).000003] I/O error, dev sda, sector 2048 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 2\n"
        }
        // scsi_io_completion_action's ratelimit dropped the SCSI lines of a fourth failure.
        text += "[ 20.000003] I/O error, dev sda, sector 2048 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 2\n"
        let s = try #require(F.device(try F.report(text), "sda")?.scsi)
        #expect(s.commandFailures == 3)
        #expect(s.failedRequests.count == 1)
        #expect(s.failedRequests[0].loggedFailures == 4)
        #expect(s.retriedRequests == 1)
        #expect(s.failedRequests[0].last.time.uptimeMicroseconds == 20_000_003)
    }

    @Test func findingsStayBoundedAndCountsExact() throws {
        var text = ""
        // 40 distinct ext4 functions (16 findings kept), 20 distinct inodes in one finding.
        for i in 0..<40 { text += "[ \(100 + i).0] EXT4-fs error (device vda): f\(i):1: inode #\(i): comm ls: iget: checksum invalid\n" }
        for i in 0..<20 { text += "[ \(200 + i).0] EXT4-fs error (device vda): f0:1: inode #\(1000 + i): comm ls: iget: checksum invalid\n" }
        // 100 distinct failed SCSI writes (64 kept) and 40 hung tasks (16 kept).
        for i in 0..<100 {
            text += "[ \(300 + i).000001] sd 0:0:0:0: [sda] tag#1 FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_OK cmd_age=0s\n"
            text += "[ \(300 + i).000002] sd 0:0:0:0: [sda] tag#1 CDB: Write(10) 2a 00 00 00 \(String(format: "%02x", i)) 00 00 00 08 00\n"
        }
        for i in 0..<40 { text += "[ \(500 + i).0] INFO: task dd:\(i) blocked for more than 120 seconds.\n" }
        let r = try F.report(text)
        let fs = try #require(F.device(r, "vda")?.filesystems.first)
        #expect(fs.corruptionReports == 60)
        #expect(fs.corruption.count == FilesystemReport.corruptionFindingLimit)
        #expect(fs.corruptionReportsNotListed == 40 - 16)
        let f0 = try #require(fs.corruption.first { $0.function == "f0" })
        #expect(f0.count == 21 && f0.inodes.count == CorruptionFinding.valueLimit && f0.valuesNotListed == 21 - 8)
        let s = try #require(F.device(r, "sda")?.scsi)
        #expect(s.commandFailures == 100 && s.failedRequests.count == SCSISummary.failedRequestLimit && s.failuresNotListed == 36)
        #expect(r.hungTasks.total == 40 && r.hungTasks.tasks.count == 16 && r.hungTasks.tasksNotListed == 24)
    }

    @Test func timeoutsGoToTheDiskTheAddressNames() throws {
        let r = try F.report("""
        [ 50.0] sd 0:0:1:0: [sdb] tag#7 abort
        [ 50.1] sd 0:0:1:0: device reset
        [ 80.2] sd 0:0:1:0: [sdb] tag#7 timing out command, waited 180s
        [ 90.0] nvme nvme0: I/O 161 QID 2 timeout, aborting

        """)
        let sdb = try #require(F.device(r, "sdb"))
        let t = try #require(sdb.timeouts)
        #expect(t.total == 3)
        #expect(t.counts == ["scsi-abort": 1, "scsi-device-reset": 1, "scsi-command-timeout": 1])
        #expect(t.maxWaitedSeconds == 180)
        #expect(t.evidence.count == 3)
        #expect(F.device(r, "nvme0")?.timeouts?.counts == ["nvme-abort": 1])
        #expect(r.hasDiskErrors)
    }

    @Test func xfsShutdownByCorruptionMarksTheFilesystemShutDown() throws {
        let r = try F.report("[ 21.4] XFS (vdb): Corruption of in-memory data (0x8) detected at xfs_trans_cancel+0x105/0x140 [xfs] (fs/xfs/xfs_trans.c:1097).  Shutting down filesystem.\n")
        let fs = try #require(F.device(r, "vdb")?.filesystems.first)
        #expect(fs.shutdown && fs.corruption.first?.structure == .inMemory)
        #expect(fs.evidence.count == 1)
    }
}

@Suite struct GuestInternalHostileInputTests {
    typealias F = GuestFixtures

    /// Hostile numbers in the new messages are skipped or kept within their types, never wrapped.
    @Test func hugeNumbersInTheNewMessages() throws {
        let r = try F.events("""
        [ 1.0] INFO: task dd:99999999999999999999 blocked for more than 120 seconds.
        [ 1.1] INFO: task dd:1 blocked for more than 99999999999999999999 seconds.
        [ 1.2] nvme nvme0: I/O 99999999999 QID 99999999 timeout, aborting
        [ 1.3] sd 0:0:0:0: [sda] tag#99999999999 timing out command, waited 99999999999999999999s
        [ 1.4] EXT4-fs error (device vda): ext4_lookup:99999999999: inode #12: comm ls: iget: checksum invalid
        [ 1.5] EXT4-fs error (device vda): ext4_lookup:1860: inode #99999999999999999999: comm ls: iget: checksum invalid

        """)
        // The pid and the waited seconds do not fit: those lines are skipped and counted.
        #expect(r.stats.malformedLines == 3)
        #expect(r.events.count == 3)
        guard case .deviceTimeout(let t)? = r.events.first else { Issue.record("\(r.events)"); return }
        #expect(t.tag == nil && t.queue == nil)   // out of range: not invented
        guard case .filesystem(let a)? = r.events.dropFirst().first, case .corruption(let c) = a.kind else { Issue.record("\(r.events)"); return }
        #expect(c.sourceLine == nil && c.inode == 12 && c.structure == .inode)
        // An inode number past 64 bits cannot be read: still an ext4 error, not a guessed corruption report.
        guard case .filesystem(let b)? = r.events.last, case .error = b.kind else { Issue.record("\(r.events)"); return }
    }
}
