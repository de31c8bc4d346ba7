import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeTrace

/// Traces with only some of the events enabled, made from the lab's real captures by keeping
/// the lines of those events (what QEMU's log backend would have printed with only them on).
@Suite struct PartialTraceTests {
    static func analyse(_ text: String) throws -> TraceReport {
        try TraceSession.analyse(MemoryByteSource(text, name: "partial.log"), catalog: .bundled)
    }

    /// `-trace 'virtio_blk_*'` alone (the lab hint): virtio_blk_req_complete ends a request.
    @Test func virtioBlkEventsAloneShowTheFailureAndNoLeaks() throws {
        let r = try Self.analyse(try TraceTestData.labTrace("write-eio", keepingEventsWithPrefix: ["virtio_blk_"]))
        #expect(r.requests.completed == 6 && r.requests.failed == 1)
        #expect(r.inFlightTotal == 0 && r.leakedTotal == 0 && r.requests.inFlightAtEnd == 0)
        #expect(r.requests.outcomeUnknown == 0)
        let f = try #require(r.failures.first)
        #expect(r.failuresTotal == 1)
        #expect(f.operation == .write && f.sector == 2048 && f.sectors == 8)
        #expect(f.errnoName == "EIO" && f.guestStatus == "IOERR" && f.cause == .backendError)
        #expect(f.time == 1795363592.754736)
        // Same answer as the full capture, except what needs virtqueue_pop/fill.
        let full = try TraceSession.analyse(FileByteSource(path: TraceTestData.lab("write-eio").path), catalog: .bundled)
        #expect(full.failures.map(\.sector) == r.failures.map(\.sector))
        #expect(r.latency["write"]?.handleToComplete?.count == 2 && r.latency["write"]?.popToFill == nil)
    }

