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
        #expect(layers.allSatisfy { $0.layer == "host-block-device" && $0.hostDevice == "loop0" && $0.hostSector == 51400 })
    }

    /// The BLOCK_IO_ERRORs no traced failure accounts for are the ones QMP stamped before the
    /// trace's first event (record connects to QMP, then turns the trace events on): the verdict
    /// says so, counted from the stamps, instead of a bare "and 9 more".
    @Test func blockIOErrorsBeforeTheTraceAreSaidToBe() throws {
        let r = try Self.explain()
        let qmpLines = try String(contentsOfFile: Self.capture + "/qmp.jsonl", encoding: .utf8)
            .components(separatedBy: "\n").filter { $0.contains("\"BLOCK_IO_ERROR\"") }
        let traceStart = try #require(r.host?.timeSpan?.start)
        let early = qmpLines.filter { line in
            guard let d = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let t = d["timestamp"] as? [String: Any], let s = t["seconds"] as? Double,
                  let us = t["microseconds"] as? Double else { return false }
            return s + us / 1e6 < traceStart
        }.count
        #expect(early == 10)
        #expect(r.verdict.summary.contains("and 9 more; all 10 came before the trace began, so the trace has no request for them"))
        // The host's three records of those writes are stamped before the trace began too.
        #expect(r.verdict.summary.contains("3 other storage errors that no QEMU failure is tied to (all 3 came before the trace began, so the trace has no request for them;"))
    }

    /// A capture whose trace.log was deleted (or not copied) is not one that "recorded no trace
    /// lines": capture.json names the file and counts its lines (found by an admin's review).
    @Test func aMissingFileIsSaidToBeMissing() throws {
        let dir = NSTemporaryDirectory() + "kvmscope-missing-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: Self.capture, toPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.removeItem(atPath: dir + "/trace.log")
        let m = try #require(try CaptureManifest.load(directory: dir))
        var inputs = ExplainSession.Inputs()
        try ExplainSession.addInputs(ofCapture: m, directory: dir, to: &inputs)
        #expect(inputs.notes.contains { $0.hasSuffix("trace.log: named in capture.json but missing from the capture directory: not read") })
        #expect(!inputs.notes.contains { $0.contains("no trace lines were recorded") })
    }

    /// A burst as the lab's host disk gives it: QEMU sees each error 0-8 ms after the kernel,
    /// the guest's retries 5 ms apart. Tied nearest-first, a failure takes the next one's host
    /// error and the last is left with none ("not logged", falsely); every one is tied.
    @Test func aBurstTiesEveryFailure() {
        // 25 writes 5 ms apart, each seen by QEMU 4 ms after the kernel: nearest-first, each
        // takes the next one's error (1 ms away, not 4), and the last finds only the first, 120 ms back.
        let lags = [Double](repeating: 0.004, count: 25)
        var host: [(index: Int, time: Double, write: Bool?)] = []
        var qemu: [HostLayerCorrelation.QEMUFailure] = []
        for (i, lag) in lags.enumerated() {
            let h = 100 + Double(i) * 0.005
            host.append((i, h, true))
            qemu.append(.init(time: h + lag, operation: "write", write: true, errno: "EIO", device: "drive0", trace: i, qmp: nil))
        }
        #expect(HostLayerCorrelation.tie(qemu, host, offset: 0, earliest: false).count < lags.count)   // the old way
        let tied = HostLayerCorrelation.tie(qemu, host, offset: 0)
        #expect(tied.count == lags.count)
        #expect(tied.map(\.host) == Array(0..<lags.count))
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
