import Testing
import Foundation
import KVMScopeCore
import KVMScopeHost
import KVMScopeLive
@testable import KVMScopeExplain
@testable import KVMScope
import KVMScopeTestSupport

/// A real `kvmscope record` capture of a guest whose host disk fails in bursts faster than the
/// host kernel's rate limiter (Tests/Fixtures/record/host-disk-eio, made by lab/record-host-disk):
/// with the block_rq_error tracepoint, every failure is tied to the host device; without it,
/// the rate-limited log can speak for only some, and says so.
@Suite struct ExplainBlockTracepointTests {
    static let capture = TestFixtures.path("record/host-disk-eio")

    static func explain(_ edit: (inout CaptureManifest) -> Void = { _ in }) throws -> ExplainReport {
        let dir = NSTemporaryDirectory() + "kvmscope-bre-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: capture, toPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var m = try #require(try CaptureManifest.load(directory: dir))
        edit(&m)
        var inputs = ExplainSession.Inputs()
        try ExplainSession.addInputs(ofCapture: m, directory: dir, to: &inputs)
        return try ExplainSession.run(inputs)
    }

    @Test func everyFailureIsTiedToTheHostDevice() throws {
        let r = try Self.explain()
        let hk = try #require(r.hostKernel)
        #expect(hk.input.suppressedMessages > 0)            // the kernel log is rate-limited…
        #expect(hk.input.blockTracepointComplete)           // …the tracepoint is not
        let records = try String(contentsOfFile: Self.capture + "/host-block-errors.log", encoding: .utf8)
            .components(separatedBy: "\n").filter { $0.contains("block_rq_error: ") }.count
        let messages = try String(contentsOfFile: Self.capture + "/host-dmesg.log", encoding: .utf8)
            .components(separatedBy: "\n").filter { $0.contains("I/O error, dev loop0") }.count
        #expect(hk.kinds[.blockError] == records)           // each failed request once
        #expect(hk.input.blockErrorsAlsoTraced == messages)
        let layers = r.layers
        #expect(!layers.isEmpty)
        #expect(layers.allSatisfy { $0.layer == "host-block-device" && $0.hostDevice == "loop0" && $0.hostSector == 2048 })
    }

    /// The same capture without the tracepoint (an older kvmscope, or not root): the log's
    /// silence after the rate limiter proves nothing, and no failure is blamed on "not logged".
    @Test func withoutTheTracepointTheRateLimitedLogConcludesNothingForTheRest() throws {
        let r = try Self.explain { $0.files.hostBlockErrors = nil; $0.hostBlockTrace = nil }
        let layers = r.layers
        #expect(layers.contains { $0.layer == "host-block-device" })
        #expect(layers.contains { $0.layer == "host-log-rate-limited" })
        #expect(!layers.contains { $0.layer == "not-logged-by-host-kernel" })
    }

    /// Lost records: the recording is not the whole list, so the rate limiter's silence is
    /// back to proving nothing for a failure no record ties.
    @Test func lostRecordsMakeTheRecordingIncomplete() throws {
        let r = try Self.explain { $0.hostBlockTrace?.lostRecords = 3 }
        #expect(r.hostKernel?.input.blockTracepointComplete == false)
    }

    /// An uncalibrated trace clock is not joined to the wall-clock host log by guess.
    @Test func anUncalibratedRecordingIsNotUsed() throws {
        let r = try Self.explain { $0.hostBlockTrace?.wallOffsetMicroseconds = nil }
        #expect(r.hostKernel?.input.blockTracepointRecords == 0)
        #expect(r.inputs.notes.contains { $0.contains("could not calibrate its trace clock") })
    }
}
