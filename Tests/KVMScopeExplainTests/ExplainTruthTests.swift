import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope
@testable import KVMScopeExplain

/// `explain` never says more than its evidence: on every real lab capture, with inputs taken
/// away, and on the captures made to catch its old false verdicts (a virtio-scsi disk beside a
/// virtio-blk trace, ext4 corrupted with every request succeeding).
@Suite struct ExplainTruthTests {
    struct Roles: OptionSet, Hashable, CustomStringConvertible {
        let rawValue: Int
        static let guest = Roles(rawValue: 1), trace = Roles(rawValue: 2), qmp = Roles(rawValue: 4), hostLog = Roles(rawValue: 8)
        static let all: Roles = [.guest, .trace, .qmp, .hostLog]
        var description: String {
            [(Roles.guest, "guest"), (.trace, "trace"), (.qmp, "qmp"), (.hostLog, "host-log")].filter { contains($0.0) }.map(\.1).joined(separator: "+")
        }
    }

    static func explain(_ scenario: String, _ roles: Roles = .all) throws -> ExplainReport {
        func open(_ file: String, _ role: Roles) throws -> ByteStream? {
            let p = LabFixtures.path(scenario, file)
            guard roles.contains(role), FileManager.default.fileExists(atPath: p) else { return nil }
            return try FileByteSource(path: p)
        }
        var inputs = ExplainSession.Inputs(guest: try open("console.log", .guest), trace: try open("trace.log", .trace),
                                           qmp: try open("qmp.jsonl", .qmp))
        inputs.hostLog = try open("host-dmesg.log", .hostLog)
        return try ExplainSession.run(inputs)
    }

    /// A verdict that names a layer (host storage, QEMU, the guest).
    static func namesALayer(_ o: ExplainReport.Origin) -> Bool {
        o == .hostStorage || o == .qemuRejected || o == .guestInternal
    }

