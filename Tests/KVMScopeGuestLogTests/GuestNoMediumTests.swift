import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeGuestLog

/// An empty CD-ROM answers reads with NOT READY / MEDIUM NOT PRESENT (ASC 3A): the drive has no
/// medium, nothing failed. Those commands, and the block and buffer errors that go with them,
/// are reported as `noMedium`, not as the device's failures.
@Suite struct GuestNoMediumTests {
    typealias F = GuestFixtures

    static func group(_ t: String, tag: Int = 0, sense: String = "Not Ready", words: String = "Medium not present",
                      cdb: String = "Read(10) 28 00 00 00 00 00 00 00 02 00", sector: Int = 0) -> String {
        """
        [    \(t)000] sr 0:0:0:0: [sr0] tag#\(tag) FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_OK cmd_age=0s
        [    \(t)010] sr 0:0:0:0: [sr0] tag#\(tag) Sense Key : \(sense) [current]
        [    \(t)020] sr 0:0:0:0: [sr0] tag#\(tag) Add. Sense: \(words)
        [    \(t)030] sr 0:0:0:0: [sr0] tag#\(tag) CDB: \(cdb)
        [    \(t)040] I/O error, dev sr0, sector \(sector) op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2

        """
    }

    @Test func emptyCDROMIsNoMediumNotAFailure() throws {
        let r = try F.report(file: F.fixture("empty-cdrom-6.1.log"))
        #expect(!r.hasDiskErrors)
        let sr0 = try #require(F.device(r, "sr0"))
        #expect(!sr0.hasErrors)
        #expect(sr0.totalBlockErrors == 0)
        #expect(sr0.blockErrors.isEmpty)
        #expect(sr0.totalBufferErrors == 0)
        #expect(sr0.bufferErrors.isEmpty)
        #expect(sr0.lostBlocks.asyncRead == 0)
        #expect(sr0.sectorRanges.isEmpty)
        #expect(sr0.operations.isEmpty)
        #expect(sr0.errorTypes.isEmpty)
        #expect(sr0.firstError == nil)
        #expect(sr0.scsi?.commandFailures == 0)
        #expect(sr0.scsi?.failedRequests.isEmpty == true)
        #expect(sr0.scsi?.senseKeys.isEmpty == true)
        #expect(sr0.scsi?.results.isEmpty == true)
        let m = try #require(sr0.noMedium)
        #expect(m.count == 2)
        #expect(m.blockErrors == 2)
        #expect(m.bufferErrors == 1)
        #expect(m.additionalSense == "Medium not present")
        #expect(m.operation == "read")
        #expect(m.first.line == 10)
        #expect(m.last.line == 19)   // the second command's block error
        let text = GuestReportRenderer.text(r)
        #expect(text.contains("No disk errors in"))
        #expect(text.contains("sr0: no medium in the drive (2 reads refused: Medium not present) — not a failure"))
    }

    /// The tray variants (3A/01, 3A/02) are no medium too, by their words or by printed numbers.
    @Test func trayOpenAndPrintedCodesAreNoMedium() throws {
        let log = Self.group("3.210", words: "Medium not present - tray open")
            + Self.group("4.210", words: "ASC=0x3a ASCQ=0x1")
        let r = try F.report(log)
        #expect(!r.hasDiskErrors)
        #expect(F.device(r, "sr0")?.noMedium?.count == 2)
    }

    /// Real failures of the same drive still count: only the no-medium commands are taken out.
    @Test func otherSenseOnTheSameDriveStillFails() throws {
        let log = Self.group("3.210")
            + Self.group("5.100", sense: "Medium Error", words: "Unrecovered read error",
                         cdb: "Read(10) 28 00 00 00 00 10 00 00 01 00", sector: 64)
        let r = try F.report(log)
        #expect(r.hasDiskErrors)
        let sr0 = try #require(F.device(r, "sr0"))
        #expect(sr0.hasErrors)
        #expect(sr0.totalBlockErrors == 1)
        #expect(sr0.blockErrors.map(\.sector) == [64])
        #expect(sr0.sectorRanges.map(\.first) == [64])
        #expect(sr0.scsi?.commandFailures == 1)
        #expect(sr0.scsi?.failedRequests.first?.senseKey == "Medium Error")
        #expect(sr0.scsi?.senseKeys == ["Medium Error": 1])
        #expect(sr0.noMedium?.count == 1)
        #expect(sr0.noMedium?.blockErrors == 1)
        #expect(GuestReportRenderer.text(r).contains("also no medium in the drive (1 read refused: Medium not present): not a failure, not counted above"))
    }

    /// NOT READY for another reason (becoming ready, 04/01) is not "no medium".
    @Test func notReadyForAnotherReasonIsAFailure() throws {
        let r = try F.report(Self.group("3.210", words: "Logical unit is in process of becoming ready"))
        #expect(r.hasDiskErrors)
        #expect(F.device(r, "sr0")?.noMedium == nil)
        #expect(F.device(r, "sr0")?.totalBlockErrors == 1)
    }

    /// A quiet console shows the KERN_ERR block and buffer errors first; the dmesg replay after
    /// it has the SCSI lines (its block error, the same line, is dropped as a duplicate).
    @Test func consoleThenReplayIsNoMediumToo() throws {
        let console = """
            [    3.210040] I/O error, dev sr0, sector 0 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2
            [    3.210050] Buffer I/O error on dev sr0, logical block 0, async page read

            """
        let r = try F.report(console + Self.group("3.210")
                             + "[    3.210050] Buffer I/O error on dev sr0, logical block 0, async page read\n")
        #expect(!r.hasDiskErrors)
        let sr0 = try #require(F.device(r, "sr0"))
        #expect(sr0.totalBlockErrors == 0)
        #expect(sr0.totalBufferErrors == 0)
        #expect(sr0.noMedium?.blockErrors == 1)
        #expect(sr0.noMedium?.bufferErrors == 1)
    }
}
