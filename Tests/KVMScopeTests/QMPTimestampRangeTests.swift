import Foundation
import Testing
@testable import KVMScope

/// QMP timestamps outside what a host clock can say (negative, beyond year 9999, not finite)
/// are rejected by the reader and counted as skipped: before, explain multiplied them into
/// Int64 microseconds and trapped.
@Suite struct QMPTimestampRangeTests {
    static func raw(_ seconds: String, _ micros: String = "0") -> String {
        ##"{"timestamp": {"seconds": \##(seconds), "microseconds": \##(micros)}, "event": "BLOCK_IO_ERROR", "data": {"device": "drive0", "node-name": "#block206", "reason": "Input/output error", "operation": "write", "action": "report"}}"##
    }
    static let good = raw("1795363356", "671778")

    @Test func rawTimestampsOutOfRangeAreSkipped() throws {
        for bad in [Self.raw("9300000000000"), Self.raw("-9300000000000"), Self.raw("-1"), Self.raw("1e400"), Self.raw("1795363356", "-5"),
                    Self.raw("1795363356", "1000000"), Self.raw("1795363356", "1e300"), Self.raw("253402300800")] {
            let (events, skipped) = try QMPEventReader.readAll(MemoryByteSource(bad + "\n" + Self.good + "\n"))
            #expect(events.count == 1, "\(bad)")
            #expect(events.first?.time == 1795363356.671778, "\(bad)")
            #expect(skipped == 1, "\(bad)")
        }
    }

    @Test func virshTimestampsOutOfRangeAreSkipped() throws {
        let huge = String(repeating: "9", count: 400)   // Double() makes this +infinity
        for at in ["9300000000000.000000", huge + ".0", "99999999999999999999.5", "253402300800.0"] {
            let text = "event STOP at \(at) for domain 'vm1': <null>\nevent RESUME at 1795363999.000500 for domain 'vm1': <null>\n"
            let (events, skipped) = try QMPEventReader.readAll(MemoryByteSource(text))
            #expect(events.map(\.name) == ["RESUME"], "\(at.prefix(30))")
            #expect(skipped == 1, "\(at.prefix(30))")
        }
        // A pretty record with a bad stamp is skipped whole: every one of its lines is counted.
        let pretty = "event BLOCK_IO_ERROR at 9300000000000.5 for domain 'vm1': {\n  \"device\": \"d\"\n}\n"
        let (events, skipped) = try QMPEventReader.readAll(MemoryByteSource(pretty))
        #expect(events.isEmpty)
        #expect(skipped == 3)
    }

    @Test func explainOnAHugeTimestampExitsCleanly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qmp-range-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("qmp.jsonl")
        try (Self.raw("9300000000000") + "\n" + Self.raw("-9300000000000") + "\n" + Self.good + "\n")
            .write(to: file, atomically: true, encoding: .utf8)
        let r = try CLIRunner.run(["explain", "--qmp", file.path], environment: ["NO_COLOR": "1"])
        #expect(r.status == 0 || r.status == 1, "status \(r.status): \(r.stderr)")
        #expect(!r.stderr.contains("Fatal error"))
        #expect(r.stdout.contains("QMP"))
    }
}