    /// Taking inputs away never makes a verdict more specific: whatever a subset of the inputs
    /// blames, all of them blame too.
    @Test(arguments: LabFixtures.scenarios(with: "console.log"))
    func noVerdictGetsMoreSpecificWhenEvidenceIsRemoved(_ scenario: String) throws {
        var origins: [Roles: ExplainReport.Origin] = [:]
        var layers: [Roles: String] = [:]
        // Every subset with something of the guest's or QEMU's (the host log alone explains nothing).
        for bits in 1...15 where bits & 7 != 0 {
            let roles = Roles(rawValue: bits)
            do {
                let v = try Self.explain(scenario, roles).verdict
                origins[roles] = v.origin
                if let l = v.layer { layers[roles] = l }
            } catch let e as GuestLogError {
                // A console with no kernel message (werror-stop) is refused, never read as clean.
                #expect(roles.contains(.guest), "\(scenario) \(roles): \(e)")
            }
        }
        for (smaller, o) in origins where Self.namesALayer(o) {
            for (larger, p) in origins where larger.isSuperset(of: smaller) && larger != smaller {
                #expect(p == o, "\(scenario): \(smaller) says \(o.rawValue), \(larger) says \(p.rawValue)")
            }
        }
        // The layer below QEMU likewise: named only with the host log, and kept with more inputs.
        for (smaller, l) in layers {
            #expect(smaller.contains(.hostLog), "\(scenario): \(smaller) names the layer \(l) without the host log")
            for larger in origins.keys where larger.isSuperset(of: smaller) && larger != smaller {
                #expect(layers[larger] == l, "\(scenario): \(smaller) says \(l), \(larger) says \(layers[larger] ?? "none")")
            }
        }
        // The guest log alone never names a layer: it cannot see the host.
        if let g = origins[.guest] { #expect(!Self.namesALayer(g), "\(scenario): guest log alone says \(g.rawValue)") }
    }

    /// A blkdebug EIO on a virtio-scsi disk: QEMU fails the WRITE(10) six times (the guest's
    /// SCSI layer retries ABORTED COMMAND), QMP sends six BLOCK_IO_ERRORs, the guest logs one
    /// `I/O error, dev sda`. The old verdict was "the error arose inside the guest".
    @Test func virtioSCSIErrorIsTheHostsWithItsRetries() throws {
        let r = try Self.explain("scsi-write-eio")
        #expect(r.verdict.origin == .hostStorage)
        #expect(!r.verdict.summary.contains("inside the guest"))
        #expect(r.matches.count == 1)
        let m = try #require(r.matches.first)
        #expect(r.guestBlockErrors[m.guest].device == "sda" && r.guestBlockErrors[m.guest].sector == 2048)
        #expect(m.attempts == 6 && m.scsi != nil && m.host == nil)
        let f = try #require(m.scsi.flatMap { r.host?.scsi.failures[$0] })
        #expect(f.command?.name == "WRITE(10)" && f.sense?.keyName == "ABORTED COMMAND")
        // Paired with the last attempt: the guest logs after its retries are used up.
        #expect(m.qmp == (r.qmp?.ioErrors.count ?? 0) - 1)
        #expect(r.unmatched.filter { $0.side == .qmp && $0.reason.contains("retried") }.count == 5)
        #expect(r.verdict.summary.contains("retried it 5 times"))
        #expect(r.coverage.first { $0.guestDevice == "sda" }?.covered == true)
        // Without the trace, QMP alone still blames the host and counts the retries.
        let q = try Self.explain("scsi-write-eio", [.guest, .qmp])
        #expect(q.verdict.origin == .hostStorage && q.verdict.summary.contains("5 of them were retries"))
    }

    /// The same capture with a trace that holds no SCSI events (only what a virtio-blk hint
    /// turns on: the capture's own virtqueue, virtio_set_status, runstate and blk_co lines):
    /// the guest's sda error is "not covered", never "arose inside the guest".
    @Test func scsiErrorBesideATraceWithoutSCSIEventsIsNotCovered() throws {
        let trace = try String(contentsOfFile: LabFixtures.path("scsi-write-eio", "trace.log"), encoding: .utf8)
            .split(separator: "\n").filter { !$0.contains(":virtio_scsi_") && !$0.contains(":scsi_") }
            .joined(separator: "\n") + "\n"
        let r = try ExplainSession.run(.init(guest: try FileByteSource(path: LabFixtures.path("scsi-write-eio", "console.log")),
                                             trace: MemoryByteSource(trace, name: "trace-without-scsi.log")))
        #expect(r.verdict.origin == .notCovered)
        let c = try #require(r.coverage.first)
        #expect(c.guestDevice == "sda" && c.traceHasBusEvents == false && !c.covered)
        #expect(c.toCover.contains { $0.contains("virtio_scsi_*") })
        #expect(!r.unmatched.contains { $0.reason.contains("arose inside the guest") })
    }

    /// ext4 metadata corrupted on the host before boot; QEMU completed every request.
    @Test func corruptExt4WithEveryRequestCompletingIsGuestInternalWithProof() throws {
        let r = try Self.explain("ext4-corrupt")
        #expect(r.verdict.origin == .guestInternal)
        let completed = try #require(r.host?.devices.first?.completed)
        #expect(r.verdict.summary.contains("all \(completed) requests to the disk completing successfully"))
        #expect(r.verdict.summary.contains("placed by the guest's disk setup"))
        // The advice fits: keep a copy, then fsck — not "after the host side is fixed".
        #expect(r.nextSteps.contains { $0.contains("keep a copy of the disk image") && $0.contains("e2fsck -fn") })
        #expect(!r.nextSteps.contains { $0.contains("After the host side is fixed") })
        // The trace alone proves it too; the guest log alone cannot.
        #expect(try Self.explain("ext4-corrupt", [.guest, .trace]).verdict.origin == .guestInternal)
        let guestOnly = try Self.explain("ext4-corrupt", [.guest])
        #expect(guestOnly.verdict.origin == .notCovered)
        #expect(guestOnly.nextSteps.contains { $0.contains("virtio_blk_*") })
    }

    /// The clock anchor: the guest's `virtio_blk … logical blocks` line and the trace's
    /// DRIVER_OK give the same offset as the matched failure, to a few ms.
    @Test func diskSetupAnchorAgreesWithTheMatchedFailure() throws {
        let r = try Self.explain("write-eio", [.guest, .trace])
        let matched = try #require(r.clockOffsetSeconds)
        let g = try #require(r.guest), h = try #require(r.host)
        let anchored = try #require(ExplainClockAnchor.offset(guest: g, host: h))
        #expect(abs(anchored - matched) < 0.05)
    }

    /// The policy named is what the evidence implies: a reported EIO allows report or the
    /// default enospc; a pause on EIO means stop.
    @Test func errorPolicyComesFromEvidence() throws {
        let w = try Self.explain("write-eio")
        #expect(w.errorPolicies.first { $0.operation == "write" }?.possible == [.report, .enospc])
        #expect(!w.verdict.summary.contains("(werror=report)"))
        let s = try Self.explain("werror-stop", [.trace, .qmp])
        #expect(s.errorPolicies.contains { $0.possible == [.stop] })
    }

    /// "Resume the VM" only for a VM that is still paused where the inputs end.
    @Test func resumeAdviceOnlyForAPausedVM() throws {
        let r = try Self.explain("enospc-pause")
        #expect(r.vmPausedAtEnd == false)
        #expect(!r.nextSteps.contains { $0.contains("resume the VM") || $0.contains("still paused") })
    }
}

/// QMP streams from another run: QEMU sends a BLOCK_IO_ERROR for every storage error, so a
/// stream that covers a traced failure without one is not from that run.
@Suite struct ExplainQMPFromAnotherRunTests {
    func lines(_ scenario: String, _ file: String) throws -> [String] {
        try String(contentsOfFile: LabFixtures.path(scenario, file), encoding: .utf8).split(separator: "\n").map(String.init)
    }

