import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeGuestLog

@Suite struct GuestDiskAnalysisTests {
    typealias F = GuestFixtures

    @Test func classicReportExcerpt() throws {
        let r = try F.report(file: F.fixture("classic-report.log"))
        #expect(r.devices.map(\.name) == ["vda", "dm-0"])
        let vda = try #require(F.device(r, "vda"))
        #expect(vda.totalBlockErrors == 1)
        #expect(vda.blockErrors.first?.sector == 494_491)
        #expect(vda.blockErrors.first?.shape == .endRequest)
        #expect(vda.operations == ["unreported": 1])
        #expect(vda.errorTypes == ["I/O": 1])
        #expect(vda.sectorRanges == [SectorRange(first: 494_491, last: 494_491, errors: 1, operations: BlockIOOperationSet())])
        #expect(vda.firstError == GuestLogLocation(line: 1, time: GuestLogTime(uptimeMicroseconds: 439_490_934)))

        let dm = try #require(F.device(r, "dm-0"))
        #expect(dm.kind == .deviceMapper)
        // The lost-page-write line tells the kind of the buffer error before it; it is not a second block.
        #expect(dm.totalBufferErrors == 1)
        #expect(dm.bufferErrors.count == 1)
        #expect(dm.bufferErrors[0].event.logicalBlock == 6_419_939)
        #expect(dm.bufferErrors[0].loss == .write)
        #expect(dm.bufferErrors[0].lossInferred == "lost-page-write-line")
        #expect(dm.lostBlocks.write == 1)
        #expect(dm.lostBlocks.unknown == 0)
        #expect(dm.inferredBlockSize == nil)
        #expect(r.hasDiskErrors)

        // dm-0's block is a filesystem block, not a disk sector: the text says so and converts nothing.
        let text = GuestReportRenderer.text(r)
        #expect(text.contains("dm-0 is a device-mapper device"))
        #expect(text.contains("not disk sectors"))
        #expect(text.contains("logical block 6419939 (filesystem blocks on dm-0, size not stated in the log)"))
        #expect(text.contains("printed by a ≤3.17 kernel"))
    }

    @Test func ubuntu2631UsbDiskUnderExt4() throws {
        let r = try F.report(file: F.fixture("ubuntu-2.6.31-usb-ext4.log"))
        let sdb = try #require(F.device(r, "sdb"))
        #expect(sdb.totalBlockErrors == 2)
        #expect(sdb.sectorRanges.map(\.first) == [543_345_607, 543_345_847])
        #expect(sdb.scsi?.results == ["hostbyte=DID_ERROR driverbyte=DRIVER_OK": 2])
        #expect(sdb.scsi?.unhandled == 2)
        #expect(sdb.scsi?.address == "7:0:0:0")
        let sdb1 = try #require(F.device(r, "sdb1"))
        #expect(sdb1.kind == .partition(of: "sdb"))
        #expect(sdb1.filesystems.count == 1)
        let fs = sdb1.filesystems[0]
        #expect(fs.type == "ext4")   // the journal spoke first; ext4 names the filesystem
        #expect(fs.journalAborted)
        #expect(fs.journalAbortedAt?.line == 11)
        #expect(fs.journalDataFlushErrors == 1)
        #expect(fs.journalSuperblockErrors == 1)
        #expect(fs.errors == 4)
        #expect(fs.errorFunctions == ["ext4_reserve_inode_write": 1, "ext4_dirty_inode": 1, "ext4_journal_start_sb": 2])
        #expect(fs.superblockWriteErrors == 1)
        #expect(!fs.readOnly)
        #expect(fs.evidence.first?.message == "JBD2: Detected IO errors while flushing file data on sdb1:8")
    }

