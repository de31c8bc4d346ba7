import Foundation
import KVMScopeCore
import KVMScopeTracefs

/// Fixtures of the perf.data reader: real captures made by Fixtures/perf/capture-real.sh.
public enum PerfFixtures {
    public static let dir = TestFixtures.dir.appendingPathComponent("perf")
    public static func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
    public static func text(_ name: String) throws -> String { try String(contentsOfFile: path(name), encoding: .utf8) }

    /// The perf.data inside `NAME.data.xz`, decompressed.
    public static func data(_ name: String) throws -> [UInt8] {
        let s = try FileByteSource(path: path("\(name).data.xz"))
        return try s.readAll(limit: 64 << 20) { KVMScopeError.usage("fixture too large") }
    }

    /// `NAME.data.xz` decompressed into a temporary regular file (read at offsets, as a path is).
    public static func file(_ name: String) throws -> String { try writeTemporary(try data(name), name: "\(name).data") }

    public static func writeTemporary(_ bytes: [UInt8], name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kvmscope-perf-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent("\(UUID().uuidString)-\(name)")
        try Data(bytes).write(to: url)
        return url.path
    }
}

/// Writes perf.data files the way perf record lays them out (tools/perf/util/header.c:
/// perf_session__write_header, perf_header__adds_write; pipe mode: the synthesized
/// HEADER_ATTR / HEADER_TRACING_DATA records), in either byte order, for the reader's tests:
/// the tracepoint formats are given (taken from a real capture), the samples are built here.
/// Files written with it are synthetic and labelled so wherever tests use them.
public struct PerfDataWriter {
    public struct Event {
        public var system: String
        public var formatText: String
        public var id: Int
        public init(system: String, formatText: String, id: Int) {
            self.system = system
            self.formatText = formatText
            self.id = id
        }
    }

    public struct Sample {
        public var event: Int
        public var pid: Int32
        public var tid: Int32
        public var timeNs: UInt64
        public var cpu: UInt32
        /// The tracepoint record in this host's byte order (starting with common_type).
        public var payload: [UInt8]
        public init(event: Int, pid: Int32, tid: Int32, timeNs: UInt64, cpu: UInt32, payload: [UInt8]) {
            self.event = event; self.pid = pid; self.tid = tid; self.timeNs = timeNs; self.cpu = cpu; self.payload = payload
        }
    }

    public var events: [Event]
    public var bigEndian = false
    public var pipe = false
    /// sizeof(perf_event_attr) written (128 = PERF_ATTR_SIZE_VER7, perf 6.1's).
    public var attrSize = 128
    /// The attr's own size field (0 = VER0, as perf before 2.6.33); nil = attrSize.
    public var attrSizeField: UInt32?
    public var arch: String? = "x86_64"
    /// Extra feature sections by bit (bits perf does not define, to test they are skipped).
    public var extraFeatures: [Int: [UInt8]] = [:]
    /// (pid, tid, comm) for PERF_RECORD_COMM records written before the samples.
    public var comms: [(Int32, Int32, String)] = []
    /// Samples per PERF_RECORD_FINISHED_ROUND (0: one round at the end).
    public var roundEvery = 0
    public var readFormat: UInt64 = 0
    /// sample_type bits added to the attrs only (not to the samples written): for attr checks.
    public var attrSampleTypeExtra: UInt64 = 0
    /// Records appended raw after the samples (already in the file's byte order).
    public var extraRecords: [[UInt8]] = []
    /// events/header_page and header_event as the tracing data stores them (perf refuses
    /// empty ones): the 6.18 VM's, from Fixtures/drops.
    public var headerPage = (try? DropFixtures.text("header_page-6.18.txt")) ?? ""
    public var headerEvent = (try? DropFixtures.text("header_event-6.18.txt")) ?? ""

    public static let sampleType: UInt64 = 1 << 16 | 1 << 0 | 1 << 1 | 1 << 2 | 1 << 7 | 1 << 8 | 1 << 10   // IDENTIFIER|IP|TID|TIME|CPU|PERIOD|RAW

    public init(events: [Event]) { self.events = events }

    public func id(of event: Int) -> UInt64 { UInt64(1000 + event) }

