import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeTracefs

/// A sample as a comparable value (the payload copied out of the callback).
struct ReadSample: Equatable {
    var event: String
    var comm: String?
    var tid: Int32?
    var cpu: UInt32?
    var timeNs: UInt64?
    var payload: [UInt8]
}

func readPerf(_ stream: ByteStream) throws -> ([ReadSample], PerfDataReader) {
    var reader = PerfDataReader()
    var out: [ReadSample] = []
    try reader.read(stream) { s in
        out.append(ReadSample(event: s.event.fullName, comm: s.comm, tid: s.tid, cpu: s.cpu, timeNs: s.timeNs, payload: Array(s.payload)))
    }
    return (out, reader)
}

func readPerf(bytes: [UInt8], name: String = "test.data") throws -> ([ReadSample], PerfDataReader) {
    try readPerf(MemoryByteSource(bytes, name: name, maxChunk: 4093))
}

func readPerf(path: String) throws -> ([ReadSample], PerfDataReader) { try readPerf(try FileByteSource(path: path)) }

/// `comm tid [cpu] secs.ns: sys:event: ...` — the prefix of a `perf script --ns` line.
struct ScriptLine: Equatable {
    var comm: String, tid: Int32, cpu: UInt32, timeNs: UInt64, event: String
    var rest: String

    init?(_ line: Substring) {
        guard let open = line.firstIndex(of: "["), let close = line[open...].firstIndex(of: "]") else { return nil }
        let head = line[..<open].trimmingCharacters(in: .whitespaces)
        guard let sp = head.lastIndex(of: " "), let tid = Int32(head[head.index(after: sp)...]) else { return nil }
        comm = head[..<sp].trimmingCharacters(in: .whitespaces)
        self.tid = tid
        guard let cpu = UInt32(line[line.index(after: open)..<close]) else { return nil }
        self.cpu = cpu
        let after = line[line.index(after: close)...].drop { $0 == " " }
        guard let colon = after.firstIndex(of: ":") else { return nil }
        let stamp = after[..<colon].split(separator: ".")
        guard stamp.count == 2, let s = UInt64(stamp[0]), let ns = UInt64(stamp[1]), stamp[1].count == 9 else { return nil }
        timeNs = s * 1_000_000_000 + ns
        let ev = after[after.index(after: colon)...].drop { $0 == " " }
        guard let evEnd = ev.range(of: ": ") else { return nil }
        event = String(ev[..<evEnd.lowerBound])
        rest = String(ev[evEnd.upperBound...])
    }
}

func scriptLines(_ name: String) throws -> [ScriptLine] {
    try PerfFixtures.text("\(name).perf-script.txt").split(separator: "\n").map { line in
        guard let l = ScriptLine(line) else { throw KVMScopeError.usage("bad perf script line: \(line)") }
        return l
    }
}

@Suite struct PerfDataReaderRealFileTests {
    /// Every real capture, read at offsets (a path) and straight through (xz-compressed, so
    /// not seekable): the same samples, and the same as perf script printed, event for event
    /// (task, thread, CPU, time to the ns, event), in perf script's order.
    @Test(arguments: ["kfree_skb", "kfree_skb-pipe", "sched_switch", "block", "kvm", "kvm-stat", "kfree_skb-bigendian-synthetic"])
    func realCaptureEqualsPerfScript(name: String) throws {
        let (viaFile, fileReader) = try readPerf(path: try PerfFixtures.file(name))
        let (viaStream, _) = try readPerf(path: PerfFixtures.path("\(name).data.xz"))
        #expect(viaFile == viaStream)
        let lines = try scriptLines(name)
        #expect(viaFile.count == lines.count)
        for (s, l) in zip(viaFile, lines) {
            #expect(s.event == l.event)
            #expect(s.comm == l.comm)
            #expect(s.tid == l.tid)
            #expect(s.cpu == l.cpu)
            #expect(s.timeNs == l.timeNs)
        }
        #expect(fileReader.stats.pipeMode == name.hasSuffix("-pipe"))
        #expect(fileReader.arch == "x86_64")
        #expect(fileReader.stats.malformedSamples == 0 && fileReader.stats.samplesWithoutFormat == 0)
    }