    @Test func kmsgWithContinuationsAndExt4Writeback() throws {
        let r = try F.report(file: F.fixture("kmsg-4.13-scsi-ext4.log"))
        #expect(r.input.styles == [.kmsg: 19])
        #expect(r.input.notKernelLines == 8)          // " SUBSYSTEM=scsi", " DEVICE=+scsi:6:0:0:0"
        let sdf = try #require(F.device(r, "sdf"))
        #expect(sdf.totalBlockErrors == 1)
        #expect(sdf.blockErrors[0].shape == .printReqError)
        #expect(sdf.blockErrors[0].location.time.uptimeMicroseconds == 9_436_467_335)
        #expect(sdf.scsi?.results == ["hostbyte=DID_OK driverbyte=DRIVER_SENSE": 1])
        #expect(sdf.scsi?.senseKeys == ["Not Ready": 1])
        #expect(sdf.scsi?.additionalSense == ["Logical unit communication failure": 1])
        // `Buffer I/O error on device` in a 4.13+ kernel is ext4 writeback: async write loss.
        #expect(sdf.totalBufferErrors == 10)
        #expect(sdf.lostBlocks.asyncWrite == 10)
        #expect(sdf.lostBlocks.unknown == 0)
        #expect(sdf.bufferErrors.allSatisfy { $0.loss == .asyncWrite && $0.lossInferred == "ext4-writeback" })
        // 9984 is not 4960 × 2^k: no block size is claimed.
        #expect(sdf.inferredBlockSize == nil)
        // "buffer_io_error: 506 callbacks suppressed" goes to the device of the next buffer error.
        #expect(sdf.suppressed == 506)
        #expect(sdf.suppressedByFunction == ["buffer_io_error": 506])
        #expect(r.suppressed.bufferErrors == 506)
        #expect(r.suppressed.unattributed == 0)
        let fs = try #require(sdf.filesystems.first)
        #expect(fs.type == "ext4")
        #expect(fs.inodeWriteErrors == 1)
        #expect(fs.inodesWithWriteErrors == [12])
        #expect(fs.inodeWriteStatuses == ["BLK_STS_IOERR": 1])
        #expect(fs.journalDataFlushErrors == 2)
    }

    @Test func kernLogCriticalMedium() throws {
        let r = try F.report(file: F.fixture("kernlog-5.x-critical-medium.log"))
        #expect(r.input.styles == [.syslog: 5, .journal: 2])
        #expect(r.input.notKernelLines == 1)
        let sda = try #require(F.device(r, "sda"))
        #expect(sda.errorTypes == ["critical medium": 1])
        #expect(sda.operations == ["read": 1])
        #expect(sda.blockErrors[0].location.time.wallClock?.description == "Aug 26 09:12:55")
        #expect(sda.scsi?.additionalSense == ["ASC=0x11 ASCQ=0x0": 1])
        #expect(sda.scsi?.results == ["hostbyte=0x00 driverbyte=0x08": 1])
        let sdk = try #require(F.device(r, "sdk"))
        #expect(sdk.operations == ["write": 1])
        #expect(sdk.sectorRanges.first?.first == 130_611_915)
        // The offline rejection names only the SCSI address.
        #expect(F.device(r, "sd 8:0:0:0")?.scsi?.offlineRejections == 1)
        #expect(F.device(r, "sde")?.totalBlockErrors == 1)
    }

    @Test func mixedStylesSerialNoiseAndGarbage() throws {
        let r = try F.report(file: F.fixture("mixed-styles.log"))
        let names = Set(r.devices.map(\.name))
        #expect(names == ["vda", "vdb", "vdc", "vdd", "vde", "vdf", "vdg", "vdh", "vdi"])
        // User-space kmsg (vdz), another program's syslog line (vdy), binary junk (vdx), a cut line (vdj): none counted.
        #expect(r.input.notKernelLines == 2)
        #expect(r.input.binaryLines == 1)
        #expect(r.input.malformedLines == 1)
        #expect(r.input.firstMalformedLine == 17)
        #expect(r.input.styles[.printk] == 2)          // vda and the cut vdj line
        #expect(r.input.styles[.printkCaller] == 2)
        #expect(r.input.styles[.dmesgWallClock] == 1)
        #expect(r.input.styles[.dmesgISO] == 1)
        #expect(r.input.styles[.kmsg] == 1)
        #expect(r.input.styles[.journal] == 2)
        #expect(r.input.styles[.syslog] == 1)
        #expect(F.device(r, "vdc")?.operations == ["flush": 1])
        #expect(F.device(r, "vdc")?.sectorRanges == [])
        #expect(F.device(r, "vdd")?.operations == ["discard": 1])
        #expect(F.device(r, "vde")?.operations == ["write-zeroes": 1])
        #expect(F.device(r, "vdf")?.firstError?.time.uptimeMicroseconds == 5_140_900)
        #expect(F.device(r, "vdi")?.firstError?.time.uptimeMicroseconds == 439_490_934)
        #expect(F.device(r, "vdi")?.firstError?.time.wallClock?.description == "Nov 22 14:42:21")
        #expect(F.device(r, "vdh")?.firstError?.time.wallClock?.utcOffsetMinutes == 60)
        let text = GuestReportRenderer.text(r)
        #expect(text.contains("Skipped lines: 1 binary, 1 unreadable (first at line 17)."))
    }