    public func write(_ samples: [Sample]) -> [UInt8] {
        var data = Bytes(big: bigEndian)
        for (pid, tid, comm) in comms {
            var body = Bytes(big: bigEndian)
            body.u32(UInt32(bitPattern: pid)); body.u32(UInt32(bitPattern: tid))
            var name = Array(comm.utf8) + [0]
            while name.count % 8 != 0 { name.append(0) }
            body.raw(name)
            // sample_id trailer: TID, TIME, CPU, IDENTIFIER.
            body.u32(UInt32(bitPattern: pid)); body.u32(UInt32(bitPattern: tid)); body.u64(0); body.u32(0); body.u32(0); body.u64(id(of: 0))
            data.record(type: 3, body.bytes)
        }
        for (i, s) in samples.enumerated() {
            var body = Bytes(big: bigEndian)
            body.u64(id(of: s.event))
            body.u64(0xffff_ffff_8100_0000)
            body.u32(UInt32(bitPattern: s.pid)); body.u32(UInt32(bitPattern: s.tid))
            body.u64(s.timeNs)
            body.u32(s.cpu); body.u32(0)
            body.u64(1)
            var payload = s.payload
            if bigEndian != PerfDataWriter.hostBig { Self.swapFields(&payload, format: events[s.event].formatText) }
            // The kernel pads the raw data so the record stays 8-byte aligned (size counts the padding).
            while (4 + payload.count) % 8 != 0 { payload.append(0) }
            body.u32(UInt32(payload.count))
            body.raw(payload)
            data.record(type: 9, body.bytes)
            if roundEvery > 0, (i + 1) % roundEvery == 0 { data.record(type: 68, []) }
        }
        data.record(type: 68, [])
        for r in extraRecords { data.raw(r) }
        return pipe ? writePipe(data.bytes) : writeFile(data.bytes)
    }

    func attrBytes(_ e: Int) -> [UInt8] {
        var a = Bytes(big: bigEndian)
        a.u32(2)                                   // PERF_TYPE_TRACEPOINT
        a.u32(attrSizeField ?? UInt32(attrSize))
        a.u64(UInt64(events[e].id))                // config: the tracepoint id
        a.u64(1)                                   // sample_period
        a.u64(Self.sampleType | attrSampleTypeExtra)
        a.u64(readFormat)
        a.u64(bigEndian ? 1 << (63 - 18) : 1 << 18) // flags: sample_id_all (bitfield order)
        while a.bytes.count < attrSize { a.u8(0) }
        return a.bytes
    }

    public func tracingData() -> [UInt8] {
        var t = Bytes(big: bigEndian)
        t.raw([0x17, 0x08, 0x44] + Array("tracing".utf8))
        t.raw(Array("0.6".utf8) + [0])
        t.u8(bigEndian ? 1 : 0)
        t.u8(8)
        t.u32(4096)
        t.raw(Array("header_page".utf8) + [0]); t.u64(UInt64(headerPage.utf8.count)); t.raw(Array(headerPage.utf8))
        t.raw(Array("header_event".utf8) + [0]); t.u64(UInt64(headerEvent.utf8.count)); t.raw(Array(headerEvent.utf8))
        t.u32(0)
        let systems = Dictionary(grouping: events, by: \.system)
        t.u32(UInt32(systems.count))
        for (sys, evs) in systems.sorted(by: { $0.key < $1.key }) {
            t.raw(Array(sys.utf8) + [0])
            t.u32(UInt32(evs.count))
            for e in evs { t.u64(UInt64(e.formatText.utf8.count)); t.raw(Array(e.formatText.utf8)) }
        }
        t.u32(0); t.u32(0); t.u64(0)
        return t.bytes
    }

    func headerString(_ s: String) -> [UInt8] {
        var b = Bytes(big: bigEndian)
        var text = Array(s.utf8) + [0]
        while text.count % 64 != 0 { text.append(0) }   // perf pads to NAME_ALIGN
        b.u32(UInt32(text.count)); b.raw(text)
        return b.bytes
    }

