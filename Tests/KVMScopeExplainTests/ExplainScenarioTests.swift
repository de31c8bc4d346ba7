import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope
@testable import KVMScopeExplain

/// `explain` on every lab capture: the verdict and the matches, not just that output exists.
@Suite struct ExplainScenarioTests {
    func explain(_ scenario: String, guest: Bool = true, trace: Bool = true, qmp: Bool = true) throws -> ExplainReport {
        let e = try #require(BundledExample.named(scenario))
        var inputs = ExplainSession.inputs(example: e)
        if !guest { inputs.guest = nil }
        if !trace { inputs.trace = nil }
        if !qmp { inputs.qmp = nil }
        return try ExplainSession.run(inputs)
    }

    func matchedSectors(_ r: ExplainReport) -> [UInt64] { r.matches.map { r.guestBlockErrors[$0.guest].sector } }

    @Test func writeEIO() throws {
        let r = try explain("write-eio")
        #expect(r.verdict.origin == .hostStorage)
        #expect(r.matches.count == 1)
        let m = try #require(r.matches.first)
        #expect(r.guestBlockErrors[m.guest].sector == 2048 && m.operation == "write")
        let hostIndex = try #require(m.host)
        let f = try #require(r.host?.failures[hostIndex])
        #expect(f.errnoName == "EIO" && f.sector == 2048 && f.guestStatus == "IOERR")
        #expect(m.qmp != nil)
        #expect(r.verdict.summary.contains("failed 1 write request with EIO (Input/output error)"))
        #expect(r.verdict.summary.contains("on vda at sector 2048"))
        #expect(r.unmatched.isEmpty && r.disagreements.isEmpty)
        // Only the host's kernel log is missing (it would show whether a host device failed).
        #expect(r.missing.count == 1 && r.missing.allSatisfy { $0.contains("--host-log") })
        // The guest booted a couple of seconds before the error, by the host's clock.
        let offset = try #require(r.clockOffsetSeconds)
        let failureTime = try #require(f.time)
        #expect(failureTime - offset > 1 && failureTime - offset < 10)
    }

    /// The three inputs merged in time order (k-way merge over the leftist heap).
    @Test func timelineMergesAllThreeInputsInOrder() throws {
        let r = try explain("ext4-readonly")
        #expect(r.timeline.count > 20)
        #expect(zip(r.timeline, r.timeline.dropFirst()).allSatisfy { $0.time <= $1.time })
        #expect(Set(r.timeline.map(\.source)) == [.guest, .host, .qmp])
        let ro = try #require(r.timeline.firstIndex { $0.what == "ext4 on vda: remounted read-only" })
        let abort = try #require(r.timeline.firstIndex { $0.what == "ext4 on vda: journal aborted" })
        let firstHost = try #require(r.timeline.firstIndex { $0.source == .host })
        #expect(firstHost < abort && abort < ro)
        // Without a clock offset the guest's events cannot be placed: host and QMP only.
        let noGuestClock = try explain("enospc-pause")
        #expect(noGuestClock.timeline.map(\.what).contains("VM paused (STOP)"))
        #expect(noGuestClock.timeline.map(\.what).contains("VM resumed (RESUME)"))
    }

    @Test func readFailedInsideALargerRequest() throws {
        let r = try explain("read-once")
        #expect(r.verdict.origin == .hostStorage)
        #expect(matchedSectors(r) == [8192])
        let hostIndex = try #require(r.matches.first?.host)
        let f = try #require(r.host?.failures[hostIndex])
        #expect(f.operation == .read && f.sector == 8192 && f.sectors == 128)
        // blkdebug injected sector 8200: inside the host request the guest's sector 8192 starts.
        #expect(8200 >= f.sector! && 8200 < f.sector! + f.sectors!)
        #expect(r.verdict.summary.contains("covered sectors 8192–8319"))
    }

    @Test func ext4WentReadOnlyBecauseJournalWritesFailed() throws {
        let r = try explain("ext4-readonly")
        #expect(r.verdict.origin == .hostStorage)
        let guestErrors = r.guestBlockErrors.count
        #expect(guestErrors == 10 && r.matches.count == guestErrors)   // every guest error has its host request
        // 7 host failures: a failed preflush/FUA superblock write prints two guest lines for one
        // host request; the last failure came after the guest's 10th message in 5 s, which the
        // guest kernel's rate limit dropped without a trace.
        #expect(r.host?.failuresTotal == 7 && Set(r.matches.compactMap(\.host)).count == 6)
        #expect(r.unmatched.count == 1 && r.unmatched[0].side == .host)
        #expect(r.unmatched[0].reason.contains("printk_ratelimited"))
        #expect(r.matches.allSatisfy { abs($0.timeDeltaSeconds ?? 1) < 0.01 })
        #expect(r.verdict.summary.contains("the first failing write was sector 17026 at 2.327010 s"))
        #expect(r.verdict.summary.contains("went read-only at 2.344351 s"))
        #expect(r.verdict.summary.contains("aborted its journal at 2.332061 s"))
        #expect(r.nextSteps.contains { $0.contains("e2fsck") })
    }