    /// Every lab capture reduced to `virtio_blk_*` calls nothing a leak that the full capture
    /// does not, and finds the same failures.
    @Test func noLabCaptureGainsLeaksWhenOnlyVirtioBlkEventsAreKept() throws {
        for scenario in TraceTestData.scenarios {
            let full = try TraceSession.analyse(FileByteSource(path: TraceTestData.lab(scenario).path), catalog: .bundled)
            let partial = try Self.analyse(try TraceTestData.labTrace(scenario, keepingEventsWithPrefix: ["virtio_blk_"]))
            #expect(partial.leakedTotal <= full.leakedTotal, "\(scenario)")
            // Same storage failures (finalised in another order: at req_complete, not at fill).
            #expect(partial.failures.filter { $0.cause == .backendError }.compactMap(\.sector).sorted()
                    == full.failures.filter { $0.cause == .backendError }.compactMap(\.sector).sorted(), "\(scenario)")
        }
    }

    /// The same capture with only `virtio_blk_*` counts every request the full one does.
    /// QEMU reuses a request's memory for the next one; without virtqueue_fill nothing else
    /// ends a completed request, and its pointer's next request used to overwrite it (an admin
    /// saw "28 completed" where the full trace says 41, in a proof that "all N completed").
    @Test func virtioBlkEventsAloneCountEveryRequest() throws {
        for scenario in LabFixtures.scenarios(with: "trace.log") {
            let full = try TraceSession.analyse(FileByteSource(path: TraceTestData.lab(scenario).path), catalog: .bundled)
            let partial = try Self.analyse(try TraceTestData.labTrace(scenario, keepingEventsWithPrefix: ["virtio_blk_"]))
            #expect(partial.requests.completed == full.requests.completed, "\(scenario): \(partial.requests.completed) vs \(full.requests.completed)")
            #expect(partial.requests.failed == full.requests.failed, "\(scenario)")
        }
    }

    /// Only the submissions and the storage completions: no event shows what the guest got,
    /// so no request is in flight or leaked; the storage error is still a failure.
    @Test func withoutAnyCompletionEventNothingIsCalledInFlight() throws {
        let r = try Self.analyse(try TraceTestData.labTrace(
            "write-eio", keepingEventsWithPrefix: ["virtio_blk_handle_", "virtio_blk_rw_complete"]))
        #expect(r.inFlightTotal == 0 && r.leakedTotal == 0)
        #expect(r.requests.outcomeUnknown == 7)
        let f = try #require(r.failures.first)
        #expect(r.failuresTotal == 1 && f.errnoName == "EIO" && f.guestStatus == nil && f.sector == 2048)
        #expect(f.explanation.contains("what the guest was told is not in the trace"))
        #expect(!f.explanation.contains("paused"))
        #expect(r.warnings.contains { $0.contains("7 virtio-blk requests have no end in the trace") })
    }

    @Test func coverageOfAFullCaptureAndOfAVirtioBlkOnlyOne() throws {
        let full = try TraceSession.analyse(FileByteSource(path: TraceTestData.lab("write-eio").path), catalog: .bundled)
        let blk = try #require(full.coverage.bus(.virtioBlk))
        #expect(blk.covered && blk.analysed && blk.events == 25 && blk.patternsWithoutEvents.isEmpty)
        #expect(full.coverage.buses.map(\.bus) == TraceBus.allCases)
        #expect(full.coverage.buses.filter(\.covered).map(\.bus) == [.virtioBlk])
        #expect(full.coverage.bus(.nvme)?.analysed == false)
        #expect(full.coverage.virtqueueEvents == 14 && full.coverage.runstateEvents == 2)
        #expect(full.coverage.backendEvents == ["blk_co": 8])

        let partial = try Self.analyse(try TraceTestData.labTrace("write-eio", keepingEventsWithPrefix: ["virtio_blk_"]))
        #expect(partial.coverage.bus(.virtioBlk)?.patternsWithoutEvents
                == ["virtqueue_pop", "virtqueue_fill", "virtio_set_status", "runstate_set"])
        #expect(partial.coverage.virtqueueEvents == 0)
    }

    /// NVMe and IDE/AHCI events are detected and counted exactly even when the definitions in
    /// use do not know them (only the bundled ones) and there are more names than the reader
    /// remembers. Lines in QEMU 7.2's formats (hw/nvme/trace-events, hw/ide/trace-events).
    @Test func nvmeAndIdeEventsAreDetectedAndCountedNotAnalysed() throws {
        var text = ""
        for i in 0..<60 {    // 60 distinct unknown names: past TraceReadStats.maxUnknownNames
            text += "100@1795363587.\(String(format: "%06d", i)):pci_nvme_made_up_\(i) x\n"
        }
        text += "100@1795363588.000001:pci_nvme_write cid 1 opname 'write' nsid 1 nlb 8 count 4096 lba 0x800\n"
        text += "100@1795363588.000002:ide_sector_read sector=0 nsectors=1\n"
        text += "100@1795363588.000003:ahci_port_write ahci(0x55d0c8a1c000)[0]: port write [reg:PxCI] @ 0x38: 0x00000001\n"
        let r = try Self.analyse(text)
        #expect(r.coverage.bus(.nvme)?.events == 61)
        #expect(r.coverage.bus(.ideAhci)?.events == 2)
        #expect(r.coverage.bus(.nvme)?.covered == true && r.coverage.bus(.virtioBlk)?.covered == false)
        #expect(r.warnings.contains("61 NVMe events: NVMe requests are detected, not analysed"))
        #expect(r.warnings.contains("2 IDE/AHCI events: IDE/AHCI requests are detected, not analysed"))
        #expect(r.input.stats.unknownEvents == 63)
    }

    /// The hint of a trace without any disk events turns on everything the analyses need.
    @Test func theHintTurnsOnEveryEventTheAnalysisNeeds() throws {
        let r = try Self.analyse("100@1795363587.000001:runstate_set current_run_state 6 (prelaunch) new_state 9 (running)\n")
        let hint = try #require(r.warnings.first { $0.hasPrefix("no disk device events") })
        for p in ["-trace 'virtio_blk_*'", "-trace virtqueue_pop", "-trace virtqueue_fill", "-trace virtio_set_status",
                  "-trace runstate_set", "-trace 'virtio_scsi_*'", "-trace 'scsi_req_*'", "-trace 'scsi_disk_*'"] {
            #expect(hint.contains(p), "\(p)")
        }
        #expect(TraceCoverage.bus(ofEvent: "scsi_disk_new_request") == .virtioScsi)
        #expect(TraceCoverage.bus(ofEvent: "ahci_port_write") == .ideAhci)
        #expect(TraceCoverage.bus(ofEvent: "virtqueue_pop") == nil)
        #expect(TraceCoverage.qemuOptions(for: [.virtioBlk]) ==
                "-trace 'virtio_blk_*' -trace virtqueue_pop -trace virtqueue_fill -trace virtio_set_status -trace runstate_set")
    }
}