    @Test func qmpStreamWithoutTheTracedErrorIsFlagged() throws {
        // write-eio's own QMP stream with its BLOCK_IO_ERROR removed: the same period, no error.
        let qmp = try lines("write-eio", "qmp.jsonl").filter { !$0.contains("BLOCK_IO_ERROR") }.joined(separator: "\n") + "\n"
        let r = try ExplainSession.run(.init(guest: try FileByteSource(path: LabFixtures.path("write-eio", "console.log")),
                                             trace: try FileByteSource(path: LabFixtures.path("write-eio", "trace.log")),
                                             qmp: MemoryByteSource(qmp, name: "qmp.jsonl")))
        #expect(r.disagreements.contains { $0.contains("for which QMP has no BLOCK_IO_ERROR") })
        // The full stream of the same run is not flagged.
        let same = try ExplainTruthTests.explain("write-eio")
        #expect(same.disagreements.isEmpty)
    }

    @Test func qmpStreamOfAnotherRunIsFlagged() throws {
        let r = try ExplainSession.run(.init(guest: try FileByteSource(path: LabFixtures.path("write-eio", "console.log")),
                                             trace: try FileByteSource(path: LabFixtures.path("write-eio", "trace.log")),
                                             qmp: try FileByteSource(path: LabFixtures.path("ext4-corrupt", "qmp.jsonl"))))
        #expect(r.disagreements.contains { $0.contains("do not overlap in time") })
    }
}

/// The formats admins really have, made from real captures by lab/transform-guest-log
/// (journalctl -o json/export/short-*, rsyslog, pty consoles with \r\r\n, ANSI colours, kernel
/// lines glued after user-space output): explain pairs the same errors as with the console
/// they came from. The old verdict for journal JSON was "the guest log has no error for this
/// request" for every host failure.
@Suite struct ExplainGuestFormatTests {
    static let transformed: [String] = {
        let dir = TestFixtures.path("guest/transformed")
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
            .filter { $0.hasPrefix("write-eio.") || $0.hasPrefix("ext4-readonly.") }.sorted()
    }()