    @Test func consoleFollowedByDmesgIsCountedOnce() throws {
        let line = "[    2.172479] I/O error, dev vda, sector 2048 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2\n"
        let text = "+ dd ...\n" + line + "kvmscope-lab: dmesg begin\n[    0.000000] Linux version 6.1.0\n" + line
        let once = try F.events(text)
        #expect(once.events.count == 1)
        #expect(once.stats.duplicateEvents == 1)
        let twice = try F.events(text, deduplicate: false)
        #expect(twice.events.count == 2)
        // The same message at a different time is a different event.
        let again = try F.events(line + line.replacingOccurrences(of: "2.172479", with: "2.172480"))
        #expect(again.events.count == 2)
        // Without an uptime stamp nothing is assumed to be a repeat.
        let bare = "I/O error, dev vda, sector 2048 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2\n"
        #expect(try F.events(bare + bare).events.count == 2)
    }

    @Test func suppressedMessagesAreAttributed() throws {
        let text = """
        [   10.000000] print_req_error: 4 callbacks suppressed
        [   10.000001] print_req_error: I/O error, dev sdb, sector 8
        [   11.000000] buffer_io_error: 9 callbacks suppressed
        [   11.000001] Buffer I/O error on dev sdb1, logical block 1, async page read
        [   12.000000] print_req_error: 2 callbacks suppressed
        [   13.000000] net_ratelimit: 5 callbacks suppressed

        """
        let r = try F.report(text)
        let sdb = try #require(F.device(r, "sdb"))
        // 4 before sdb's error, and 2 at the end with no later block error: both to sdb.
        #expect(sdb.suppressed == 6)
        #expect(sdb.suppressedByFunction == ["print_req_error": 6])
        #expect(F.device(r, "sdb1")?.suppressed == 9)
        #expect(r.suppressed.total == 20)
        #expect(r.suppressed.blockErrors == 6)
        #expect(r.suppressed.bufferErrors == 9)
        #expect(r.suppressed.other == 5)
        #expect(r.suppressed.unattributed == 0)
        // Only a suppression report, nothing to attribute it to.
        let lone = try F.report("[    1.0] blk_print_req_error: 3 callbacks suppressed\n")
        #expect(lone.suppressed.unattributed == 3)
        #expect(lone.devices.isEmpty)
        #expect(lone.hasDiskErrors)
    }

    @Test func detailIsCappedWhileCountsStayExact() throws {
        var text = ""
        for i in 0..<25 {
            text += "[   \(10 + i).000000] I/O error, dev vda, sector \(i * 1000) op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 2\n"
            text += "[   \(10 + i).000001] Buffer I/O error on dev vda, logical block \(i * 125), lost async page write\n"
        }
        let r = try F.report(text, detailLimit: 10)
        let vda = try #require(F.device(r, "vda"))
        #expect(vda.totalBlockErrors == 25)
        #expect(vda.blockErrors.count == 10)
        #expect(vda.blockErrors.last?.sector == 9000)
        #expect(vda.totalBufferErrors == 25)
        #expect(vda.bufferErrors.count == 10)
        #expect(vda.lostBlocks.asyncWrite == 25)
        #expect(vda.sectorRanges.count == 25)
        #expect(vda.inferredBlockSize == 4096)
        let json = try JSONSerialization.jsonObject(with: Data(GuestReportRenderer.json(r).utf8)) as! [String: Any]
        let d = (json["devices"] as! [[String: Any]])[0]
        #expect(d["blockErrorsTruncated"] as? Bool == true)
        #expect(d["totalBlockErrors"] as? Int == 25)
        #expect(d["bufferErrorsTruncated"] as? Bool == true)
        #expect(json["detailLimit"] as? Int == 10)
        #expect(GuestReportRenderer.text(r).contains("(individual errors listed in --json up to 10 in total; counts and ranges are exact)"))
    }

