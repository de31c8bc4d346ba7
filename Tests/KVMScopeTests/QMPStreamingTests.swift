import Foundation
import Testing
@testable import KVMScope

/// The QMP reader finds virsh record boundaries in one pass, does not let a truncated record
/// swallow the records after it, and explain summarises QMP events with bounded memory.
@Suite struct QMPStreamingTests {
    static func event(_ i: Int, action: String = "report") -> String {
        ##"{"timestamp": {"seconds": \##(1795363356 + i / 1000), "microseconds": \##((i % 1000) * 1000)}, "event": "BLOCK_IO_ERROR", "data": {"device": "drive0", "node-name": "#block206", "reason": "Input/output error", "operation": "write", "action": "\##(action)"}}"##
    }

    /// 60 000 lines of `[` after a virsh header: each byte is scanned once (it was rescanned per
    /// line, 20 s for 120 KB), and the record is counted, not lost.
    @Test func unclosedRecordIsScannedOnce() throws {
        let text = "event BLOCK_IO_ERROR at 1795363355.000000 for domain 'vm1': [\n" + String(repeating: "[\n", count: 60_000)
        var reader = QMPEventReader()
        var events = 0
        try reader.read(MemoryByteSource(text)) { _ in events += 1 }
        #expect(events == 0)
        #expect(reader.skippedLines == 60_001)
        #expect(reader.truncatedRecords == 1)
        #expect(reader.recordBytesScanned <= text.utf8.count)
        #expect(reader.recordBytesScanned >= 120_000)
    }

    /// A record that reaches the 1 MiB cap is given up there, in one pass too.
    @Test func runawayRecordStopsAtTheCap() throws {
        let line = "  \"x\": [" + String(repeating: "1,", count: 500) + "\n"
        let text = "event X at 1.0 for domain 'vm1': {\n" + String(repeating: line, count: 2_000)
        var reader = QMPEventReader()
        try reader.read(MemoryByteSource(text)) { _ in }
        #expect(reader.recordBytesScanned <= text.utf8.count)
        #expect(reader.skippedLines == 2_001)
    }

    /// One `--pretty` record cut short, then good events: the good events are all read (they were
    /// appended to the unclosed record until it reached 1 MiB, and lost with it).
    @Test func truncatedRecordDoesNotSwallowTheNextOnes() throws {
        let good = (0..<3000).map { Self.event($0) }.joined(separator: "\n")
        let virshNext = "2026-11-22 14:42:17.125+0000: event STOP for domain 'vm1': <null>"
        for next in [good, virshNext, "event RESUME at 1795363999.000500 for domain 'vm1': <null>"] {
            let text = "event BLOCK_IO_ERROR at 1795363355.000000 for domain 'vm1': {\n  \"device\": \"drive0\",\n" + next + "\n"
            var reader = QMPEventReader()
            var names: [String] = []
            try reader.read(MemoryByteSource(text)) { names.append($0.name) }
            #expect(names.count == (next == good ? 3000 : 1))
            #expect(reader.skippedLines == 2)
            #expect(reader.truncatedRecords == 1)
        }
        // Indented continuation lines and the final "}" still belong to the record.
        let pretty = "event BLOCK_IO_ERROR at 1795363355.000000 for domain 'vm1': {\n    \"device\": \"d\",\n    \"nested\": {\n        \"a\": 1\n    }\n}\n"
        let (events, skipped) = try QMPEventReader.readAll(MemoryByteSource(pretty))
        #expect(events.count == 1 && skipped == 0)
    }