    @Test(arguments: transformed)
    func sameMatchesAsTheConsoleItCameFrom(_ file: String) throws {
        let scenario = String(file.prefix { $0 != "." })
        let original = try ExplainTruthTests.explain(scenario)
        let r = try ExplainSession.run(.init(
            guest: try FileByteSource(path: TestFixtures.path("guest/transformed/\(file)")),
            trace: try FileByteSource(path: LabFixtures.path(scenario, "trace.log")),
            qmp: try FileByteSource(path: LabFixtures.path(scenario, "qmp.jsonl"))))
        #expect(r.verdict.origin == original.verdict.origin, "\(file)")
        let coarse = [".short.log", ".short-full.log", ".short-iso.log", ".with-unit.log", ".dmesg-T-delta.log"]
            .contains { file.hasSuffix($0) }
        // dmesg -e's stamps give no time (KernelLogStyle.dmesgRelTime): as good as none.
        if file.hasSuffix(".cat.log") || file.hasSuffix(".dmesg-reltime.log") || coarse {
            // No stamps, or whole seconds: repeats of one sector within a second cannot be told
            // from one request logged twice, so each host failure answers one guest line, in
            // order — fewer pairs than the console's, never more, never a failure used twice.
            #expect(r.matches.count <= original.matches.count && !r.matches.isEmpty)
            let hosts = r.matches.compactMap(\.host)
            #expect(Set(hosts).count == hosts.count, "\(file): a host failure paired twice")
        } else {
            #expect(r.matches.count == original.matches.count, "\(file): \(r.matches.count) matches, the console gives \(original.matches.count)")
        }
        // Wall-clock stamps are shown as the log printed them, never as epoch seconds posing as uptime.
        #expect(!r.evidence.contains { $0.contains("[17953") }, "\(file)")
        #expect(!r.unmatched.contains { $0.side == .host && $0.reason == "the guest log has no error for this request" }, "\(file)")
        #expect(!r.verdict.summary.contains("arose inside the guest"), "\(file)")
    }
}

/// One QEMU run, two guest boots (a write EIO in boot 1, a read EIO in boot 2): each boot has
/// its own clock. One offset for both placed boot 1's error 28 s late and called the inputs
/// inconsistent.
@Suite struct ExplainBootTests {
    @Test func eachBootHasItsOwnClock() throws {
        let r = try ExplainTruthTests.explain("two-boot")
        #expect(r.verdict.origin == .hostStorage)
        #expect(r.matches.count == 2)
        #expect(r.guestBlockErrors.map(\.boot) == [1, 2])
        #expect(r.bootClockOffsets.map(\.boot) == [1, 2])
        let gap = try #require(r.bootClockOffsets.last?.clockOffsetSeconds) - (try #require(r.bootClockOffsets.first?.clockOffsetSeconds))
        #expect(gap > 5)
        #expect(r.disagreements.isEmpty, "\(r.disagreements)")
        // Every guest error sits at its host failure on the timeline.
        for m in r.matches {
            #expect(abs(m.timeDeltaSeconds ?? 99) < 0.5)
        }
    }
}

/// With QEMU's command line (the lab's run.txt in the capture directory), the policy is what
/// the drive says, not what the errors allow.
@Suite struct ExplainCommandLineTests {
    @Test func policyAndBackendFromTheCommandLine() throws {
        let dir = LabFixtures.repoRoot.appendingPathComponent("lab/scenarios/nbd-server-killed").path
        var inputs = ExplainSession.Inputs()
        try ExplainSession.classify(try ExplainSession.streams(inDirectory: dir), into: &inputs)
        inputs.qemuCommandLine = ExplainSession.commandLine(inDirectory: dir)
        let r = try ExplainSession.run(inputs)
        #expect(r.inputs.qemuCommandLine?.hasSuffix("run.txt") == true)
        let w = try #require(r.errorPolicies.first { $0.operation == "write" })
        #expect(w.possible == [.report] && w.statedOnCommandLine == true)
        #expect(r.verdict.summary.contains("(werror=report)"))
        #expect(r.verdict.summary.contains("NBD server (127.0.0.1:"))
        #expect(r.nextSteps.contains { $0.contains("NBD server at 127.0.0.1:") })
        // Without it, the same errors only allow report or the default enospc.
        let bare = try ExplainTruthTests.explain("nbd-server-killed")
        #expect(bare.errorPolicies.first { $0.operation == "write" }?.possible == [.report, .enospc])
    }