    @Test func bigLogStaysBounded() throws {
        // 200 000 errors on scattered sectors: ranges are coalesced, detail capped, counts exact.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(200_000 * 100)
        var rng = SystemRandomNumberGenerator()
        for i in 0..<200_000 {
            let sector = UInt64.random(in: 0..<1_000_000_000, using: &rng)
            bytes += Array("[\(i / 1000).\(100000 + i % 1000)] I/O error, dev vda, sector \(sector) op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2\n".utf8)
        }
        let r = try F.report(MemoryByteSource(bytes, maxChunk: 1 << 16), detailLimit: 1000, rangeLimit: 512)
        let vda = try #require(F.device(r, "vda"))
        #expect(vda.totalBlockErrors == 200_000)
        #expect(vda.blockErrors.count == 1000)
        #expect(vda.sectorRanges.count <= 512)
        #expect(vda.sectorRangesCoalesced)
        #expect(vda.sectorRanges.reduce(0) { $0 + $1.errors } == 200_000)
        #expect(GuestReportRenderer.text(r).contains("more ranges than kept: neighbours within"))
    }

    @Test func overlongAndBinaryInputNeverFails() throws {
        var bytes = Array("[    1.000000] I/O error, dev vda, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2\n".utf8)
        bytes += [UInt8](repeating: 0x41, count: 70_000) + [0x0A]
        bytes += (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) } + [0x0A]
        bytes += Array("[    2.000000] I/O error, dev vda, sector 16 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2".utf8)
        let r = try F.report(MemoryByteSource(bytes, maxChunk: 777))
        #expect(F.device(r, "vda")?.totalBlockErrors == 2)
        #expect(r.input.overlongLines == 1)
        #expect(r.input.binaryLines >= 1)
        #expect(r.input.endedMidLine)
    }

    @Test func partitionsAreNamedAsSuch() throws {
        let r = try F.report("[    1.0] Buffer I/O error on dev vda1, logical block 77, lost sync page write\n[    1.1] Buffer I/O error on dev nvme0n1p2, logical block 5, async page read\n")
        #expect(F.device(r, "vda1")?.kind == .partition(of: "vda"))
        #expect(F.device(r, "nvme0n1p2")?.kind == .partition(of: "nvme0n1"))
        let text = GuestReportRenderer.text(r)
        #expect(text.contains("vda1 — partition of vda"))
        #expect(text.contains("vda1 is a partition: its logical blocks count from the start of vda1"))
    }

    @Test func deviceNames() {
        #expect(BlockDeviceKind(name: "vda") == .disk)
        #expect(BlockDeviceKind(name: "sdaa") == .disk)
        #expect(BlockDeviceKind(name: "sdaa12") == .partition(of: "sdaa"))
        #expect(BlockDeviceKind(name: "xvdb1") == .partition(of: "xvdb"))
        #expect(BlockDeviceKind(name: "mmcblk0p1") == .partition(of: "mmcblk0"))
        #expect(BlockDeviceKind(name: "nvme0n1") == .disk)
        #expect(BlockDeviceKind(name: "dm-12") == .deviceMapper)
        #expect(BlockDeviceKind(name: "md127") == .md)
        #expect(BlockDeviceKind(name: "md127p1") == .partition(of: "md127"))
        #expect(BlockDeviceKind(name: "loop3") == .loop)
        #expect(BlockDeviceKind(name: "sr0") == .cdrom)
        #expect(BlockDeviceKind(name: "fd0") == .floppy)
        #expect(BlockDeviceKind(name: "nbd0") == .network)
    }
}

