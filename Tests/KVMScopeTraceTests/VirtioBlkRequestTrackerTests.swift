import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeTrace

@Suite struct VirtioBlkRequestTrackerTests {
    static func lab(_ scenario: String) throws -> TraceReport {
        try TraceSession.analyse(FileByteSource(path: TraceTestData.lab(scenario).path), catalog: .bundled)
    }

    // MARK: - Lab captures (QEMU 7.2, blkdebug-injected errors, real Linux guest)

    @Test func writeEIOIsABackendErrorReportedToTheGuest() throws {
        let r = try Self.lab("write-eio")
        #expect(r.requests.completed == 6 && r.requests.failed == 1 && r.requests.inFlightAtEnd == 0)
        #expect(r.failuresTotal == 1)
        let f = try #require(r.failures.first)
        #expect(f.device == "0x564184f66810" && f.queue == "0x7fd4ad2cc010")
        #expect(f.operation == .write && f.sector == 2048 && f.sectors == 8)
        #expect(f.errno == 5 && f.errnoName == "EIO" && f.errnoMessage == "Input/output error")
        #expect(f.guestStatus == "IOERR" && f.cause == .backendError && f.retrySucceeded == nil)
        #expect(f.time == 1795363592.754736)
        #expect(r.exitStatus == 1)
        #expect(r.latency["write"]?.requests == 2 && r.latency["read"]?.requests == 5)
        #expect(r.latency["write"]?.bytes == 4096)
        #expect(r.devices.map(\.device) == ["0x564184f66810"])
        #expect(r.warnings.isEmpty)
    }