    /// Another VM's command line (the virtio-scsi capture's, beside a virtio-blk run) is
    /// reported and said to disagree, and lends none of its settings.
    @Test func anotherVMsCommandLineIsNotUsed() throws {
        func run(_ cmdline: String) throws -> ExplainReport {
            var inputs = ExplainSession.Inputs(guest: try FileByteSource(path: LabFixtures.path("write-eio", "console.log")),
                                               trace: try FileByteSource(path: LabFixtures.path("write-eio", "trace.log")),
                                               qmp: try FileByteSource(path: LabFixtures.path("write-eio", "qmp.jsonl")))
            inputs.qemuCommandLine = try FileByteSource(path: LabFixtures.path(cmdline, "run.txt"))
            return try ExplainSession.run(inputs)
        }
        let other = try run("scsi-write-eio")
        #expect(other.disagreements.contains { $0.contains("command line of another VM") && $0.contains("scsi-hd") })
        #expect(other.qemuDisks?.first?.device == "scsi-hd")
        #expect(other.errorPolicies.allSatisfy { $0.statedOnCommandLine == nil })
        #expect(other.verdict.origin == .hostStorage)
        // Its own command line agrees with it.
        let own = try run("write-eio")
        #expect(!own.disagreements.contains { $0.contains("command line") })
        #expect(own.errorPolicies.first { $0.operation == "write" }?.statedOnCommandLine == true)
    }
}

/// Found by trying explain as an admin would (each was a false or too specific statement).
@Suite struct ExplainAdminReviewTests {
    func file(_ s: String, _ f: String) throws -> ByteStream { try FileByteSource(path: LabFixtures.path(s, f)) }
    func lines(_ s: String, _ f: String, _ keep: (Substring) -> Bool) throws -> ByteStream {
        let t = try String(contentsOfFile: LabFixtures.path(s, f), encoding: .utf8).split(separator: "\n").filter(keep)
        return MemoryByteSource(t.joined(separator: "\n") + "\n", name: "\(s)-\(f)-cut")
    }

    /// A trace that ends before the failing request: not covered, never "inside the guest".
    @Test func traceEndingBeforeTheFailureDoesNotCover() throws {
        let cut = try lines("write-eio", "trace.log") { l in
            guard let at = l.firstIndex(of: "@"), let colon = l[at...].firstIndex(of: ":") else { return true }
            return (Double(l[l.index(after: at)..<colon]) ?? 0) < 1795363592.70
        }
        let r = try ExplainSession.run(.init(guest: try file("write-eio", "console.log"), trace: cut))
        #expect(r.verdict.origin == .notCovered)
        #expect(r.coverage.first?.traceCoversTime == false)
    }

    /// A virtio-blk guest's I/O error with a trace of another run that shows every request
    /// succeeding: the inputs contradict each other; not "the guest failed requests QEMU completed".
    @Test func virtioBlkErrorWithAnotherRunsCleanTraceIsAContradiction() throws {
        let r = try ExplainSession.run(.init(guest: try file("write-eio", "console.log"), trace: try file("ext4-corrupt", "trace.log")))
        #expect(r.verdict.origin == .unknown)
        #expect(r.disagreements.contains { $0.contains("virtio_blk fails a request only when QEMU returns an error") })
    }

    /// A SCSI disk's error is never paired with a virtio-blk request.
    @Test func scsiErrorIsNeverPairedWithAVirtioBlkRequest() throws {
        let vb = try lines("write-eio", "trace.log") { $0.contains(":virtio_blk_") }
        let r = try ExplainSession.run(.init(guest: try file("scsi-write-eio", "console.log"), trace: vb))
        #expect(r.matches.isEmpty)
        #expect(r.coverage.first { $0.guestDevice == "sda" }?.covered == false)
    }

    /// A QMP stream of another run is set aside, not used as fact.
    @Test func qmpOfAnotherRunIsNotUsed() throws {
        let r = try ExplainSession.run(.init(guest: try file("write-eio", "console.log"), trace: try file("write-eio", "trace.log"),
                                             qmp: try file("read-once", "qmp.jsonl")))
        #expect(r.disagreements.first?.contains("the QMP events are not used") == true)
        #expect(!r.verdict.summary.contains("read error"))
        #expect(!r.errorPolicies.contains { $0.operation == "read" })
    }