    /// Many BLOCK_IO_ERRORs: the lists keep the detail limit, the totals stay exact (every event
    /// was kept before: 200 000 took 557 MB).
    @Test func timelineKeepsTheDetailLimit() throws {
        var t = QMPTimeline(detailLimit: 100)
        for i in 0..<5_000 {
            t.consume(QMPEvent(name: "BLOCK_IO_ERROR", time: 1795363356 + Double(i),
                               data: .object(["device": .string("drive0"), "operation": .string("write"),
                                              "action": .string("stop"), "reason": .string("No space left on device"),
                                              "nospace": .bool(true)]), line: 3 * i + 1))
            t.consume(QMPEvent(name: "STOP", time: 1795363356.5 + Double(i), data: nil, line: 3 * i + 2))
            t.consume(QMPEvent(name: "RESUME", time: 1795363356.9 + Double(i), data: nil, line: 3 * i + 3))
        }
        t.consume(QMPEvent(name: "SHUTDOWN", time: 1795370000, data: nil, line: 99_999))
        t.finish()
        #expect(t.ioErrors.count == 100 && t.ioErrorsTotal == 5_000)
        #expect(t.pauses.count == 100 && t.pausesTotal == 5_000)
        #expect(t.otherEvents.count == 1 && t.otherEventsTotal == 1)
        // Each kept pause's retry failed again: the next stop-error came right after its RESUME
        // (for the 100th, error 101, itself beyond the limit but still judged).
        #expect(t.pauses.allSatisfy { $0.retrySucceeded == false })
    }

    /// Streaming gives what the whole-array path gave, on every lab capture.
    @Test func streamingMatchesTheArrayPathOnLabCaptures() throws {
        for scenario in ["async-write-esrch", "discard-errors", "enospc-pause", "ext4-readonly", "flush-eio",
                         "nbd-eio", "read-once", "werror-stop", "write-eio"] {
            let path = LabFixtures.path(scenario, "qmp.jsonl")
            let whole = QMPTimeline(events: try QMPEventReader.readAll(FileByteSource(path: path)).events)
            var reader = QMPEventReader()
            var streamed = QMPTimeline(detailLimit: 10_000)
            try reader.read(FileByteSource(path: path)) { streamed.consume($0) }
            streamed.finish(reader: reader)
            #expect(streamed.ioErrors == whole.ioErrors && streamed.pauses == whole.pauses
                    && streamed.otherEvents == whole.otherEvents, "\(scenario)")
            #expect(streamed.skippedLines == 0 && streamed.badTimestamps == 0, "\(scenario)")
        }
    }

    /// The byte-level trim gives what Foundation's `trimmingCharacters(in: .whitespaces)` gives.
    @Test func trimIsFoundationsTrim() {
        var rng = SplitMix64(seed: 5)
        let pieces: [[UInt8]] = [[0x20], [0x09], [0x61], [0x7B], [0xC2, 0xA0], [0xE3, 0x80, 0x80], [0xFF], [0x0D], [0x22]]
        for _ in 0..<5_000 {
            var bytes: [UInt8] = []
            for _ in 0..<rng.below(8) { bytes += pieces[Int(rng.below(UInt64(pieces.count)))] }
            bytes.withUnsafeBufferPointer { buf in
                let line = LineBytes(buf)
                #expect(QMPEventReader.trimmed(line) == line.string.trimmingCharacters(in: .whitespaces), "\(bytes)")
            }
        }
    }

    @Test func explainJSONHasTheTotals() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qmp-stream-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("qmp.jsonl")
        try ((0..<30).map { Self.event($0) }.joined(separator: "\n") + "\nnot qmp\n").write(to: file, atomically: true, encoding: .utf8)
        let r = try CLIRunner.run(["explain", "--json", "--qmp", file.path])
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let qmp = try #require(o["qmp"] as? [String: Any])
        #expect(qmp["ioErrorsTotal"] as? Int == 30 && (qmp["ioErrors"] as? [Any])?.count == 30)
        for k in ["pausesTotal", "otherEventsTotal", "detailLimit", "skippedLines", "badTimestamps"] {
            #expect(qmp[k] != nil, "missing \(k)")
        }
        #expect(qmp["skippedLines"] as? Int == 1)
    }
}
