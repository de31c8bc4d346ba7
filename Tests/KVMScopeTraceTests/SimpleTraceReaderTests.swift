import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeTrace

@Suite struct SimpleTraceReaderTests {
    static let fixtures = TestFixtures.dir.appendingPathComponent("trace")
    static var eventsFile: String { fixtures.appendingPathComponent("simpletrace-v4.trace-events").path }
    static var binaryFile: String { fixtures.appendingPathComponent("simpletrace-v4.bin").path }
    static var expectedFile: String { fixtures.appendingPathComponent("simpletrace-v4.simpletrace-py.txt").path }

    static func catalog() throws -> TraceEventCatalog {
        try TraceEventCatalog.load(eventsFile: eventsFile)
    }

    static func read(_ bytes: [UInt8], selection: TraceEventSelection = .all) throws -> ([TraceEvent], TraceReadStats) {
        var reader = SimpleTraceReader()
        var events: [TraceEvent] = []
        let decoder = TraceEventDecoder(catalog: try catalog(), selection: selection)
        try reader.read(MemoryByteSource(bytes, maxChunk: 7), decoder: decoder) { events.append($0) }
        return (events, reader.stats)
    }

    @Test func committedFixtureIsWhatTheWriterWrites() throws {
        let bytes = SimpleTraceWriter.fixture()
        if ProcessInfo.processInfo.environment["KVMSCOPE_WRITE_FIXTURES"] == "1" {
            try Data(bytes).write(to: URL(fileURLWithPath: Self.binaryFile))
        }
        let committed = try Data(contentsOf: URL(fileURLWithPath: Self.binaryFile))
        #expect(Array(committed) == bytes)
    }

    @Test func decodesEveryRecordWithTypedArguments() throws {
        let (events, stats) = try Self.read(SimpleTraceWriter.fixture())
        #expect(events.count == 22)
        #expect(stats.events == 22)
        #expect(stats.format == "qemu-simpletrace")
        #expect(stats.droppedEventRecords == 1)
        #expect(stats.droppedEvents == 17)
        #expect(stats.truncatedRecords == 0 && stats.corruptAtOffset == nil && stats.unmappedEvents == 0)
        #expect(stats.bytes == Int64(SimpleTraceWriter.fixture().count))

        let rw = events[3]
        #expect(rw.name == "virtio_blk_rw_complete")
        #expect(rw.timestamp == TraceTimestamp(nanoseconds: 1_000_044_751, clock: .monotonic))
        #expect(rw.thread == 4242)
        #expect(rw.value(named: "ret") == .signed(-28))
        #expect(rw.value(named: "req") == .pointer(0x55d0_c8a1_c000))
        let runstate = events[4]
        #expect(runstate.value(named: "new_state_str") == .string("io-error"))
        #expect(runstate.value(named: "new_state") == .signed(3))
        #expect(events[10].name == "Dropped_Event")
        #expect(events[10].value(named: "num_events_dropped") == .unsigned(17))
        let usb = events[17]
        #expect(usb.stringArgumentBytes(1) == Array("it's \"q\"\\".utf8) + [0x09, 0x0A, 0x00, 0x7F, 0xC3, 0xA9])
        #expect(usb.string(2) == "usb-tablet's")
        #expect(events[19].argumentCount == 0)
        let qxl = events[20]
        #expect(qxl.value(named: "qid") == .signed(-1))
        #expect(qxl.value(named: "mm_time") == .unsigned(0xffff_ffff))
    }

    @Test func unselectedEventsAreCountedNotDecoded() throws {
        let (events, stats) = try Self.read(SimpleTraceWriter.fixture(), selection: .names(["virtqueue_pop"]))
        #expect(events.map(\.name) == ["virtqueue_pop", "Dropped_Event", "virtqueue_pop"])
        #expect(stats.skippedEvents == 19)
        #expect(stats.eventCounts["virtio_blk_rw_complete"] == 3)
        #expect(stats.eventCounts["virtqueue_pop"] == 2)
    }

    @Test func bigEndianFilesReadTheSame() throws {
        var w = SimpleTraceWriter(bigEndian: true)
        w.mapping(id: 5, name: "virtio_blk_rw_complete")
        w.event(id: 5, timestampNs: 77, pid: 9, [.u64(0x10), .u64(0x20), .int(-5)])
        let (events, _) = try Self.read(w.bytes)
        #expect(events.count == 1)
        #expect(events[0].value(named: "ret") == .signed(-5))
        #expect(events[0].value(named: "req") == .pointer(0x20))
        #expect(events[0].timestamp?.nanoseconds == 77)
        #expect(w.bytes.withUnsafeBytes { SimpleTraceFormat().recognizes($0) })
    }

