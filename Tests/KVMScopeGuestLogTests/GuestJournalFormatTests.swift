import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeGuestLog

/// The journal's own formats (docs/JOURNAL_EXPORT_FORMATS.md) at their edges: binary fields,
/// byte arrays, several values, hostile lengths and sizes. Nothing crashes or is guessed.
@Suite struct GuestJournalFormatTests {
    typealias F = GuestFixtures

    static let ioError = "I/O error, dev vda, sector 2048 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2"

    static func read(_ bytes: [UInt8]) throws -> (events: [GuestLogEvent], stats: GuestLogInputStats) {
        var reader = GuestLogReader()
        var sink = GuestLogEventCollector()
        try reader.read(MemoryByteSource(bytes, name: "t", maxChunk: 7), into: &sink)
        return (sink.events, reader.stats)
    }

    static func le64(_ n: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } }

    @Test func exportBinaryMessageWhoseLengthHoldsANewline() throws {
        // 266 = 0x010A: the first length byte is "\n", which splits the line.
        var message = Array((Self.ioError + "\n").utf8)
        message += [UInt8](repeating: 0x78, count: 266 - message.count)
        var bytes = Array("__CURSOR=s=1;i=1\n__REALTIME_TIMESTAMP=1795363589936252\n_BOOT_ID=279e59806275864525df00dde5da3e38\n_TRANSPORT=kernel\n_SOURCE_MONOTONIC_TIMESTAMP=2329791\nMESSAGE\n".utf8)
        bytes += Self.le64(UInt64(message.count)) + message + [0x0A]
        bytes += Array("_HOSTNAME=guest\n\n".utf8)
        let (events, stats) = try Self.read(bytes)
        #expect(stats.journalRecords == 1)
        #expect(stats.skippedJournalRecords == 0)
        guard case .blockError(let e)? = events.first else { Issue.record("no block error: \(events)"); return }
        #expect(e.sector == 2048)
        #expect(e.location.time.uptimeMicroseconds == 2_329_791)
        #expect(e.location.time.wallClock?.description == "2026-11-22T16:06:29.936252Z")
        #expect(stats.boots.first?.bootId == "279e59806275864525df00dde5da3e38")
    }

    @Test func exportHostileLengthsAreSkippedAndCounted() throws {
        var bytes = Array("__CURSOR=a\n_TRANSPORT=kernel\nMESSAGE\n".utf8) + Self.le64(.max) + Array("junk\nMORE=1\n\n".utf8)
        bytes += Array("__CURSOR=b\n_TRANSPORT=kernel\n_SOURCE_MONOTONIC_TIMESTAMP=5\nMESSAGE=\(Self.ioError)\n\n".utf8)
        // A declared 1 GiB field cut off by the end of the input: followed, not stored.
        bytes += Array("__CURSOR=c\n_TRANSPORT=kernel\nMESSAGE\n".utf8) + Self.le64(1 << 30) + [UInt8](repeating: 0x41, count: 300_000)
        let (events, stats) = try Self.read(bytes)
        #expect(events.count == 1)
        #expect(stats.journalRecords == 3)
        #expect(stats.skippedJournalRecords == 2)
        // The cut-off field's 300 000 bytes are one line over the splitter's 64 KiB limit.
        #expect(stats.overlongLines == 1)
        #expect(stats.skippedLines == 3)
    }

    @Test func exportNumbersAreChecked() throws {
        let text = "__CURSOR=a\n__MONOTONIC_TIMESTAMP=99999999999999999999999\n__REALTIME_TIMESTAMP=18446744073709551615\n_TRANSPORT=kernel\nMESSAGE=\(Self.ioError)\n\n"
        let (events, stats) = try F.events(text)
        #expect(stats.recognisedKernelLines == 1)
        #expect(events.first?.location.time == .unknown)
    }

    @Test func jsonMessageForms() throws {
        let bytes = Array(Self.ioError.utf8).map(String.init).joined(separator: ",")
        let lines = [
            #"{"_TRANSPORT":"kernel","__MONOTONIC_TIMESTAMP":"1000","MESSAGE":[\#(bytes)]}"#,
            #"{ "_TRANSPORT" : "kernel", "__MONOTONIC_TIMESTAMP" : "2000", "MESSAGE" : [ "\#(Self.ioError)", "second value" ] }"#,
            #"{"_TRANSPORT":"kernel","__MONOTONIC_TIMESTAMP":"3000","MESSAGE":"I\/O error, dev vda, sector 2048 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class \u0032"}"#,
            "\u{1E}" + #"{"_TRANSPORT":"kernel","__MONOTONIC_TIMESTAMP":"4000","MESSAGE":"\#(Self.ioError)","X":{"nested":[1.5,-2e3,true,false,null]}}"#,
            #"{"_TRANSPORT":"syslog","SYSLOG_IDENTIFIER":"logger","MESSAGE":"\#(Self.ioError)"}"#,
            #"{"timestamp": {"seconds": 1795363587, "microseconds": 606461}, "event": "RESUME"}"#,
            #"{"_TRANSPORT":"kernel","MESSAGE":"unterminated"#,
        ]
        let (events, stats) = try F.events(lines.joined(separator: "\n") + "\n")
        #expect(events.map(\.location.time.uptimeMicroseconds) == [1000, 2000, 3000, 4000])
        #expect(stats.notKernelLines == 2)          // logger's line and the QMP event
        #expect(stats.recognisedKernelLines == 4)
        #expect(stats.unrecognisedLines == 1)       // not JSON after all: read as text, not understood
    }

    @Test func jsonPrettyObjectsAndTheirLimit() throws {
        let pretty = "{\n\t\"_TRANSPORT\" : \"kernel\",\n\t\"__MONOTONIC_TIMESTAMP\" : \"7\",\n\t\"MESSAGE\" : \"\(Self.ioError)\"\n}\n"
        let huge = "{\n" + String(repeating: "\t\"F\" : \"" + String(repeating: "y", count: 1000) + "\",\n", count: 300) + "\t\"MESSAGE\" : \"x\"\n}\n"
        let again = pretty.replacingOccurrences(of: "\"7\"", with: "\"8\"")
        let (events, stats) = try F.events(pretty + huge + again + "{\n\t\"MESSAGE\" : \"cut off")
        #expect(events.count == 2)
        #expect(stats.journalRecords == 4)
        #expect(stats.skippedJournalRecords == 2)
        let styled = stats.styles.values.reduce(0, +)
        #expect(styled + stats.notKernelLines + stats.journalLines - (stats.journalRecords - stats.skippedJournalRecords) == stats.lines)
    }

    /// journalctl prints "-- Boot ID --" between boots in its text formats.
    @Test func bootSeparatorLinesSplitBoots() throws {
        let text = """
        [    2.329791] guest kernel: \(Self.ioError)
        -- Boot 0123456789abcdef0123456789abcdef --
        [    0.000000] guest kernel: Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP
        [    2.329791] guest kernel: \(Self.ioError)
        -- No entries --

        """
        let (events, stats) = try F.events(text)
        #expect(stats.bootCount == 2)
        #expect(stats.boots.map(\.bootId) == [nil, "0123456789abcdef0123456789abcdef"])
        #expect(events.map(\.location.boot) == [1, 2])
        #expect(stats.duplicateEvents == 0)
        #expect(stats.notKernelLines == 2)
    }

    @Test func rfc5424FromOtherProgramsIsNotTheKernel() throws {
        let text = """
        <14>1 2026-11-22T16:06:29.936252+00:00 guest logger 123 - - \(Self.ioError)
        <4>1 2026-11-22T16:06:29.936252+00:00 guest kernel - - [meta sequenceId="1"] \(Self.ioError)

        """
        let (events, stats) = try F.events(text)
        #expect(stats.notKernelLines == 1)
        #expect(events.count == 1)
        #expect(events.first?.location.time.wallClock?.description == "2026-11-22T16:06:29.936252Z")
    }

    @Test func ansiAndCarriageReturnsAreStripped() throws {
        let text = "\u{1B}[0;1;31m[    2.329791] \(Self.ioError)\u{1B}[0m\r\r\n\u{1B}]0;title\u{07}[    3.000000] JBD2: Error -5 detected when updating journal superblock for vda-8.\r\r\n"
        let (events, stats) = try F.events(text)
        #expect(events.count == 2)
        #expect(stats.binaryLines == 0)
    }
}

/// What explain's classifier sees: the registry names the journal formats by their content.
@Suite struct GuestJournalDetectionTests {
    @Test(arguments: [("json", "kernel-log/journal-json"), ("json-seq", "kernel-log/journal-json"),
                      ("json-pretty", "kernel-log/journal-json"), ("export", "kernel-log/journal-export")])
    func registryDetectsJournalFormats(_ format: String, _ name: String) throws {
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: TestFixtures.path("guest/transformed/write-eio.\(format).log"))).prefix(InputSample.size))
        let found = bytes.withUnsafeBytes { GuestLogFormats.list.detect(.guestLog, sample: $0) }
        #expect(found?.name == name)
    }

    @Test func qmpIsNotAJournal() throws {
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: LabFixtures.path("write-eio", "qmp.jsonl"))).prefix(InputSample.size))
        #expect(bytes.withUnsafeBytes { GuestLogFormats.list.detect(.guestLog, sample: $0) } == nil)
    }
}
