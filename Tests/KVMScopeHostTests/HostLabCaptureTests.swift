import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeHost

/// The host kernel logs the lab captured while the host storage under a guest failed for real.
@Suite struct HostLabCaptureTests {
    static func read(_ scenario: String) throws -> HostKernelReport {
        var reader = HostKernelLogReader()
        var analysis = HostKernelAnalysis()
        let source = try FileByteSource(path: LabFixtures.path(scenario, "host-dmesg.log"))
        try reader.read(source, into: &analysis)
        return analysis.report(source: source.name, input: reader.stats)
    }

    /// host-disk-eio: the FUSE file under loop0 failed the guest's write and read; mkfs's
    /// unsupported DISCARD/WRITE_ZEROES, the attach and the mounts are noise.
    @Test func loopDeviceUnderTheImageFailedWriteAndRead() throws {
        let r = try Self.read("host-disk-eio")
        #expect(r.input.styles[.dmesgISO] == r.input.lines)
        #expect(r.findings.map(\.kind) == [.blockError, .blockError])
        let w = r.findings[0], rd = r.findings[1]
        #expect(w.device == "loop0" && w.sector == 133120 && w.operation == "write" && w.errno == "EIO" && w.flags == 0x8800)
        #expect(rd.device == "loop0" && rd.sector == 133152 && rd.operation == "read" && rd.errno == "EIO")
        // The wall clock as dmesg printed it.
        #expect(w.time.wallClock?.description == "2026-12-01T11:50:31.425726Z")
        // run.txt's FIEMAP line: guest sectors 2048..2175 are loop0 sectors 133120..133247.
        let run = try String(contentsOfFile: LabFixtures.path("host-disk-eio", "run.txt"), encoding: .utf8)
        #expect(run.contains("guest sectors 2048..2175 of $WORK/hostext4/disk.img are host ext4 blocks 16640..16655 = /dev/loop0 sectors 133120..133247"))
        #expect(r.noise[.unsupportedOptionalOperation] == 7 && r.noise[.capacityChange] == 1 && r.noise[.filesystemMounted] == 1)
        let d = try #require(r.devices.first { $0.device == "loop0" })
        #expect(d.findings == 2 && d.sectors == [133120, 133152] && d.noise[.unsupportedOptionalOperation] == 7)
    }

    /// Past --detail-limit findings are counted and summarised, not listed; the listed ones
    /// keep their line's text.
    @Test func detailLimitListsTheFirstFindingsWithTheirText() throws {
        var reader = HostKernelLogReader()
        var analysis = HostKernelAnalysis(detailLimit: 1)
        try reader.read(try FileByteSource(path: LabFixtures.path("host-disk-eio", "host-dmesg.log")), into: &analysis)
        let r = analysis.report(source: "x", input: reader.stats)
        #expect(r.findings.count == 1 && r.findingsTotal == 2)
        #expect(r.findings[0].message == "I/O error, dev loop0, sector 133120 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2")
        #expect(r.devices.first?.findings == 2 && r.devices.first?.sectors == [133120, 133152])
    }

    /// host-fs-full: the tmpfs filled up and the host kernel logged nothing about it.
    @Test func fullTmpfsLeavesNothingInTheHostLog() throws {
        let r = try Self.read("host-fs-full")
        #expect(!r.hasFailures && r.findingsTotal == 0)
        #expect(r.input.kernelMessages == r.input.lines)
    }
}