    @Test func readOnceReportsTheRequestStartSector() throws {
        let r = try Self.lab("read-once")
        #expect(r.failures.map { [$0.operation.rawValue, "\($0.sector!)", "\($0.sectors!)", $0.errnoName!, $0.guestStatus!, $0.cause.rawValue] }
                == [["read", "8192", "128", "EIO", "IOERR", "backend-error"]])
        #expect(r.requests.completed == 5)
    }

    @Test func enospcPauseIsPausedAndRetriedSuccessfully() throws {
        let r = try Self.lab("enospc-pause")
        #expect(r.requests.completed == 5 && r.requests.failed == 0 && r.requests.pausedAndRetried == 1)
        let f = try #require(r.failures.first)
        #expect(f.cause == .pausedRetried && f.retrySucceeded == true)
        #expect(f.errno == 28 && f.errnoName == "ENOSPC" && f.guestStatus == "OK")
        #expect(f.operation == .write && f.sector == 4096 && f.sectors == 8 && f.attempts == 2)
        #expect(f.waitedSeconds == 1.003814)
        #expect(r.vmPauses == [VMPause(start: 1795363559.867034, end: 1795363560.87051, seconds: 1.003476, reason: "io-error")])
        #expect(r.inFlightTotal == 0)
        // The guest waited the whole pause for its write.
        #expect((r.latency["write"]?.popToFill?.maxUs ?? 0) > 1_000_000)
    }

    @Test func werrorStopLeavesTheRequestStuckWhileTheVMIsPaused() throws {
        let r = try Self.lab("werror-stop")
        #expect(r.requests.completed == 4 && r.requests.failed == 0 && r.requests.pausedAndRetried == 1)
        #expect(r.inFlightTotal == 1 && r.leakedTotal == 1)
        let i = try #require(r.inFlight.first)
        #expect(i.operation == .write && i.sector == 10240 && i.attempts == 3 && i.errnoName == "EIO")
        #expect(i.state.hasPrefix("waiting for a retry"))
        let f = try #require(r.failures.first)
        #expect(f.cause == .pausedRetried && f.retrySucceeded == false && f.guestStatus == nil && f.attempts == 3)
        #expect(r.vmPauses.count == 3 && r.vmPauses.last?.end == nil)
        #expect(r.exitStatus == 1)
    }

    @Test func flushFailureIsANonReadWriteRequest() throws {
        let r = try Self.lab("flush-eio")
        let f = try #require(r.failures.first)
        #expect(r.failuresTotal == 1)
        #expect(f.operation == .flush && f.cause == .otherRequest && f.guestStatus == "IOERR")
        #expect(f.errno == nil && f.sector == nil)
    }

    @Test func discardFailureIsTellable() throws {
        let r = try Self.lab("discard-errors")
        #expect(r.failures.map(\.operation) == [.discardOrWriteZeroes])
        #expect(r.failures.first?.cause == .otherRequest)
        // The ENOTSUP discard is swallowed by QEMU: completed OK.
        #expect(r.latency["discard-or-write-zeroes"]?.requests == 2)
    }

    @Test func ext4ReadonlyFailuresAndFlushes() throws {
        let r = try Self.lab("ext4-readonly")
        #expect(r.requests.completed == 18 && r.requests.failed == 7)
        #expect(r.failures.map { "\($0.sector!)+\($0.sectors!)" } == ["17026+128", "32770+2", "32770+2", "2+2", "2+2", "2+2", "2+2"])
        #expect(r.failures.allSatisfy { $0.errnoName == "EIO" && $0.cause == .backendError && $0.guestStatus == "IOERR" })
        #expect(r.failureGroups.count == 1 && r.failureGroups[0].count == 7)
        #expect(r.failureGroups[0].sectorMin == 2 && r.failureGroups[0].sectorEnd == 32772)
        #expect(r.latency["flush"]?.requests == 2)
    }

    @Test func asyncWriteESRCHDecodesAnyErrno() throws {
        let r = try Self.lab("async-write-esrch")
        #expect(r.failures.map { "\($0.errno!) \($0.errnoName!) \($0.errnoMessage!)" } == ["3 ESRCH No such process", "3 ESRCH No such process"])
        #expect(r.failures.allSatisfy { $0.sector == 6144 && $0.sectors == 32 })
    }

    @Test func everyLabCaptureReadsWithoutLoss() throws {
        for scenario in TraceTestData.scenarios {
            let r = try Self.lab(scenario)
            #expect(r.input.stats.malformedEvents == 0, "\(scenario)")
            #expect(r.input.stats.otherLines == 0 && r.input.stats.binaryLines == 0, "\(scenario)")
            #expect(r.devices.count == 1, "\(scenario)")
            #expect(r.requests.discardedAtReset == 0, "\(scenario)")
            #expect(r.timeSpan?.clock == .wall, "\(scenario)")
        }
    }

    // MARK: - Synthetic: what the lab cannot produce

    @Test func misalignedAndOutOfRangeRequestsAreRejectedByQEMU() throws {
        var t = SyntheticTrace()
        t.at(10, "virtqueue_pop vq 0x7f00 elem 0x5000 in_num 1 out_num 2")
        t.at(10, "virtio_blk_handle_write vdev 0xd000 req 0x5000 sector 7 nsectors 8")
        t.at(3, "virtio_blk_req_complete vdev 0xd000 req 0x5000 status 1")
        t.at(2, "virtqueue_fill vq 0x7f00 elem 0x5000 len 1 idx 0")
        // An unsupported request type: no handle, UNSUPP.
        t.at(10, "virtqueue_pop vq 0x7f00 elem 0x5000 in_num 3 out_num 2")
        t.at(3, "virtio_blk_req_complete vdev 0xd000 req 0x5000 status 2")
        t.at(2, "virtqueue_fill vq 0x7f00 elem 0x5000 len 1 idx 0")
        let r = try t.report()
        #expect(r.failures.map(\.cause) == [.rejected, .rejected])
        #expect(r.failures[0].operation == .write && r.failures[0].sector == 7 && r.failures[0].errno == nil)
        #expect(r.failures[0].guestStatus == "IOERR")
        #expect(r.failures[0].explanation.contains("not aligned"))
        #expect(r.failures[1].guestStatus == "UNSUPP" && r.failures[1].operation == .other)
        #expect(r.requests.failed == 2)
    }

    @Test func multipleDevicesAndQueuesAreKeptApart() throws {
        var t = SyntheticTrace()
        // vda: two queues; vdb: one. Requests interleave; pointers are unique while in flight.
        t.at(10, "virtqueue_pop vq 0xa1 elem 0x1000 in_num 2 out_num 1")
        t.at(10, "virtqueue_pop vq 0xa2 elem 0x2000 in_num 1 out_num 2")
        t.at(10, "virtqueue_pop vq 0xb1 elem 0x3000 in_num 1 out_num 2")
        t.at(10, "virtio_blk_handle_read vdev 0xaaa req 0x1000 sector 0 nsectors 8")
        t.at(10, "virtio_blk_handle_write vdev 0xaaa req 0x2000 sector 64 nsectors 8")
        t.at(10, "virtio_blk_handle_write vdev 0xbbb req 0x3000 sector 128 nsectors 16")
        t.at(50, "virtio_blk_rw_complete vdev 0xbbb req 0x3000 ret -5")
        t.at(1, "virtio_blk_req_complete vdev 0xbbb req 0x3000 status 1")
        t.at(1, "virtqueue_fill vq 0xb1 elem 0x3000 len 1 idx 0")
        t.at(50, "virtio_blk_rw_complete vdev 0xaaa req 0x2000 ret 0")
        t.at(1, "virtio_blk_req_complete vdev 0xaaa req 0x2000 status 0")
        t.at(1, "virtqueue_fill vq 0xa2 elem 0x2000 len 1 idx 0")
        t.at(50, "virtio_blk_rw_complete vdev 0xaaa req 0x1000 ret 0")
        t.at(1, "virtio_blk_req_complete vdev 0xaaa req 0x1000 status 0")
        t.at(1, "virtqueue_fill vq 0xa1 elem 0x1000 len 4097 idx 0")
        let r = try t.report()
        #expect(r.devices.map(\.device) == ["0xaaa", "0xbbb"])
        #expect(r.devices[0].queues == ["0xa1", "0xa2"] && r.devices[0].completed == 2 && r.devices[0].failed == 0)
        #expect(r.devices[1].queues == ["0xb1"] && r.devices[1].failed == 1)
        #expect(r.failures.map { "\($0.device) \($0.queue!) \($0.sector!)" } == ["0xbbb 0xb1 128"])
        #expect(r.latency["read"]?.popToFill?.count == 1)
        #expect(r.latency["read"]?.popToFill?.minUs == 206)
    }

    @Test func reusedPointersBelongToTheRightRequest() throws {
        var t = SyntheticTrace()
        t.request(vq: "0x7f00", vdev: "0xd000", elem: "0x5000", write: false, sector: 0, sectors: 8)
        t.request(vq: "0x7f00", vdev: "0xd000", elem: "0x5000", write: true, sector: 800, sectors: 16, ret: -5, status: 1)
        t.request(vq: "0x7f00", vdev: "0xd000", elem: "0x5000", write: false, sector: 1600, sectors: 8)
        // Pointer reused although the fill was not traced this time: the new pop closes the old one.
        t.at(10, "virtqueue_pop vq 0x7f00 elem 0x6000 in_num 2 out_num 1")
        t.at(10, "virtio_blk_handle_read vdev 0xd000 req 0x6000 sector 8 nsectors 8")
        t.at(10, "virtio_blk_rw_complete vdev 0xd000 req 0x6000 ret -61")
        t.at(10, "virtio_blk_req_complete vdev 0xd000 req 0x6000 status 1")
        t.at(10, "virtqueue_pop vq 0x7f00 elem 0x6000 in_num 2 out_num 1")
        t.at(10, "virtio_blk_handle_read vdev 0xd000 req 0x6000 sector 16 nsectors 8")
        t.at(10, "virtio_blk_rw_complete vdev 0xd000 req 0x6000 ret 0")
        t.at(10, "virtio_blk_req_complete vdev 0xd000 req 0x6000 status 0")
        t.at(10, "virtqueue_fill vq 0x7f00 elem 0x6000 len 4097 idx 0")
        let r = try t.report()
        #expect(r.failures.map { "\($0.operation.rawValue) \($0.sector!) \($0.errnoName!)" } == ["write 800 EIO", "read 8 ENODATA"])
        #expect(r.requests.completed == 3 && r.requests.failed == 2 && r.inFlightTotal == 0)
    }

    @Test func aDeviceResetDiscardsOutstandingElements() throws {
        var t = SyntheticTrace()
        t.at(10, "virtqueue_pop vq 0x7f00 elem 0x5000 in_num 2 out_num 1")
        t.at(10, "virtio_blk_handle_read vdev 0xd000 req 0x5000 sector 0 nsectors 8")
        t.at(10, "virtqueue_pop vq 0x7f00 elem 0x5800 in_num 2 out_num 1")
        t.at(10, "virtio_blk_handle_read vdev 0xd000 req 0x5800 sector 8 nsectors 8")
        t.at(10, "virtqueue_pop vq 0x7f00 elem 0x6000 in_num 1 out_num 1")   // popped, not yet handled
        // A virtio-net queue with a buffer held: not a block request, not ours to count.
        t.at(10, "virtio_queue_notify vdev 0xe000 n 0 vq 0x7e00")
        t.at(10, "virtqueue_pop vq 0x7e00 elem 0x9000 in_num 1 out_num 0")
        t.at(3_000_000, "virtio_set_status vdev 0xd000 val 0")
        t.at(10, "virtio_set_status vdev 0xe000 val 0")
        t.at(10, "virtio_set_status vdev 0xd000 val 15")
        let r = try t.report()
        #expect(r.requests.discardedAtReset == 3)
        #expect(r.devices.first?.discardedAtReset == 3)
        #expect(r.inFlightTotal == 0 && r.leakedTotal == 0 && r.failuresTotal == 0)
        #expect(r.exitStatus == 0)
    }

    @Test func requestsStillInFlightAreListedWithTheirAge() throws {
        var t = SyntheticTrace()
        t.at(10, "virtqueue_pop vq 0x7f00 elem 0x5000 in_num 1 out_num 2")
        t.at(10, "virtio_blk_handle_write vdev 0xd000 req 0x5000 sector 64 nsectors 8")
        t.request(vq: "0x7f00", vdev: "0xd000", elem: "0x6000", write: false, sector: 0, sectors: 8)
        t.at(2_500_000, "virtqueue_pop vq 0x7f00 elem 0x7000 in_num 2 out_num 1")
        t.at(200_000, "virtio_blk_handle_read vdev 0xd000 req 0x7000 sector 8 nsectors 8")
        let r = try t.report()
        #expect(r.inFlightTotal == 2 && r.leakedTotal == 1)
        #expect(r.inFlight.map(\.request) == ["0x5000", "0x7000"])
        #expect(r.inFlight[0].ageSeconds == 2.700134 && r.inFlight[0].leaked)
        #expect(r.inFlight[0].state == "submitted to storage, no completion")
        #expect(r.inFlight[1].ageSeconds == 0.2 && !r.inFlight[1].leaked)
        #expect(r.exitStatus == 1)
        var lenient = VirtioBlkRequestTracker.Options()
        lenient.leakAgeSeconds = 5
        #expect(try t.report(lenient).exitStatus == 0)
    }

    @Test func oldQEMUKVMTracesWithTheReqPlus8Layout() throws {
        var t = SyntheticTrace()
        t.at(10, "virtqueue_pop vq 0x1f00 elem 0x2008 in_num 1 out_num 2")
        t.at(10, "virtio_blk_handle_write req 0x2000 sector 2048 nsectors 8")
        t.at(100, "virtio_blk_rw_complete req 0x2000 ret -5")
        t.at(2, "virtio_blk_req_complete req 0x2000 status 1")
        t.at(2, "virtqueue_fill vq 0x1f00 elem 0x2008 len 1 idx 0")
        // No handle_read in qemu-kvm 0.12: a read shows only its completion.
        t.at(10, "virtqueue_pop vq 0x1f00 elem 0x3008 in_num 2 out_num 1")
        t.at(100, "virtio_blk_rw_complete req 0x3000 ret 0")
        t.at(2, "virtio_blk_req_complete req 0x3000 status 0")
        t.at(2, "virtqueue_fill vq 0x1f00 elem 0x3008 len 4097 idx 0")
        let r = try t.report()
        #expect(r.failures.map { "\($0.device) \($0.operation.rawValue) \($0.sector!) \($0.errnoName!) \($0.guestStatus!)" }
                == ["vq:0x1f00 write 2048 EIO IOERR"])
        #expect(r.failures[0].request == "0x2008")
        #expect(r.requests.completed == 1 && r.inFlightTotal == 0)
        #expect(r.latency["read"]?.requests == 1)
        #expect(r.devices.map(\.device) == ["vq:0x1f00"])
        #expect(r.warnings.contains("old qemu-kvm request layout: req pointers are elem - 8"))
    }

    @Test func withoutVirtqueueEventsRequestsStillCompleteInBoundedMemory() throws {
        var t = SyntheticTrace()
        for i in 0..<5000 {
            let req = String(format: "0x%x", 0x10_0000 + i * 0x200)     // every request a new pointer
            t.at(10, "virtio_blk_handle_write vdev 0xd000 req \(req) sector \(i * 8) nsectors 8")
            t.at(10, "virtio_blk_rw_complete vdev 0xd000 req \(req) ret \(i == 4999 ? -5 : 0)")
            t.at(1, "virtio_blk_req_complete vdev 0xd000 req \(req) status \(i == 4999 ? 1 : 0)")
        }
        let r = try t.report()
        #expect(r.requests.completed == 4999 && r.requests.failed == 1 && r.inFlightTotal == 0)
        #expect(r.failures.first?.sector == 4999 * 8)
        #expect(r.warnings.contains { $0.hasPrefix("virtqueue_pop/virtqueue_fill not traced") })
        #expect(r.latency["write"]?.handleToComplete?.count == 5000)
    }

    @Test func anIgnoredErrorIsStillAFailure() throws {
        var t = SyntheticTrace()
        t.request(vq: "0x7f00", vdev: "0xd000", elem: "0x5000", write: true, sector: 10, sectors: 2, ret: -5, status: 0)
        let r = try t.report()
        #expect(r.requests.completed == 1 && r.requests.backendErrorsIgnored == 1)
        #expect(r.failures.first?.guestStatus == "OK" && r.failures.first?.cause == .backendError)
        #expect(r.failures.first?.explanation.contains("werror=ignore") == true)
    }

    @Test func pausedAndRetriedIsRecognisedWithoutRunstateEvents() throws {
        var t = SyntheticTrace()
        t.at(10, "virtqueue_pop vq 0x7f00 elem 0x5000 in_num 2 out_num 1")
        t.at(10, "virtio_blk_handle_read vdev 0xd000 req 0x5000 sector 100 nsectors 8")
        t.at(10, "virtio_blk_rw_complete vdev 0xd000 req 0x5000 ret -5")
        t.at(2_000_000, "virtio_blk_handle_read vdev 0xd000 req 0x5000 sector 100 nsectors 8")
        t.at(10, "virtio_blk_rw_complete vdev 0xd000 req 0x5000 ret -5")
        t.at(10, "virtio_blk_req_complete vdev 0xd000 req 0x5000 status 1")
        t.at(10, "virtqueue_fill vq 0x7f00 elem 0x5000 len 1 idx 0")
        let r = try t.report()
        let f = try #require(r.failures.first)
        #expect(f.cause == .pausedRetried && f.retrySucceeded == false && f.guestStatus == "IOERR")
        #expect(f.waitedSeconds == 2.0 && f.attempts == 2)
        #expect(r.requests.failed == 1 && r.requests.pausedAndRetried == 1)
        #expect(r.vmPauses.isEmpty)
    }

    @Test func thousandsOfAlikeFailuresStayBoundedAndExactlyGrouped() throws {
        var t = SyntheticTrace()
        for i in 0..<3000 {
            t.request(vq: "0x7f00", vdev: "0xd000", elem: "0x5000", write: true, sector: 1000 + i * 8, sectors: 8,
                      ret: -5, status: 1)
        }
        t.request(vq: "0x7f00", vdev: "0xd000", elem: "0x5000", write: false, sector: 0, sectors: 8, ret: -61, status: 1)
        var options = VirtioBlkRequestTracker.Options()
        options.maxFailuresKept = 100
        let r = try t.report(options)
        #expect(r.failuresTotal == 3001 && r.failuresShown == 100 && r.failures.count == 100)
        #expect(r.failureGroups.map(\.count) == [3000, 1])
        #expect(r.failureGroups[0].sectorMin == 1000 && r.failureGroups[0].sectorEnd == 1000 + 3000 * 8)
        let text = TraceReportRenderer.text(r)
        #expect(text.contains("FAILURES: 3001"))
        #expect(text.contains("    3000 × write backend-error EIO → IOERR"))
    }

    @Test func noticesArriveAsThingsHappen() throws {
        var notices: [String] = []
        _ = try TraceSession.analyse(FileByteSource(path: TraceTestData.lab("enospc-pause").path), catalog: .bundled) { n in
            switch n {
            case let .failure(f): notices.append("failure \(f.cause.rawValue)")
            case let .vmPaused(_, waiting): notices.append("paused \(waiting.map { $0.sector ?? 0 })")
            case let .vmResumed(_, seconds): notices.append("resumed \(seconds ?? -1)")
            }
        }
        #expect(notices == ["paused [4096]", "resumed 1.003476", "failure paused-retried"])
    }

    @Test func elementsThatNeverReturnDoNotGrowMemoryWithoutBound() throws {
        // Only virtqueue_pop traced, every element a new address: the tracker sheds what no
        // virtio_blk event named instead of holding 150 000 elements.
        var tracker = VirtioBlkRequestTracker(catalog: .bundled)
        let pop = try #require(TraceEventCatalog.bundled.definition(named: "virtqueue_pop"))
        for i in 0..<150_000 {
            var e = TraceEvent(definition: pop, timestamp: TraceTimestamp(nanoseconds: Int64(i) * 1000, clock: .wall))
            e.bits[0] = 0x7e00
            e.bits[1] = 0x10_0000 + UInt64(i) * 0x100
            e.bits[2] = 1
            tracker.consume(e)
        }
        #expect(tracker.requests.count < VirtioBlkRequestTracker.maxTrackedElements)
        let r = tracker.report(input: TraceReport.Input(name: "pops", stats: TraceReadStats(format: "test"), definitions: []))
        #expect(r.inFlightTotal == 0 && r.exitStatus == 0)
    }

    /// 160 000 block requests popped and handled, none completed: past the limit every pop used
    /// to search all 100 000 open elements for ones to shed, finding none (minutes for this
    /// trace; found by an admin's review). Now at most once per eighth of the limit in pops.
    @Test func requestsInFlightPastTheLimitDoNotMakeEveryPopSearchThemAll() throws {
        var tracker = VirtioBlkRequestTracker(catalog: .bundled)
        let pop = try #require(TraceEventCatalog.bundled.definition(named: "virtqueue_pop"))
        let write = try #require(TraceEventCatalog.bundled.definition(named: "virtio_blk_handle_write"))
        let n = 160_000
        for i in 0..<n {
            let t = TraceTimestamp(nanoseconds: Int64(i) * 1000, clock: .wall)
            var p = TraceEvent(definition: pop, timestamp: t)
            p.bits[0] = 0x7e00
            p.bits[1] = 0x10_0000 + UInt64(i) * 0x100
            p.bits[2] = 1
            tracker.consume(p)
            var w = TraceEvent(definition: write, timestamp: t)
            w.bits[0] = 0x5000
            w.bits[1] = 0x10_0000 + UInt64(i) * 0x100
            w.bits[2] = UInt64(i) * 8
            w.bits[3] = 8
            tracker.consume(w)
        }
        let pastTheLimit = n - VirtioBlkRequestTracker.maxTrackedElements
        #expect(tracker.shedPasses <= 1 + pastTheLimit / (VirtioBlkRequestTracker.maxTrackedElements / 8))
        #expect(tracker.requests.count <= VirtioBlkRequestTracker.maxTrackedElements + pastTheLimit)
    }

    @Test func noBlockEventsMeansAWarningNotAFailure() throws {
        var t = SyntheticTrace()
        t.at(10, "virtqueue_pop vq 0x7e00 elem 0x9000 in_num 1 out_num 0")
        t.at(10, "virtqueue_fill vq 0x7e00 elem 0x9000 len 60 idx 0")
        let r = try t.report()
        #expect(r.failuresTotal == 0 && r.inFlightTotal == 0 && r.devices.isEmpty)
        #expect(r.warnings.first?.hasPrefix("no disk device events in this trace: enable them with -trace 'virtio_blk_*'") == true)
        #expect(r.exitStatus == 0)
    }
}