    /// A directory whose console has no kernel line (werror-stop): the console is left out with
    /// a note and the trace and QMP still explain; a host kernel log is read as the host's, never as the guest's.
    @Test func directoryNotesWhatItLeavesOut() throws {
        let r = try CLIRunner.run(["explain", LabFixtures.repoRoot.appendingPathComponent("lab/scenarios/werror-stop").path],
                                  environment: ["NO_COLOR": "1"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("no kernel messages in it") && r.stdout.contains("VERDICT: the host's storage failed"))
        let h = try CLIRunner.run(["explain", LabFixtures.repoRoot.appendingPathComponent("lab/scenarios/host-disk-eio").path],
                                  environment: ["NO_COLOR": "1"])
        #expect(h.stdout.contains("host kernel log \(LabFixtures.path("host-disk-eio", "host-dmesg.log"))"))
        #expect(h.stdout.contains("guest log \(LabFixtures.path("host-disk-eio", "console.log"))"))
        #expect(h.stdout.contains("its block device loop0 failed"))
        // Given by name, the same console is refused.
        let given = try CLIRunner.run(["explain", "--guest", LabFixtures.path("werror-stop", "console.log")])
        #expect(given.status == 2 && given.stderr.contains("no kernel messages found"))
    }

    /// Findings in the trace alone make a findings exit status.
    @Test func scsiFailuresInTheTraceAloneExitOne() throws {
        let r = try CLIRunner.run(["explain", "--trace", LabFixtures.path("scsi-write-eio", "trace.log")])
        #expect(r.status == 1)
    }
}

/// A wall-clock guest log (journalctl) with no failed request is placed on the host's clock by
/// the guest's disk setup when its stamps are fine enough, and only then can prove anything.
@Suite struct ExplainWallClockAnchorTests {
    @Test func journalCopiesOfTheCorruptExt4Capture() throws {
        let dir = try TempDir()
        let r = try runProcess("/usr/bin/env", ["python3", LabFixtures.repoRoot.appendingPathComponent("lab/transform-guest-log").path,
                                                dir.path, "ext4-corrupt"])
        #expect(r.status == 0, "\(r.stderr)")
        func origin(_ style: String) throws -> ExplainReport.Origin {
            try ExplainSession.run(.init(guest: try FileByteSource(path: dir.path + "/ext4-corrupt.\(style).log"),
                                         trace: try FileByteSource(path: LabFixtures.path("ext4-corrupt", "trace.log")))).verdict.origin
        }
        #expect(try origin("short-precise") == .guestInternal)
        #expect(try origin("json") == .guestInternal)
        // Whole-second stamps cannot place a millisecond setup: no proof, so not covered.
        #expect(try origin("short") == .notCovered)
    }
}

/// A trace cut off (QEMU killed, the file copied mid-write) after the failing write was
/// submitted: the request is in flight at the trace's end. That is no proof that every request
/// succeeded, nor that the guest failed on its own (it said both; found by an admin's review).
@Suite struct ExplainTraceEndingInFlightTests {
    @Test func theGuestsRequestStillInFlightAtTheTracesEndNamesNoLayer() throws {
        let trace = try String(contentsOfFile: LabFixtures.path("write-eio", "trace.log"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false)
        // Up to the write's virtio_blk_handle_write and its submission, before its completion.
        let cut = try #require(trace.firstIndex { $0.contains("virtio_blk_rw_complete") && $0.contains("ret -5") })
        let inputs = ExplainSession.Inputs(guest: try FileByteSource(path: LabFixtures.path("write-eio", "console.log")),
                                           trace: MemoryByteSource(trace[..<cut].joined(separator: "\n") + "\n", name: "cut.log"))
        let r = try ExplainSession.run(inputs)
        #expect(r.verdict.origin == .unknown)
        #expect(r.verdict.summary.contains("still in flight"))
        #expect(!r.verdict.summary.contains("every request"))
        #expect(!r.disagreements.contains { $0.contains("shows every request succeeding") })
        #expect(r.unmatched.contains { $0.reason.contains("still in flight") })
    }
}