    func writeFile(_ data: [UInt8]) -> [UInt8] {
        let n = events.count
        let idsOff = 104
        let attrsOff = idsOff + 8 * n
        let entry = attrSize + 16
        let dataOff = attrsOff + entry * n
        var features: [(Int, [UInt8])] = [(1, tracingData())]
        if let arch { features.append((6, headerString(arch))) }
        for (bit, bytes) in extraFeatures { features.append((bit, bytes)) }
        features.sort { $0.0 < $1.0 }
        var f = Bytes(big: bigEndian)
        f.raw(Array(bigEndian ? "2ELIFREP".utf8 : "PERFILE2".utf8))
        f.u64(104); f.u64(UInt64(entry))
        f.u64(UInt64(attrsOff)); f.u64(UInt64(entry * n))
        f.u64(UInt64(dataOff)); f.u64(UInt64(data.count))
        f.u64(0); f.u64(0)
        var bits = [UInt64](repeating: 0, count: 4)
        for (bit, _) in features { bits[bit / 64] |= 1 << UInt64(bit % 64) }
        bits[0] |= 1 << 3      // HEADER_HOSTNAME: perf always sets it (its section follows)
        let all = (features + [(3, headerString("kvmscope-test"))]).sorted { $0.0 < $1.0 }
        for w in bits { f.u64(w) }
        for e in 0..<n { f.u64(id(of: e)) }
        for e in 0..<n { f.raw(attrBytes(e)); f.u64(UInt64(idsOff + 8 * e)); f.u64(8) }
        f.raw(data)
        var off = dataOff + data.count + 16 * all.count
        for (_, bytes) in all { f.u64(UInt64(off)); f.u64(UInt64(bytes.count)); off += bytes.count }
        for (_, bytes) in all { f.raw(bytes) }
        return f.bytes
    }

    func writePipe(_ data: [UInt8]) -> [UInt8] {
        var f = Bytes(big: bigEndian)
        f.raw(Array(bigEndian ? "2ELIFREP".utf8 : "PERFILE2".utf8))
        f.u64(16)
        for e in 0..<events.count {
            var body = Bytes(big: bigEndian)
            body.raw(attrBytes(e)); body.u64(id(of: e))
            f.record(type: 64, body.bytes)
        }
        var td = tracingData()
        while td.count % 8 != 0 { td.append(0) }
        var b = Bytes(big: bigEndian)
        b.u32(UInt32(td.count)); b.u32(0)
        f.record(type: 66, b.bytes)
        f.raw(td)
        if let arch {
            var fe = Bytes(big: bigEndian)
            fe.u64(6); fe.raw(headerString(arch))
            f.record(type: 80, fe.bytes)
        }
        f.raw(data)
        return f.bytes
    }

    static var hostBig: Bool { 1.bigEndian == 1 }

    /// Swaps the 2/4/8-byte scalar fields of a record (from its format text) into the other order.
    static func swapFields(_ p: inout [UInt8], format: String) {
        guard let f = try? TracepointFormat.parse(format) else { return }
        for field in f.fields where [2, 4, 8].contains(field.size) && field.offset + field.size <= p.count {
            if field.type == "char" || field.type == "unsigned char" { continue }
            p[field.offset..<(field.offset + field.size)].reverse()
        }
    }

    /// Bytes in a chosen byte order.
    public struct Bytes {
        public var bytes: [UInt8] = []
        let big: Bool
        public init(big: Bool) { self.big = big }
        public mutating func u8(_ v: UInt8) { bytes.append(v) }
        public mutating func u16(_ v: UInt16) { withUnsafeBytes(of: big ? v.bigEndian : v.littleEndian) { bytes += $0 } }
        public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: big ? v.bigEndian : v.littleEndian) { bytes += $0 } }
        public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: big ? v.bigEndian : v.littleEndian) { bytes += $0 } }
        public mutating func raw(_ b: [UInt8]) { bytes += b }
        /// A record: perf_event_header { u32 type; u16 misc; u16 size } + body.
        public mutating func record(type: UInt32, misc: UInt16 = 0, _ body: [UInt8]) {
            u32(type); u16(misc); u16(UInt16(8 + body.count)); raw(body)
        }
    }
}