    @Test func enospcPauseTheGuestNeverSaw() throws {
        let r = try explain("enospc-pause")
        #expect(r.verdict.origin == .hostStorage)
        #expect(r.guestBlockErrors.isEmpty && r.matches.isEmpty)
        #expect(r.verdict.summary.contains("ENOSPC (No space left on device): the host ran out of space"))
        #expect(r.verdict.summary.contains("the retry succeeded, so the guest saw no error"))
        let pause = try #require(r.qmp?.pauses.first)
        #expect(pause.retrySucceeded == true && pause.nospace)
        #expect(r.unmatched.map(\.reason) == ["the VM was paused and the retry succeeded: the guest never saw an error"])
        #expect(r.nextSteps.first?.contains("df -h") == true)
    }

    @Test func hostErrnoTheGuestCannotSeeAndAsyncLoss() throws {
        let r = try explain("async-write-esrch")
        #expect(r.verdict.origin == .hostStorage)
        #expect(!r.matches.isEmpty && r.matches.allSatisfy { r.host?.failures[$0.host!].errnoName == "ESRCH" })
        #expect(r.verdict.summary.contains("The guest cannot see the host's ESRCH"))
        #expect(r.verdict.summary.contains("lost asynchronously"))
        #expect(r.nextSteps.contains { $0.hasPrefix("ESRCH is not what a local disk returns") })
        // Both errors are at sector 6144 (no single-candidate error): the offset comes from the
        // pairs made in order, and puts each guest line just after its host failure.
        #expect(r.clockOffsetSeconds != nil)
        #expect(r.matches.allSatisfy { abs($0.timeDeltaSeconds ?? 1) < 0.01 })
        #expect(r.timeline.contains { $0.source == .guest })
    }

    @Test func failedCacheFlush() throws {
        let r = try explain("flush-eio")
        #expect(r.matches.count == 1)
        #expect(r.guestBlockErrors[r.matches[0].guest].operation == "flush")
        #expect(r.host?.failures[r.matches[0].host!].operation == .flush)
        #expect(r.verdict.summary.contains("cache flush request failed on the host"))
        #expect(r.verdict.summary.contains("with EIO (Input/output error)"))   // from QMP: QEMU traces no errno for flushes
    }

    @Test func werrorStopRetriesFail() throws {
        let r = try explain("werror-stop")
        #expect(r.verdict.origin == .hostStorage)
        #expect(r.verdict.summary.contains("the retry failed again"))
        #expect(r.qmp?.pauses.last?.seconds == nil)
    }

    @Test func discardAndNBD() throws {
        let d = try explain("discard-errors")
        #expect(d.matches.count == 1 && d.guestBlockErrors[d.matches[0].guest].operation == "discard")
        let n = try explain("nbd-eio")
        #expect(matchedSectors(n) == [2048, 8192])
        #expect(n.verdict.origin == .hostStorage)
    }

    // MARK: fewer inputs

    @Test func guestLogOnlySaysWhatIsMissing() throws {
        let r = try explain("write-eio", trace: false, qmp: false)
        // The guest log alone cannot see the host: not covered, and what would cover it.
        #expect(r.verdict.origin == .notCovered)
        #expect(r.verdict.summary.contains("no QEMU trace given") && r.verdict.summary.contains("-trace 'virtio_blk_*'"))
        #expect(r.host == nil && r.qmp == nil && r.matches.isEmpty)
        #expect(r.missing.count == 2)
        #expect(r.missing[0].contains("-trace 'virtio_blk_*'") && r.missing[0].contains("trace-event-set-state"))
        #expect(r.missing[1].contains("virsh qemu-monitor-event"))
    }

    @Test func guestAndQMPWithoutTrace() throws {
        let r = try explain("async-write-esrch", trace: false)
        #expect(r.verdict.origin == .hostStorage)
        #expect(!r.matches.isEmpty && r.matches.allSatisfy { $0.host == nil && $0.qmp != nil })
        #expect(r.verdict.summary.contains("ESRCH (No such process)"))
        #expect(r.clockOffsetSeconds != nil)
    }

    @Test func traceOnly() throws {
        let r = try explain("write-eio", guest: false, qmp: false)
        #expect(r.verdict.origin == .hostStorage)
        #expect(r.missing.count == 3 && r.missing.contains { $0.contains("dmesg") } && r.missing.contains { $0.contains("--host-log") })
        #expect(r.unmatched.first?.reason == "no guest log to compare with")
    }

    /// A guest log from one run and a trace from another: said plainly, not matched.
    @Test func inputsFromDifferentRunsDisagree() throws {
        let guest = try #require(BundledExample.named("write-eio")?.stream("console.log"))
        let trace = try #require(BundledExample.named("read-once")?.stream("trace.log"))
        let r = try ExplainSession.run(.init(guest: guest, trace: trace))
        #expect(r.matches.isEmpty)
        #expect(r.disagreements.contains { $0.contains("match in neither sector nor operation") })
    }