    /// sched_switch's fields, decoded with the stored format, print as perf script printed them.
    @Test func schedSwitchFieldsEqualPerfScript() throws {
        var reader = PerfDataReader()
        var texts: [String] = []
        try reader.read(try FileByteSource(path: PerfFixtures.path("sched_switch.data.xz"))) { s in
            var v: [String: String] = [:]
            for (name, value) in s.fields() {
                switch value {
                case let .number(n): v[name] = String(Int64(bitPattern: n))
                case let .text(t): v[name] = t
                default: v[name] = "?"
                }
            }
            texts.append("prev_comm=\(v["prev_comm"]!) prev_pid=\(v["prev_pid"]!) prev_prio=\(v["prev_prio"]!)"
                         + " ==> next_comm=\(v["next_comm"]!) next_pid=\(v["next_pid"]!) next_prio=\(v["next_prio"]!)")
        }
        let expected = try scriptLines("sched_switch").map { l in
            // perf prints prev_state between prev_prio and ==>; the rest must match exactly.
            l.rest.replacingOccurrences(of: #" prev_state=\S+"#, with: "", options: .regularExpression)
        }
        #expect(texts == expected)
    }

    /// block:* is 20 attrs in one file: samples are told apart by their ids.
    @Test func blockEventsAreToldApartByID() throws {
        let (samples, reader) = try readPerf(path: PerfFixtures.path("block.data.xz"))
        #expect(reader.attrs.count > 10)
        #expect(Set(reader.attrs.compactMap(\.name)).contains("block:block_rq_issue"))
        #expect(Set(samples.map(\.event)).count > 2)
    }

    /// The kvm captures hold no samples (TCG host) but store the kvm formats, with the ids
    /// the attrs name in their config.
    @Test func kvmCaptureStoresTheKVMFormats() throws {
        for name in ["kvm", "kvm-stat"] {
            let (_, reader) = try readPerf(path: PerfFixtures.path("\(name).data.xz"))
            let events = try #require(reader.tracingData?.events)
            let exit = try #require(events.values.first { $0.fullName == "kvm:kvm_exit" })
            let entry = try #require(events.values.first { $0.fullName == "kvm:kvm_entry" })
            #expect(reader.attrs.contains { $0.config == UInt64(exit.format.id) && $0.name == "kvm:kvm_exit" })
            #expect(reader.attrs.contains { $0.config == UInt64(entry.format.id) })
            #expect(exit.format.field("exit_reason") != nil && entry.format.field("vcpu_id") != nil)
        }
    }
}

/// Files written here (PerfDataWriter, synthetic) with the kfree_skb format of the real capture.
@Suite struct PerfDataReaderWrittenFileTests {
    static func kfreeEvent() throws -> (PerfDataWriter.Event, [PerfDataWriter.Sample]) {
        var reader = PerfDataReader()
        var samples: [PerfDataWriter.Sample] = []
        var event: PerfDataWriter.Event?
        try reader.read(try FileByteSource(path: PerfFixtures.path("kfree_skb.data.xz"))) { s in
            event = .init(system: s.event.system, formatText: s.event.text, id: s.event.format.id)
            samples.append(.init(event: 0, pid: s.pid!, tid: s.tid!, timeNs: s.timeNs!, cpu: s.cpu!, payload: Array(s.payload)))
        }
        return (try #require(event), samples)
    }

    func expected(_ samples: [PerfDataWriter.Sample], comm: String? = nil) -> [ReadSample] {
        samples.map { ReadSample(event: "skb:kfree_skb", comm: comm, tid: $0.tid, cpu: $0.cpu, timeNs: $0.timeNs, payload: $0.payload) }
    }

    /// Both byte orders, file and pipe mode: the same samples, payloads back in host order.
    @Test(arguments: [false, true], [false, true])
    func byteOrdersAndModes(bigEndian: Bool, pipe: Bool) throws {
        let (event, samples) = try Self.kfreeEvent()
        var w = PerfDataWriter(events: [event])
        w.bigEndian = bigEndian
        w.pipe = pipe
        w.comms = [(samples[0].pid, samples[0].tid, "bash")]
        let bytes = w.write(samples)
        if bigEndian, !pipe, let out = ProcessInfo.processInfo.environment["KVMSCOPE_WRITE_PERF_BE"] {
            try Data(bytes).write(to: URL(fileURLWithPath: out))   // for checking with perf script
        }
        let (viaStream, reader) = try readPerf(bytes: bytes)
        #expect(viaStream == expected(samples, comm: "bash"))
        #expect(reader.stats.byteSwapped == bigEndian)
        let (viaFile, _) = try readPerf(path: try PerfFixtures.writeTemporary(bytes, name: "w.data"))
        #expect(viaFile == viaStream)
    }

    /// Samples written out of time order across rounds come back as perf script orders them.
    @Test func samplesComeBackInTimeOrder() throws {
        let (event, samples) = try Self.kfreeEvent()
        var shuffled = samples
        shuffled.swapAt(0, 1)
        shuffled.swapAt(3, 4)
        var w = PerfDataWriter(events: [event])
        w.roundEvery = 0
        let (got, _) = try readPerf(bytes: w.write(shuffled))
        #expect(got.map(\.timeNs) == samples.map(\.timeNs).sorted())
    }

    /// A feature bit perf does not define is skipped by its section descriptor; attr sizes
    /// of other perf versions (VER0 written as 0, VER8 136) and another arch's header read.
    @Test func unknownFeatureAndOtherAttrSizes() throws {
        let (event, samples) = try Self.kfreeEvent()
        for (size, field) in [(128, nil), (136, nil), (64, UInt32(0)), (72, nil)] as [(Int, UInt32?)] {
            var w = PerfDataWriter(events: [event])
            w.attrSize = size
            w.attrSizeField = field
            w.arch = "aarch64"
            w.extraFeatures = [200: Array(repeating: 0xEE, count: 77)]
            let (got, reader) = try readPerf(bytes: w.write(samples))
            #expect(got == expected(samples))
            #expect(reader.arch == "aarch64")
        }
    }

    static func error(_ bytes: [UInt8]) -> String? {
        do { _ = try readPerf(bytes: bytes); return nil } catch let e as PerfDataError { return e.detail } catch { return "\(error)" }
    }

    @Test func attrSizeLargerThanItsSlotIsRefused() throws {
        let (event, samples) = try Self.kfreeEvent()
        var w = PerfDataWriter(events: [event])
        w.attrSizeField = 4096
        #expect(Self.error(w.write(samples))?.contains("says it is 4096 bytes") == true)
        w.pipe = true
        #expect(Self.error(w.write(samples))?.contains("the record holds") == true)
    }

    @Test func unknownReadFormatIsRefused() throws {
        let (event, samples) = try Self.kfreeEvent()
        var w = PerfDataWriter(events: [event])
        w.readFormat = 1 << 7
        // Without PERF_SAMPLE_READ an unknown read_format changes nothing in the samples...
        #expect(Self.error(w.write(samples)) == nil)
        // ...with it, the size of the READ field is unknown: refused before any sample is read.
        w.attrSampleTypeExtra = 1 << 4
        #expect(Self.error(w.write(samples))?.contains("read_format 0x80") == true)
    }

    @Test func zeroSizedRecordIsAnErrorNotALoop() throws {
        let (event, samples) = try Self.kfreeEvent()
        var w = PerfDataWriter(events: [event])
        var bad = PerfDataWriter.Bytes(big: false)
        bad.u32(9); bad.u16(0); bad.u16(0)
        w.extraRecords = [bad.bytes]
        #expect(Self.error(w.write(samples))?.contains("less than its own 8-byte header") == true)
        w.pipe = true
        #expect(Self.error(w.write(samples))?.contains("less than its own 8-byte header") == true)
    }

    /// A data offset past Int.max in a streamed file (no size to check it against): a clear
    /// error, not a trap converting it (found by the perf-data fuzz target).
    @Test func hugeDataOffsetInAStreamIsAnError() throws {
        let (event, samples) = try Self.kfreeEvent()
        var bytes = PerfDataWriter(events: [event]).write(samples)
        withUnsafeBytes(of: UInt64(0xFFFF_FFFF_FFFF_0000).littleEndian) { for k in 0..<8 { bytes[40 + k] = $0[k] } }
        #expect(Self.error(bytes)?.contains("bytes of attributes before the data: more than kvmscope reads") == true)
    }

    @Test func compressedRecordsAreRefusedWithTheWayOut() throws {
        let (event, samples) = try Self.kfreeEvent()
        var w = PerfDataWriter(events: [event])
        var rec = PerfDataWriter.Bytes(big: false)
        rec.record(type: 81, [0, 0, 0, 0, 0, 0, 0, 0])
        w.extraRecords = [rec.bytes]
        #expect(Self.error(w.write(samples))?.contains("perf inject") == true)
    }

    /// Every prefix of a real file is a clear error (never a trap or a hang), read at
    /// offsets and straight through; a pipe cut at a record boundary simply ends.
    @Test func truncatedFilesAreClearErrors() throws {
        let bytes = try PerfFixtures.data("kfree_skb")
        var cuts = Array(stride(from: 0, to: bytes.count, by: 211))
        cuts += [7, 8, 15, 16, 103, 104, bytes.count - 1]
        for n in cuts {
            let part = Array(bytes[0..<n])
            if n == 0 { continue }
            #expect(Self.error(part) != nil, "prefix of \(n) bytes read without error")
        }
        let path = try PerfFixtures.writeTemporary(Array(bytes[0..<(bytes.count / 2)]), name: "half.data")
        #expect(throws: PerfDataError.self) { try readPerf(path: path) }
    }

    /// Random bytes after a valid magic, and flipped bytes anywhere in a real file: an error
    /// or a read, never a crash (the fuzz target does this at scale).
    @Test func garbageIsAnErrorNotACrash() throws {
        var rng = SplitMix64(seed: 7)
        var noise = Array("PERFILE2".utf8)
        for _ in 0..<4096 { noise.append(UInt8(truncatingIfNeeded: rng.next())) }
        #expect(Self.error(noise) != nil)
        #expect(Self.error(Array("PERFFILE".utf8) + [UInt8](repeating: 0, count: 200))?.contains("version 1") == true)
        #expect(Self.error(Array("not perf data at all".utf8))?.contains("no PERFILE2 magic") == true)
        let real = try PerfFixtures.data("kfree_skb-pipe")
        for _ in 0..<300 {
            var b = real
            for _ in 0..<8 { b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            _ = Self.error(b)
        }
    }
}