@Suite struct SectorRangeSetTests {
    @Test func neighboursWithinTheGapMerge() {
        var s = SectorRangeSet(limit: 100, mergeGap: 8)
        for sector: UInt64 in [100, 108, 116, 300, 301, 100, 500] { s.insert(sector, operation: .write) }
        s.insert(124, operation: .read)
        #expect(s.ranges == [
            SectorRange(first: 100, last: 124, errors: 5, operations: { var o = BlockIOOperationSet(.write); o.formUnion(BlockIOOperationSet(.read)); return o }()),
            SectorRange(first: 300, last: 301, errors: 2, operations: BlockIOOperationSet(.write)),
            SectorRange(first: 500, last: 500, errors: 1, operations: BlockIOOperationSet(.write)),
        ])
        #expect(!s.coalesced)
    }

    @Test func coalescesWhenOverTheLimitAndKeepsCountsExact() {
        var s = SectorRangeSet(limit: 64, mergeGap: 8, batch: 100)
        var inserted: [UInt64] = []
        for i in 0..<10_000 {
            let sector = UInt64((i * 7919) % 10_000) * 100
            inserted.append(sector)
            s.insert(sector, operation: .read)
        }
        let ranges = s.ranges
        #expect(ranges.count <= 64)
        #expect(s.coalesced)
        #expect(s.mergeGap > 8)
        #expect(ranges.reduce(0) { $0 + $1.errors } == 10_000)
        for (a, b) in zip(ranges, ranges.dropFirst()) { #expect(a.last < b.first) }
        for sector in inserted.prefix(200) {
            #expect(ranges.contains { $0.first <= sector && sector <= $0.last })
        }
    }
}

@Suite struct RecentKeyWindowTests {
    static func key(_ k: UInt64) -> UInt64 { k &* 0x9E3779B97F4A7C15 }

    @Test func remembersAtLeastOneGenerationAndForgetsOlderOnes() {
        var w = RecentKeyWindow(capacity: 100)
        var fresh: [Bool] = []
        for k in 1...150 as ClosedRange<UInt64> { fresh.append(w.insert(Self.key(k))) }
        #expect(fresh.allSatisfy { $0 })
        // The last 100 are certainly remembered.
        fresh = []
        for k in 51...150 as ClosedRange<UInt64> { fresh.append(w.insert(Self.key(k))) }
        #expect(fresh.allSatisfy { !$0 })
        // After two more generations the first keys are gone.
        for k in 1000...1300 as ClosedRange<UInt64> { _ = w.insert(Self.key(k)) }
        let forgotten = w.insert(Self.key(1))
        #expect(forgotten)
        // 0 is a valid key too (it is stored as 1 internally, the empty-slot marker being 0).
        let zeroFirst = w.insert(0)
        let zeroAgain = w.insert(0)
        #expect(zeroFirst)
        #expect(!zeroAgain)
    }

    /// The tables start small and double: every key of the last generation is still found
    /// after growing through every size up to the full one, and a copy taken mid-growth is its own.
    @Test func growsToTheFullGenerationAndRemembersIt() {
        var w = RecentKeyWindow(capacity: 1 << 15)
        var fresh = 0
        for k in 1...40_000 as ClosedRange<UInt64> where w.insert(Self.key(k)) { fresh += 1 }
        #expect(fresh == 40_000)
        var copy = w
        var remembered = 0
        for k in (40_001 - (1 << 15))...40_000 as ClosedRange<UInt64> where !w.insert(Self.key(k)) { remembered += 1 }
        #expect(remembered == 1 << 15)
        let copyFresh = copy.insert(Self.key(1_000_000))
        let originalFresh = w.insert(Self.key(1_000_000))
        #expect(copyFresh && originalFresh)
    }

    @Test func copiesDoNotShareState() {
        var a = RecentKeyWindow(capacity: 8)
        _ = a.insert(42)
        var b = a
        _ = b.insert(43)
        let aSaw43 = !a.insert(43)
        let bSaw42 = !b.insert(42)
        #expect(!aSaw43)
        #expect(bSaw42)
    }

    @Test func insertNewThenLookup() {
        var w = RecentKeyWindow(capacity: 8)
        for k in 1...8 as ClosedRange<UInt64> { w.insertNew(k << 40) }
        var fresh: [Bool] = []
        for k in 1...8 as ClosedRange<UInt64> { fresh.append(w.insert(k << 40)) }
        #expect(fresh.allSatisfy { !$0 })
    }

    @Test func operationIndexFollowsDeclarationOrder() {
        for (i, op) in BlockIOOperation.allCases.enumerated() {
            #expect(BlockIOOperationSet.index(op) == i, "\(op)")
        }
    }
}
