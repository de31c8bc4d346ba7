import Foundation
import Testing
@testable import KVMScopeExplain
import KVMScopeHost
import KVMScopeTestSupport

/// `explain` with the host's own kernel log (issue 13): the lab's real host-layer failures —
/// ext4 on a loop device over a FUSE file that returns EIO (the host kernel logs `I/O error,
/// dev loop0`), and a size-limited tmpfs that fills up (the host kernel logs nothing).
@Suite struct ExplainHostLayerTests {
    static func run(_ scenario: String, hostLog: ByteStream? = nil, withHostLog: Bool = true) throws -> ExplainReport {
        var inputs = ExplainSession.Inputs(guest: try FileByteSource(path: LabFixtures.path(scenario, "console.log")),
                                           trace: try FileByteSource(path: LabFixtures.path(scenario, "trace.log")),
                                           qmp: try FileByteSource(path: LabFixtures.path(scenario, "qmp.jsonl")))
        if withHostLog { inputs.hostLog = try hostLog ?? FileByteSource(path: LabFixtures.path(scenario, "host-dmesg.log")) }
        return try ExplainSession.run(inputs)
    }

    static func hostDmesg(_ scenario: String) throws -> String {
        try String(contentsOfFile: LabFixtures.path(scenario, "host-dmesg.log"), encoding: .utf8)
    }