    @Test func otherVersionsAreRejectedWithAClearMessage() throws {
        for version: UInt64 in [0, 2, 3, 5] {
            var w = SimpleTraceWriter(version: version)
            w.mapping(id: 0, name: "virtqueue_pop")
            #expect(w.bytes.withUnsafeBytes { SimpleTraceFormat().recognizes($0) })
            #expect(throws: KVMScopeError.unsupportedFormat(
                path: "<memory>",
                detail: "simpletrace format version \(version) is not supported: kvmscope reads version 4, what QEMU writes today (read older files with the simpletrace.py of the QEMU that wrote them)")) {
                _ = try Self.read(w.bytes)
            }
        }
    }

    @Test func truncatedAndCorruptRecordsStopTheReadCleanly() throws {
        let full = SimpleTraceWriter.fixture()
        // Cut in the middle of the last record: everything before it is still delivered.
        let (events, stats) = try Self.read(Array(full.dropLast(3)))
        #expect(events.count == 21)
        #expect(stats.truncatedRecords == 1)
        // Every possible cut: never a crash, never more events than records before the cut.
        for cut in stride(from: 24, to: full.count, by: 5) {
            let (e, s) = try Self.read(Array(full.prefix(cut)))
            #expect(e.count <= 22)
            #expect(s.truncatedRecords <= 1)
        }
        // A record type that does not exist, and an absurd record length.
        var w = SimpleTraceWriter()
        w.mapping(id: 0, name: "virtqueue_pop")
        w.event(id: 0, timestampNs: 1, pid: 1, [.u64(1), .u64(2), .u64(1), .u64(1)])
        var bad = w
        bad.raw([7, 0, 0, 0, 0, 0, 0, 0])
        bad.raw(Array(repeating: 0xAB, count: 40))
        let (e1, s1) = try Self.read(bad.bytes)
        #expect(e1.count == 1)
        #expect(s1.corruptAtOffset == Int64(w.bytes.count))
        var huge = w
        huge.raw([1, 0, 0, 0, 0, 0, 0, 0] + Array(repeating: 0, count: 16) + [0xff, 0xff, 0xff, 0x7f] + [0, 0, 0, 0])
        let (e2, s2) = try Self.read(huge.bytes)
        #expect(e2.count == 1)
        #expect(s2.corruptAtOffset == Int64(w.bytes.count))
    }

    @Test func unknownAndUnmappedEventsAreCounted() throws {
        var w = SimpleTraceWriter()
        w.mapping(id: 1, name: "not_an_event_anyone_defined")
        w.event(id: 1, timestampNs: 1, pid: 1, [.u64(1)])
        w.event(id: 1, timestampNs: 2, pid: 1, [.u64(1)])
        w.event(id: 99, timestampNs: 3, pid: 1, [])
        let (events, stats) = try Self.read(w.bytes)
        #expect(events.isEmpty)
        #expect(stats.unknownEvents == 2)
        #expect(stats.unknownEventNames == ["not_an_event_anyone_defined": 2])
        #expect(stats.unmappedEvents == 1)
    }

    @Test func payloadTooShortForTheDefinitionIsMalformed() throws {
        var w = SimpleTraceWriter()
        w.mapping(id: 0, name: "virtqueue_pop")
        w.event(id: 0, timestampNs: 1, pid: 1, [.u64(1)])
        let (events, stats) = try Self.read(w.bytes)
        #expect(events.isEmpty)
        #expect(stats.malformedEvents == 1)
        #expect(stats.malformedEventNames == ["virtqueue_pop": 1])
    }

    /// The expected file was produced by QEMU's own scripts/simpletrace.py (the Formatter2 of
    /// QEMU 8.2 and later, with tracetool from the same tree, run with python3 on
    /// simpletrace-v4.bin and simpletrace-v4.trace-events; see README "simpletrace.py
    /// agreement"). kvmscope's --events-only dump must be byte-for-byte the same.
    @Test func dumpIsByteForByteWhatSimpletracePyPrints() throws {
        let expected = try String(contentsOfFile: Self.expectedFile, encoding: .utf8)
        var collected: [UInt8] = []
        var renderer = TraceEventDumpRenderer(style: .simpletrace)
        var reader = SimpleTraceReader()
        let decoder = TraceEventDecoder(catalog: try Self.catalog())
        try reader.read(FileByteSource(path: Self.binaryFile), decoder: decoder) { renderer.append($0, to: &collected) }
        #expect(String(decoding: collected, as: UTF8.self) == expected)

        let cli = try CLIRunner.run(["trace", "--events-only", "--events", Self.eventsFile, Self.binaryFile])
        #expect(cli.status == 0)
        #expect(cli.stdout == expected)
        #expect(cli.stderr == "")
    }
}
