import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeHost

/// One failure, several kernel messages: each failed request is counted once (HostFailureGrouping).
/// The messages are the kernel's own, in the order its code prints them (Linux 6.1).
@Suite struct HostFailureGroupingTests {
    static func read(_ lines: [String]) throws -> HostKernelReport {
        try HostKernelMessageTests.read(lines.joined(separator: "\n") + "\n")
    }

    /// scsi_io_completion_action: Result, Sense Key, Add. Sense, CDB; then blk_print_req_error.
    static let scsiRead = [
        "[ 3600.000001] sd 2:0:0:0: [sdb] tag#12 FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_OK cmd_age=0s",
        "[ 3600.000002] sd 2:0:0:0: [sdb] tag#12 Sense Key : Medium Error [current] ",
        "[ 3600.000003] sd 2:0:0:0: [sdb] tag#12 Add. Sense: Unrecovered read error",
        "[ 3600.000004] sd 2:0:0:0: [sdb] tag#12 CDB: Read(10) 28 00 00 00 08 00 00 00 08 00",
        "[ 3600.000005] critical medium error, dev sdb, sector 2048 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2",
    ]

    @Test func oneFailedSCSIReadIsOneFailure() throws {
        let r = try Self.read(Self.scsiRead)
        #expect(r.failures == 1 && r.findingsTotal == 4)
        #expect(r.findings.map(\.partOfLine) == [nil, 1, 1, 1])
        let sdb = try #require(r.devices.first { $0.device == "sdb" })
        #expect(sdb.failures == 1 && sdb.findings == 4)
        #expect(sdb.operations == ["read": 1] && sdb.errnos == ["ENODATA": 1])
    }

    /// Two queued commands failing together: their lines interleave, each `I/O error` ends the
    /// oldest command still waiting for it. Two failures, not three or eight.
    @Test func interleavedCommandsStayTwoFailures() throws {
        let r = try Self.read([
            "[ 10.000001] sd 2:0:0:0: [sdb] tag#1 FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_OK cmd_age=0s",
            "[ 10.000002] sd 2:0:0:0: [sdb] tag#2 FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_OK cmd_age=0s",
            "[ 10.000003] sd 2:0:0:0: [sdb] tag#1 Sense Key : Medium Error [current] ",
            "[ 10.000004] sd 2:0:0:0: [sdb] tag#2 Sense Key : Medium Error [current] ",
            "[ 10.000005] critical medium error, dev sdb, sector 2048 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2",
            "[ 10.000006] critical medium error, dev sdb, sector 4096 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2",
        ])
        #expect(r.failures == 2 && r.findingsTotal == 6)
        #expect(r.findings.map(\.partOfLine) == [nil, nil, 1, 2, 1, 2])
    }

    /// Two requests failing one after the other are two failures, each with its own message.
    @Test func separateBlockErrorsAreSeparateFailures() throws {
        let r = try Self.read([
            "[ 10.000001] I/O error, dev loop0, sector 8 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2",
            "[ 10.000002] I/O error, dev loop0, sector 16 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2",
            "[ 10.000003] Buffer I/O error on dev loop0, logical block 2, lost async page write",
        ])
        #expect(r.failures == 2 && r.findings.map(\.partOfLine) == [nil, nil, 2])
    }

    /// Far apart in time, the same sequence is not folded: a SCSI failure whose block message
    /// the rate limiter dropped and a later unrelated block error stay two.
    @Test func messagesFarApartAreNotFolded() throws {
        let r = try Self.read([
            "[ 10.000001] sd 2:0:0:0: [sdb] tag#1 FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_OK cmd_age=0s",
            "[ 20.000001] I/O error, dev sdb, sector 8 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2",
        ])
        #expect(r.failures == 2)
    }

    /// nvme_end_req: nvme_log_error, then the block layer's message; an ATA exception report
    /// and the EH's link reset; ext4's error and the remount it causes.
    @Test func nvmeATAAndFilesystemSequences() throws {
        let r = try Self.read([
            "[ 1.000001] nvme0n1: Read(0x2) @ LBA 2048, 8 blocks, Unrecovered Read Error (sct 0x2 / sc 0x81) DNR ",
            "[ 1.000002] critical medium error, dev nvme0n1, sector 16384 op 0x0:(READ) flags 0x80700 phys_seg 13 prio class 2",
            "[ 2.000000] ata1.00: exception Emask 0x0 SAct 0x0 SErr 0x0 action 0x6 frozen",
            "[ 2.000001] ata1.00: failed command: READ FPDMA QUEUED",
            "[ 2.000002] ata1.00: error: { UNC }",
            "[ 2.000003] ata1: hard resetting link",
            "[ 3.000000] EXT4-fs error (device dm-2): ext4_find_entry:1615: inode #2: comm qemu-system-x86: reading directory lblock 0",
            "[ 3.000001] EXT4-fs (dm-2): Remounting filesystem read-only",
        ])
        #expect(r.failures == 3 && r.findingsTotal == 8)
        let nvme = try #require(r.devices.first { $0.device == "nvme0n1" })
        #expect(nvme.failures == 1 && nvme.operations.count == 1)
    }

    /// The tracepoint recorded the request: the SCSI messages of the kernel log are that
    /// request's, not a second failure.
    @Test func tracedSCSIRequestCountsOnce() throws {
        var analysis = HostKernelAnalysis()
        var t = HostKernelFinding(kind: .blockError, device: "sdb", time: .init(uptimeMicroseconds: 3_600_000_005), line: 1, message: "")
        t.source = .blockTracepoint; t.sector = 2048; t.operation = "read"
        analysis.consume(.finding(t))
        var reader = HostKernelLogReader()
        try reader.read(MemoryByteSource(Array((Self.scsiRead.joined(separator: "\n") + "\n").utf8), name: "t"), into: &analysis)
        let r = analysis.report(source: "t", input: reader.stats)
        #expect(r.input.blockErrorsAlsoTraced == 1)
        #expect(r.failures == 1)
        #expect(r.devices.first { $0.device == "sdb" }?.failures == 1)
    }

    /// The text names kinds in words and says which messages are one failure.
    @Test func textSaysFailuresAndMessages() throws {
        let text = HostReportRenderer.text(try Self.read(Self.scsiRead))
        #expect(text.contains("1 failure on 1 device"))
        #expect(text.contains("sdb — 1 failure (4 messages: 2 SCSI sense, 1 SCSI command failed, 1 block I/O error); 1 read; 1 ENODATA"))
        #expect(text.contains("SCSI sense sdb — same failure as line 1"))
        #expect(!text.contains("scsiSense"))
    }
}