    /// The FIEMAP the lab took before injecting (run.txt): guest sectors 2048..2175 of the
    /// image are loop0 sectors 133120..133247. The host kernel's sectors are the guest's,
    /// moved by that extent: the tie by time is also right by place.
    @Test func failingHostDiskIsNamedWithItsSectorsAndTheGuestsSectors() throws {
        let r = try Self.run("host-disk-eio")
        #expect(r.verdict.origin == .hostStorage)
        #expect(r.verdict.layer == "host-block-device" && r.verdict.hostDevice == "loop0")
        #expect(r.verdict.summary.contains("its block device loop0 failed 1 write and 1 read with EIO at its sectors 133120, 133152"))
        let tied = r.layers.filter { $0.hostFinding != nil }
        #expect(tied.count == 2)
        for l in tied {
            let guest = try #require(l.guestSector), host = try #require(l.hostSector)
            #expect(host == guest + 133120 - 2048, "guest \(guest) host \(host)")
            #expect(l.guestDevice == "vda" && l.hostDevice == "loop0" && l.hostErrno == "EIO" && l.qemuErrno == "EIO")
            #expect(l.hostLine.map { $0 > 0 } == true)
            #expect(abs(l.timeDeltaSeconds ?? 1) < 0.005)
        }
        #expect(Set(tied.map(\.operation)) == ["write", "read"])
        // The lab's marker says dmesg's clock ran 0.431 s behind the wall clock at the start.
        let o = try #require(r.hostClockOffsetSeconds)
        #expect(o > 0.3 && o < 0.6)
        #expect(r.hostClockBasis == "wall-clock")
        #expect(r.nextSteps.contains { $0.contains("losetup -l /dev/loop0") })
        // The host kernel's two errors are in the timeline, on QEMU's clock, beside QEMU's failures.
        let kernel = r.timeline.filter { $0.source == .hostKernel }
        #expect(kernel.count == 2 && kernel.allSatisfy { $0.what.contains("loop0") })
        for k in kernel { #expect(r.timeline.contains { $0.source == .host && abs($0.time - k.time) < 0.001 }) }
        #expect(r.inputs.understood.contains { $0.role == "host-kernel-log" && $0.linesRecognised > 0 })
        // The mkfs noise seconds before (WRITE_ZEROES not supported) is never a failure.
        #expect(r.hostKernel?.noise[.unsupportedOptionalOperation] ?? 0 >= 0)
        #expect(!tied.contains { $0.hostSector == 200 })
    }

    /// A full host filesystem: ENOSPC from QEMU, and the host kernel, whose log covers the
    /// moment, logged nothing — which is what a full filesystem does.
    @Test func fullHostFilesystemIsSaidWithTheKernelsSilence() throws {
        let r = try Self.run("host-fs-full")
        #expect(r.verdict.layer == "host-filesystem-full" && r.verdict.hostDevice == nil)
        #expect(r.layers.count == 2 && r.layers.allSatisfy { $0.qemuErrno == "ENOSPC" && $0.hostFinding == nil })
        #expect(r.verdict.summary.contains("ran out of space"))
    }

    /// The same silent log, but the kernel's rate limiter dropped messages from it (the format
    /// of lib/ratelimit.c ___ratelimit: "%s: %d callbacks suppressed"): the silence proves
    /// nothing, so neither the full filesystem nor any other layer is concluded.
    @Test func aRateLimitedHostLogConcludesNothingFromItsSilence() throws {
        var log = try Self.hostDmesg("host-fs-full").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        log.insert("2026-12-01T11:43:30,000000+00:00 blk_print_req_error: 37 callbacks suppressed", at: 1)
        let r = try Self.run("host-fs-full", hostLog: MemoryByteSource(log.joined(separator: "\n"), name: "host-dmesg.log"))
        #expect(r.verdict.layer == nil && r.verdict.hostDevice == nil)
        #expect(r.layers.count == 2 && r.layers.allSatisfy { $0.layer == "host-log-rate-limited" })
        #expect(!r.verdict.summary.contains("ran out of space"))
        #expect(r.verdict.summary.contains("rate limiter dropped 37 messages"))
        #expect(r.nextSteps.contains { $0.contains("block:block_rq_error") })
    }

    /// Without the host log the verdict names no layer below QEMU, and says what would.
    @Test func withoutTheHostLogNoLayerIsNamedAndTheLogIsAskedFor() throws {
        let r = try Self.run("host-disk-eio", withHostLog: false)
        #expect(r.verdict.origin == .hostStorage && r.verdict.layer == nil && r.layers.isEmpty)
        #expect(r.missing.contains { $0.contains("--host-log") })
        #expect(!r.verdict.summary.contains("loop0"))
    }

    /// One unrelated host error a minute from QEMU's failure, in a zoned log: the clock is not
    /// moved 59 s to make that one pair line up (it then read "at the same moment (within 1 ms)";
    /// found by an admin's review). Nothing ties, and sdz is never named.
    @Test func oneFarHostErrorIsNotTiedByMovingTheClock() throws {
        let far = """
        2026-12-01T11:40:00,000000+00:00 EXT4-fs (sda1): mounted filesystem with ordered data mode
        2026-12-01T11:51:31,100000+00:00 I/O error, dev sdz, sector 77 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2

        """
        let r = try Self.run("host-disk-eio", hostLog: MemoryByteSource(far, name: "hd-far.log"))
        #expect(r.verdict.hostDevice != "sdz")
        #expect(!r.layers.contains { $0.hostDevice == "sdz" })
        #expect(!r.verdict.summary.contains("sdz"))
    }

    /// A host log of another day: nothing ties, the log does not cover the failures, and no
    /// layer is named (rather than "the host kernel logged nothing").
    @Test func hostLogOfAnotherTimeCoversNothing() throws {
        let other = try Self.hostDmesg("host-disk-eio").replacingOccurrences(of: "2026-12-01T", with: "2026-11-30T")
        let r = try Self.run("host-disk-eio", hostLog: MemoryByteSource(other, name: "host-dmesg-yesterday.log"))
        #expect(r.verdict.layer == nil)
        #expect(r.layers.allSatisfy { $0.layer == "host-log-does-not-cover" && $0.hostFinding == nil })
        #expect(r.verdict.summary.contains("does not cover"))
        #expect(!r.verdict.summary.contains("logged nothing"))
    }

    /// The same log as plain `dmesg` (printk's uptime stamps, no wall clock): the host's boot
    /// time is estimated from the two failures seen on both sides.
    @Test func uptimeStampedHostLogIsTiedThroughTheFailures() throws {
        let uptimeLog = try Self.hostDmesg("host-disk-eio").split(separator: "\n").map { line -> String in
            // "2026-12-01T11:50:31,425726+00:00 msg" → "[ 4031.425726] msg" (boot at 10:43:20).
            let l = String(line)
            guard l.count > 33, let h = Int(l.dropFirst(11).prefix(2)), let m = Int(l.dropFirst(14).prefix(2)),
                  let s = Int(l.dropFirst(17).prefix(2)) else { return l }
            let up = (h - 10) * 3600 + (m - 43) * 60 + (s - 20)
            return "[" + String(repeating: " ", count: max(0, 5 - String(up).count)) + "\(up).\(l.dropFirst(20).prefix(6))] " + l.dropFirst(33)
        }.joined(separator: "\n") + "\n"
        let r = try Self.run("host-disk-eio", hostLog: MemoryByteSource(uptimeLog, name: "host-dmesg-raw.log"))
        #expect(r.hostClockBasis == "uptime")
        #expect(r.verdict.layer == "host-block-device" && r.verdict.hostDevice == "loop0")
        #expect(r.layers.filter { $0.hostFinding != nil }.count == 2)
    }

    /// The same moments with a multipath path failing instead (drivers/md/dm-mpath.c
    /// fail_path: `Failing path %s.`): the layer is named for what the host kernel said.
    @Test func multipathFailureAtTheMomentNamesMultipath() throws {
        let mp = try Self.hostDmesg("host-disk-eio").split(separator: "\n").map { l -> String in
            guard let r = l.range(of: "I/O error, dev loop0") else { return String(l) }
            return l[..<r.lowerBound] + "device-mapper: multipath: 253:0: Failing path 8:16."
        }.joined(separator: "\n") + "\n"
        let r = try Self.run("host-disk-eio", hostLog: MemoryByteSource(mp, name: "host-dmesg-multipath.log"))
        #expect(r.verdict.layer == "multipath" && r.verdict.hostDevice == "253:0")
        #expect(r.verdict.summary.contains("multipath failure on 253:0"))
        #expect(r.nextSteps.contains { $0.contains("multipath -ll") })
    }

    /// blkdebug's injected EIO with a host log that covers the moment and is silent: the
    /// error came from a layer the host kernel does not log (here QEMU's own block layer).
    @Test func silentHostLogOverAnInjectedFaultSaysSo() throws {
        let bare = try Self.run("write-eio", withHostLog: false)
        let t = try #require(bare.host?.failures.first?.time)
        func iso(_ s: Double) -> String {
            let f = ISO8601DateFormatter()
            f.formatOptions = [.withInternetDateTime]
            f.timeZone = TimeZone(identifier: "UTC")
            return f.string(from: Date(timeIntervalSince1970: s)).replacingOccurrences(of: "Z", with: ",000000+00:00")
        }
        let log = "\(iso(t - 30)) EXT4-fs (sda1): re-mounted. Quota mode: none.\n\(iso(t + 30)) loop1: detected capacity change from 0 to 8192\n"
        let r = try Self.run("write-eio", hostLog: MemoryByteSource(log, name: "host-dmesg-quiet.log"))
        #expect(r.verdict.layer == "not-logged-by-host-kernel")
        #expect(r.verdict.summary.contains("QEMU's own block layer or an injected fault"))
        #expect(r.nextSteps.contains { $0.contains("blkdebug") })
    }

    /// Run on the VM's host, the image's extents tie the host sector to the guest sector by
    /// place. The extent is the lab's own FIEMAP (run.txt): guest sectors 2048..2175 of
    /// disk.img are loop0 sectors 133120..133247; one 8 sectors off is caught.
    @Test func imageExtentsOnThisHostTieThePlaceToo() throws {
        func run(physicalSector: UInt64) throws -> ExplainReport {
            var inputs = ExplainSession.Inputs(guest: try FileByteSource(path: LabFixtures.path("host-disk-eio", "console.log")),
                                               trace: try FileByteSource(path: LabFixtures.path("host-disk-eio", "trace.log")),
                                               qmp: try FileByteSource(path: LabFixtures.path("host-disk-eio", "qmp.jsonl")))
            inputs.hostLog = try FileByteSource(path: LabFixtures.path("host-disk-eio", "host-dmesg.log"))
            inputs.qemuCommandLine = try FileByteSource(path: LabFixtures.path("host-disk-eio", "run.txt"))
            var img = HostImageLocation(path: "/srv/hostext4/disk.img", majorMinor: "7:0")
            img.device = "loop0"; img.disk = "loop0"; img.drive = "drive0"; img.guestOffsetsAreFileOffsets = true
            img.extents = [.init(logical: 2048 * 512, physical: physicalSector * 512, length: 128 * 512, unwritten: false, physicalKnown: true)]
            inputs.hostImages = [img]
            return try ExplainSession.run(inputs)
        }
        let right = try run(physicalSector: 133_120)
        #expect(right.layers.filter { $0.hostFinding != nil }.allSatisfy { $0.samePlace == true })
        #expect(right.layers.compactMap(\.expectedHostSector).sorted() == [133_120, 133_152])
        #expect(right.verdict.summary.contains("the same place as well as the same moment"))
        #expect(right.hostImages.first?.disk == "loop0")
        let off = try run(physicalSector: 133_128)
        #expect(off.layers.contains { $0.samePlace == false })
        #expect(off.verdict.summary.contains("not at the image's place"))
        #expect(!off.verdict.summary.contains("the same place as well"))
    }

    /// Offline, a saved `findmnt --json` of the VM's host says the image is on loop0 — the
    /// device the host kernel logged the errors on. (The capture's command line names
    /// `$WORK/hostext4/disk.img`; the fixture's mount is at /tmp/kvmscope-fixture/hostext4.)
    @Test func savedMountTableSaysTheImageIsOnTheFailingDevice() throws {
        let cmdline = try String(contentsOfFile: LabFixtures.path("host-disk-eio", "run.txt"), encoding: .utf8)
            .replacingOccurrences(of: "$WORK", with: "/tmp/kvmscope-fixture")
        var inputs = ExplainSession.Inputs(guest: try FileByteSource(path: LabFixtures.path("host-disk-eio", "console.log")),
                                           trace: try FileByteSource(path: LabFixtures.path("host-disk-eio", "trace.log")),
                                           qmp: try FileByteSource(path: LabFixtures.path("host-disk-eio", "qmp.jsonl")))
        inputs.hostLog = try FileByteSource(path: LabFixtures.path("host-disk-eio", "host-dmesg.log"))
        inputs.qemuCommandLine = MemoryByteSource(cmdline, name: "run.txt")
        inputs.hostMounts = [try FileByteSource(path: TestFixtures.dir.appendingPathComponent("host/findmnt-loop0.json").path)]
        let r = try ExplainSession.run(inputs)
        let img = try #require(r.hostImages.first)
        #expect(img.disk == "loop0" && img.drive == "drive0" && img.from.hasSuffix("findmnt-loop0.json"))
        #expect(r.verdict.summary.contains("The image /tmp/kvmscope-fixture/hostext4/disk.img is on loop0"))
        // No extents offline: nothing is claimed about the place.
        #expect(r.layers.allSatisfy { $0.samePlace == nil })
        // A file that is no mount table is refused.
        inputs.hostMounts = [MemoryByteSource("root:x:0:0::/root:/bin/sh\n", name: "passwd")]
        inputs.guest = try FileByteSource(path: LabFixtures.path("host-disk-eio", "console.log"))
        inputs.trace = try FileByteSource(path: LabFixtures.path("host-disk-eio", "trace.log"))
        inputs.qmp = try FileByteSource(path: LabFixtures.path("host-disk-eio", "qmp.jsonl"))
        inputs.hostLog = try FileByteSource(path: LabFixtures.path("host-disk-eio", "host-dmesg.log"))
        inputs.qemuCommandLine = MemoryByteSource(cmdline, name: "run.txt")
        #expect(throws: KVMScopeError.self) { _ = try ExplainSession.run(inputs) }
    }

    /// QEMU killed by the host's OOM killer (mm/oom_kill.c __oom_kill_process: `Out of memory:
    /// Killed process %d (%s) total-vm:%lukB, ...`) is said whatever else the verdict is.
    @Test func qemuKilledByTheOOMKillerIsSaid() throws {
        let oom = "2026-12-01T11:50:33,100000+00:00 Out of memory: Killed process 17716 (qemu-system-x86) total-vm:2456780kB, anon-rss:1048576kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:2400kB oom_score_adj:0\n"
        let log = try Self.hostDmesg("host-disk-eio") + oom
        let r = try Self.run("host-disk-eio", hostLog: MemoryByteSource(log, name: "host-dmesg-oom.log"))
        #expect(r.verdict.summary.contains("The host kernel reports QEMU itself: killed by the OOM killer"))
        #expect(r.verdict.layer == "host-block-device")
    }

    /// A directory's host-dmesg.log is the host's log, never a second guest log; named on the
    /// command line it is taken by its name.
    @Test func hostLogIsTakenByNameNeverAsTheGuests() throws {
        var inputs = ExplainSession.Inputs()
        let dir = LabFixtures.repoRoot.appendingPathComponent("lab/scenarios/host-disk-eio").path
        try ExplainSession.classify(try ExplainSession.streams(inDirectory: dir)
                                    + [FileByteSource(path: LabFixtures.path("host-disk-eio", "host-dmesg.log"))], into: &inputs)
        #expect(inputs.guest?.name.hasSuffix("console.log") == true)
        #expect(inputs.hostLog?.name.hasSuffix("host-dmesg.log") == true)
        #expect(try ExplainSession.hostLog(inDirectory: dir)?.name.hasSuffix("host-dmesg.log") == true)
    }

    /// A file given as the host log with no kernel message in it is refused, never read as clean.
    @Test func hostLogWithNoKernelMessageIsRefused() throws {
        #expect(throws: KVMScopeError.self) {
            _ = try Self.run("host-disk-eio", hostLog: MemoryByteSource("root:x:0:0:root:/root:/bin/bash\n", name: "passwd"))
        }
    }
}