    @Test func cleanInputsHaveNoFindings() throws {
        let text = "[    1.000000] virtio_blk virtio0: [vda] 131072 512-byte logical blocks (67.1 MB/64.0 MiB)\n"
        let r = try ExplainSession.run(.init(guest: MemoryByteSource(text, name: "clean.log")))
        #expect(!r.hasFindings)
        #expect(r.verdict.summary == "No disk errors: the inputs show no failed request.")
    }

    @Test func classifyDetectsEachKind() throws {
        let e = try #require(BundledExample.named("write-eio"))
        var inputs = ExplainSession.Inputs()
        try ExplainSession.classify([e.stream("qmp.jsonl")!, e.stream("console.log")!, e.stream("trace.log")!], into: &inputs)
        #expect(inputs.guest?.name.hasSuffix("console.log") == true)
        #expect(inputs.trace?.name.hasSuffix("trace.log") == true)
        #expect(inputs.qmp?.name.hasSuffix("qmp.jsonl") == true)
        var again = inputs
        #expect(throws: KVMScopeError.self) { try ExplainSession.classify([e.stream("console.log")!], into: &again) }
        var none = ExplainSession.Inputs()
        #expect(throws: KVMScopeError.self) { try ExplainSession.classify([MemoryByteSource([0, 1, 2, 0xFF, 0x0A], name: "x")], into: &none) }
        // Text that no reader claims, given on purpose, is read as a (possibly empty) guest log.
        try ExplainSession.classify([MemoryByteSource("hello\nworld\n", name: "y")], into: &none)
        #expect(none.guest != nil)
    }
}

@Suite struct GuestHostCorrelatorTests {
    typealias G = GuestHostCorrelator.GuestError
    typealias H = GuestHostCorrelator.HostFailure

    /// QEMU merged two guest writes into one request: both guest errors point at it.
    @Test func mergedRequestAnswersTwoGuestErrors() {
        let guest = [G(device: "vda", sector: 100, operation: .write, uptime: 5.0, line: 1),
                     G(device: "vda", sector: 108, operation: .write, uptime: 5.0001, line: 2)]
        let host = [H(device: "0xA", sector: 100, sectors: 16, operation: .write, time: 1000.0)]
        let r = GuestHostCorrelator.correlate(guest: guest, host: host)
        #expect(r.pairs.map(\.host) == [0, 0])
        #expect(r.deviceMap == ["vda": "0xA"])
    }

    /// Two disks: each guest device pairs with the host device whose failures line up.
    @Test func devicesArePairedByWhatLinesUp() {
        let guest = [G(device: "vda", sector: 10, operation: .read, uptime: 1, line: 1),
                     G(device: "vdb", sector: 5000, operation: .write, uptime: 2, line: 2)]
        let host = [H(device: "0xB", sector: 4990, sectors: 64, operation: .write, time: 102),
                    H(device: "0xA", sector: 8, sectors: 8, operation: .read, time: 101)]
        let r = GuestHostCorrelator.correlate(guest: guest, host: host)
        #expect(r.deviceMap == ["vda": "0xA", "vdb": "0xB"])
        #expect(r.pairs.map { [$0.guest, $0.host] } == [[0, 1], [1, 0]])
        #expect(r.clockOffset == 100)
    }

    /// The same sector failing twice: time (after the offset) decides which is which.
    @Test func timeDisambiguatesRepeats() {
        let guest = [G(device: "vda", sector: 7, operation: .write, uptime: 10, line: 1),
                     G(device: "vda", sector: 900, operation: .write, uptime: 11, line: 2),
                     G(device: "vda", sector: 7, operation: .write, uptime: 20, line: 3)]
        let host = [H(device: "0xA", sector: 0, sectors: 8, operation: .write, time: 520),
                    H(device: "0xA", sector: 896, sectors: 8, operation: .write, time: 511),
                    H(device: "0xA", sector: 0, sectors: 8, operation: .write, time: 510)]
        let r = GuestHostCorrelator.correlate(guest: guest, host: host)
        #expect(r.clockOffset == 500)
        #expect(r.pairs.map { [$0.guest, $0.host] } == [[0, 2], [1, 1], [2, 0]])
    }

    @Test func operationsMustAgree() {
        let guest = [G(device: "vda", sector: 7, operation: .read, uptime: 1, line: 1),
                     G(device: "vda", sector: 0, operation: .flush, uptime: 2, line: 2)]
        let host = [H(device: "0xA", sector: 0, sectors: 8, operation: .write, time: 10),
                    H(device: "0xA", sector: nil, sectors: nil, operation: .flush, time: 11)]
        let r = GuestHostCorrelator.correlate(guest: guest, host: host)
        #expect(r.pairs.map { [$0.guest, $0.host] } == [[1, 1]])
    }
}
