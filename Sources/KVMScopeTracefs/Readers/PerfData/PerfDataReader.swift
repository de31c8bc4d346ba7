import Foundation

/// Reads the tracepoint samples of a `perf.data` (perf record's file, or its pipe output
/// `perf record -o -`) in one pass, in bounded memory, in the order perf script prints them.
/// The layout (tools/perf/Documentation/perf.data-file-format.txt, tools/perf/util/header.c):
///
///     file:  perf_file_header { "PERFILE2", u64 size = 104, u64 attr_size,
///                               section attrs, data, event_types; u64 features[4] }
///            attrs: { perf_event_attr (attr_size - 16 bytes), section ids } ...
///            data:  records (perf_event_header { u32 type; u16 misc; u16 size } + body)
///            at data.offset + data.size: one section per feature bit set, then the sections
///     pipe:  { "PERFILE2", u64 size = 16 }, then records only; the attrs, tracing data and
///            features come as PERF_RECORD_HEADER_ATTR / _TRACING_DATA / _FEATURE records.
///
/// A regular file is read at offsets (its feature sections, which hold the tracepoint
/// formats, come after the data). Anything else — a pipe, a compressed file — is read
/// straight through, spooling the data section to an unlinked temporary file until the
/// formats after it are known.
public struct PerfDataReader {
    public private(set) var stats = PerfDataStats()
    public private(set) var attrs: [PerfEventAttr] = []
    public private(set) var tracingData: PerfTracingData?
    /// HEADER_ARCH: `uname -m` of the recording host.
    public private(set) var arch: String?

    public init() {}

    // HEADER_* feature bits (tools/perf/util/header.h).
    static let featTracingData = 1, featHostname = 3, featArch = 6, featEventDesc = 12
    static let fileHeaderSize: UInt64 = 104, oldFileHeaderSize: UInt64 = 72, pipeHeaderSize: UInt64 = 16
    /// Header areas (attrs, ids, feature sections other than the tracing data) held in memory.
    static let maxSectionSize = 64 << 20

    /// Whether bytes start like a perf.data: the magic in either byte order.
    public static func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool {
        guard sample.count >= 8 else { return false }
        let m = Array(sample.prefix(8))
        return m == magicLittle || m == magicBig
    }

    static let magicLittle = Array("PERFILE2".utf8)
    static let magicBig = Array("2ELIFREP".utf8)
    static let magicLegacy = Array("PERFFILE".utf8)

    /// Reads `stream` (from its start) and calls `body` for every tracepoint sample.
    public mutating func read(_ stream: ByteStream, _ body: (PerfTracepointSample) throws -> Void) throws {
        // The session holds the callback only for the duration of this call.
        try withoutActuallyEscaping(body) { try readStream(stream, $0) }
    }

    private mutating func readStream(_ stream: ByteStream, _ body: @escaping (PerfTracepointSample) throws -> Void) throws {
        let name = stream.name
        if let file = PerfRandomAccessFile.open(behind: stream) {
            guard let head = try file.bytes(at: 0, count: 16, name: name) else {
                throw PerfDataError(path: name, "truncated: \(file.size) bytes, less than perf.data's 16-byte header")
            }
            let (order, big, size) = try Self.magic(head, name: name)
            if size == Self.pipeHeaderSize {
                try readPipe(file.region(16, file.size - 16, name: name), order: order, big: big, name: name, body)
            } else {
                try readFile(FileSectionSource(file: file, name: name), headerSize: size, order: order, big: big, name: name, body)
            }
            return
        }
        let r = PerfChunkReader(startingAt: 0, length: nil) { try stream.read(into: $0) }
        guard try r.ensure(16) >= 16 else { throw PerfDataError(path: name, "truncated: less than perf.data's 16-byte header") }
        let (order, big, size) = try Self.magic(Array(r.peek(16)), name: name)
        if size == Self.pipeHeaderSize {
            r.consume(16)
            try readPipe(r, order: order, big: big, name: name, body)
        } else {
            try readFile(StreamSectionSource(reader: r, name: name), headerSize: size, order: order, big: big, name: name, body)
        }
    }

    /// Byte order from the magic, and the header's size field (16 = pipe, 104 = file).
    static func magic(_ head: [UInt8], name: String) throws -> (PerfByteOrder, Bool, UInt64) {
        let m = Array(head[0..<8])
        let big: Bool
        if m == magicLittle { big = false } else if m == magicBig { big = true } else if m == magicLegacy {
            throw PerfDataError(path: name, "version 1 file (magic PERFFILE, perf before 2.6.37), which kvmscope does not read")
        } else {
            throw PerfDataError(path: name, "not a perf.data file (no PERFILE2 magic)")
        }
        let order = PerfByteOrder(swapped: big != PerfTracingData.hostIsBigEndian)
        let size = head.withUnsafeBytes { order.u64($0, 8) }
        guard size == pipeHeaderSize || size == fileHeaderSize || size == oldFileHeaderSize else {
            throw PerfDataError(path: name, "header size \(size) is none perf writes (16 pipe, 104 file)")
        }
        return (order, big, size)
    }

    // MARK: pipe mode

    private mutating func readPipe(_ r: PerfChunkReader, order: PerfByteOrder, big: Bool, name: String,
                                   _ body: @escaping (PerfTracepointSample) throws -> Void) throws {
        let session = PerfSession(path: name, order: order, bigEndianFile: big, body: body)
        session.stats.pipeMode = true
        defer { capture(session) }
        try Self.records(r, session: session, pipe: true)
        try session.finish()
        if session.tracing == nil, session.stats.samples > 0 {
            throw PerfDataError(path: name, "the pipe carried no tracing data (PERF_RECORD_HEADER_TRACING_DATA): no tracepoint formats to read the samples with")
        }
    }

    // MARK: file mode

    private mutating func readFile(_ src: SectionSource, headerSize: UInt64, order: PerfByteOrder, big: Bool, name: String,
                                   _ body: @escaping (PerfTracepointSample) throws -> Void) throws {
        func bad(_ s: String) -> PerfDataError { PerfDataError(path: name, s) }
        guard let h = try src.bytes(at: 0, count: Int(headerSize)) else {
            throw bad("truncated: the file ends inside its \(headerSize)-byte header")
        }
        var c = PerfSectionCursor(h, order: order, what: "file header", path: name)
        c.offset = 16
        let attrSize = try c.u64()
        let attrsOff = try c.u64(), attrsSize = try c.u64()
        let dataOff = try c.u64(), dataSize = try c.u64()
        _ = try c.u64(); _ = try c.u64()     // event_types: unused since perf 3.x
        var features = [UInt64](repeating: 0, count: 4)
        if headerSize == Self.fileHeaderSize { for i in 0..<4 { features[i] = try c.u64() } }
        if big != PerfTracingData.hostIsBigEndian, !Self.bit(Self.featHostname, features) {
            // The bitmap is an array of unsigned long: a 32-bit big-endian writer's words are
            // u32 (header.c, perf_file_header__read): re-read them as such.
            features = Self.bitmapFrom32(h, order: order)
        }
        guard attrSize >= UInt64(PerfEventAttr.sizeVer0 + 16), attrSize <= 1 << 16 else {
            throw bad("attribute size \(attrSize) in the header is impossible (perf_event_attr is 64 bytes or more, plus 16)")
        }
        guard dataSize > 0 else {
            throw bad("its data size is 0: perf record did not finish writing it (killed?), so it has no tracepoint formats")
        }
        guard let dataEnd = Self.add(dataOff, dataSize), dataOff >= headerSize else {
            throw bad("data section (offset \(dataOff), size \(dataSize)) is impossible")
        }
        if let total = src.size, dataEnd > total {
            throw bad("truncated: the data section ends at byte \(dataEnd), the file at \(total)")
        }
        guard attrsSize % attrSize == 0, attrsSize / attrSize <= 65_536, let attrsEnd = Self.add(attrsOff, attrsSize),
              attrsOff >= headerSize, attrsEnd <= dataOff else {
            throw bad("attribute section (offset \(attrsOff), size \(attrsSize), \(attrSize) each) does not lie between header and data")
        }

        // Everything between the header and the data: ids and attrs.
        guard dataOff - headerSize <= UInt64(Self.maxSectionSize) else {
            throw bad("\(dataOff - headerSize) bytes of attributes before the data: more than kvmscope reads")
        }
        let pre = Int(dataOff - headerSize)
        guard let preBytes = try src.bytes(at: headerSize, count: pre) else { throw bad("truncated inside the attribute section") }
        func preSlice(_ off: UInt64, _ size: UInt64) -> ArraySlice<UInt8>? {
            guard off >= headerSize, let end = Self.add(off, size), end <= dataOff else { return nil }
            return preBytes[Int(off - headerSize)..<Int(end - headerSize)]
        }
        let session = PerfSession(path: name, order: order, bigEndianFile: big, body: body)
        defer { capture(session) }
        let count = Int(attrsSize / attrSize)
        for i in 0..<count {
            let entry = preSlice(attrsOff + UInt64(i) * attrSize, attrSize)!
            var attr = try entry.withUnsafeBytes { raw -> PerfEventAttr in
                let attrBytes = UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count - 16)])
                return try PerfEventAttr.parse(attrBytes, order: order, bigEndianFile: big, path: name)
            }
            guard attr.declaredSize <= Int(attrSize) - 16 else {
                throw bad("event attribute \(i) says it is \(attr.declaredSize) bytes, its slot holds \(attrSize - 16)")
            }
            let (idsOff, idsSize) = entry.withUnsafeBytes { (order.u64($0, $0.count - 16), order.u64($0, $0.count - 8)) }
            guard idsSize % 8 == 0, let ids = preSlice(idsOff, idsSize) else {
                throw bad("ids of event attribute \(i) (offset \(idsOff), size \(idsSize)) lie outside the header area")
            }
            attr.ids = ids.withUnsafeBytes { raw in (0..<(raw.count / 8)).map { order.u64(raw, $0 * 8) } }
            try session.addAttr(attr)
        }

        // The feature table after the data, then the sections kvmscope uses.
        let bits = (0..<256).filter { Self.bit($0, features) }
        try src.beginData(dataOff, dataSize)
        guard let table = try src.afterData(count: bits.count * 16) else {
            throw bad("truncated: the feature table after the data (\(bits.count) sections) is missing")
        }
        var wanted: [(feat: Int, off: UInt64, size: UInt64)] = []
        var featuresEnd = dataEnd + UInt64(bits.count * 16)
        try table.withUnsafeBytes { t in
            for (i, feat) in bits.enumerated() {
                let off = order.u64(t, i * 16), size = order.u64(t, i * 16 + 8)
                // Every section, used or not, must lie in the file: a file cut inside one it
                // skips is as truncated as one cut inside the tracing data.
                guard let end = Self.add(off, size) else { throw bad("feature section \(feat) (offset \(off), size \(size)) is impossible") }
                featuresEnd = max(featuresEnd, end)
                if [Self.featTracingData, Self.featArch, Self.featEventDesc].contains(feat) { wanted.append((feat, off, size)) }
            }
        }
        if let total = src.size, featuresEnd > total {
            throw bad("truncated: its feature sections end at byte \(featuresEnd), the file at \(total)")
        }
        for w in wanted.sorted(by: { $0.off < $1.off }) {
            let limit = w.feat == Self.featTracingData ? PerfTracingData.maxSize : Self.maxSectionSize
            guard w.size <= UInt64(limit) else { throw bad("feature section \(w.feat) of \(w.size) bytes: more than kvmscope reads") }
            guard let end = Self.add(w.off, w.size), w.off >= dataEnd else {
                throw bad("feature section \(w.feat) (offset \(w.off), size \(w.size)) is impossible")
            }
            if let total = src.size, end > total {
                throw bad("truncated: feature section \(w.feat) ends at byte \(end), the file at \(total)")
            }
            guard let bytes = try src.feature(at: w.off, count: Int(w.size)) else {
                throw bad("truncated: feature section \(w.feat) at offset \(w.off) is missing")
            }
            switch w.feat {
            case Self.featTracingData: session.setTracingData(try PerfTracingData.parse(bytes, path: name))
            case Self.featArch:
                var a = PerfSectionCursor(bytes, order: order, what: "HEADER_ARCH", path: name)
                session.arch = try a.headerString()
            default: session.nameAttrs(try Self.eventDesc(bytes, order: order, name: name))
            }
        }
        guard try src.reach(featuresEnd) else {
            throw bad("truncated: the input ends before byte \(featuresEnd), where its feature sections end")
        }
        if session.tracing == nil, session.attrs.contains(where: { $0.type == PerfEventAttr.typeTracepoint }) {
            throw bad("it has no tracing data (HEADER_TRACING_DATA): no tracepoint formats to read the samples with")
        }
        try Self.records(try src.dataReader(), session: session, pipe: false)
        try session.finish()
    }

    private mutating func capture(_ s: PerfSession) {
        stats = s.stats
        stats.reorderEarlyFlushes = s.orderer.earlyFlushes
        attrs = s.attrs
        tracingData = s.tracing
        arch = s.arch
    }

    /// HEADER_EVENT_DESC: { u32 nr, u32 attr_size, { attr, u32 nr_ids, string name, u64 ids[] } }.
    static func eventDesc(_ bytes: [UInt8], order: PerfByteOrder, name: String) throws -> [(name: String, ids: [UInt64])] {
        var c = PerfSectionCursor(bytes, order: order, what: "HEADER_EVENT_DESC", path: name)
        let nr = try c.u32()
        let attrSize = try c.u32()
        guard attrSize >= UInt32(PerfEventAttr.sizeVer0) else {
            throw PerfDataError(path: name, "HEADER_EVENT_DESC: attribute size \(attrSize) is less than 64")
        }
        var out: [(String, [UInt64])] = []
        for _ in 0..<nr {
            try c.skip(UInt64(attrSize))
            let nids = try c.u32()
            let s = try c.headerString()
            try c.need(Int(min(UInt64(nids) * 8, UInt64(Int.max))))
            var ids: [UInt64] = []
            for _ in 0..<nids { ids.append(try c.u64()) }
            out.append((s, ids))
        }
        return out
    }

    // MARK: records

    /// Runs every record of `r` through the session. Each record is checked against what
    /// is left; a size below the 8-byte header is corruption, never a reason to loop.
    static func records(_ r: PerfChunkReader, session s: PerfSession, pipe: Bool) throws {
        let order = s.order
        while true {
            let have = try r.ensure(8)
            if have == 0 { return }
            // The common case first: the records wholly in the buffer that need nothing from
            // the reader (not the pipe's header records, not AUX data after the record), each
            // handed to the session where it lies. Anything else — a record cut by the buffer's
            // end, a bad size, those types — is left to the record-by-record path below.
            let window = r.window
            var done = 0
            while window.count - done >= 8 {
                let type = order.u32(window, done)
                let size = Int(order.u16(window, done + 6))
                guard size >= 8, size <= window.count - done, type != PerfSession.recordAuxtrace,
                      !pipe || !Self.pipeHeaderTypes.contains(type) else { break }
                try s.process(UnsafeRawBufferPointer(rebasing: window[done..<(done + size)]), type: type)
                done += size
            }
            if done > 0 {
                r.consume(done)
                continue
            }
            let at = r.position
            guard have >= 8 else { throw s.error("truncated: \(have) bytes at offset \(at), less than a record header") }
            let h = r.peek(8)
            let type = order.u32(h, 0)
            let size = Int(order.u16(h, 6))
            guard size >= 8 else {
                throw s.error("record at offset \(at) has size \(size), less than its own 8-byte header: the file is corrupt")
            }
            let got = try r.ensure(size)
            guard got >= size else { throw s.error("truncated: the record at offset \(at) needs \(size) bytes, \(got) are left") }
            let rec = r.peek(size)
            switch type {
            case PerfSession.recordHeaderAttr where pipe:
                try s.addAttr(try headerAttr(rec, session: s))
                r.consume(size)
            case PerfSession.recordHeaderTracingData where pipe:
                // The tracing data follows the record, outside its size (header.c,
                // perf_event__synthesize_tracing_data): u32 size, already 8-byte aligned.
                guard size >= 12 else { throw s.error("tracing-data record at offset \(at) is too short") }
                let n = Int(order.u32(rec, 8))
                r.consume(size)
                guard n <= PerfTracingData.maxSize else { throw s.error("tracing data of \(n) bytes at offset \(at): more than kvmscope reads") }
                guard let blob = try r.readArray(n) else { throw s.error("truncated inside the tracing data at offset \(at)") }
                s.setTracingData(try PerfTracingData.parse(blob, path: s.path))
            case PerfSession.recordHeaderFeature where pipe:
                if size >= 16 {
                    let feat = order.u64(rec, 8)
                    let data = Array(rec[16...])
                    if feat == UInt64(featArch) {
                        var a = PerfSectionCursor(data, order: order, what: "HEADER_ARCH", path: s.path)
                        s.arch = try a.headerString()
                    } else if feat == UInt64(featEventDesc) {
                        s.nameAttrs(try eventDesc(data, order: order, name: s.path))
                    }
                }
                r.consume(size)
            case PerfSession.recordAuxtrace:
                // AUX area data follows the record, `size` bytes (perf_record_auxtrace).
                guard size >= 16 else { throw s.error("auxtrace record at offset \(at) is too short") }
                let aux = order.u64(rec, 8)
                s.stats.records += 1
                s.stats.otherRecords += 1
                r.consume(size)
                guard try r.skip(aux) else { throw s.error("truncated inside the AUX data of the record at offset \(at)") }
            default:
                try s.process(rec, type: type)
                r.consume(size)
            }
        }
    }

    /// The records a pipe carries its header in, which the records loop reads itself.
    static let pipeHeaderTypes: [UInt32] = [PerfSession.recordHeaderAttr, PerfSession.recordHeaderTracingData,
                                            PerfSession.recordHeaderFeature]

    /// PERF_RECORD_HEADER_ATTR: { header, perf_event_attr (attr.size bytes), u64 id[] }.
    static func headerAttr(_ rec: UnsafeRawBufferPointer, session s: PerfSession) throws -> PerfEventAttr {
        let body = UnsafeRawBufferPointer(rebasing: rec[8...])
        guard body.count >= PerfEventAttr.sizeVer0 else { throw s.error("attribute record of \(rec.count) bytes is too short") }
        var attr = try PerfEventAttr.parse(body, order: s.order, bigEndianFile: s.bigEndianFile, path: s.path)
        let n = attr.declaredSize
        guard n >= PerfEventAttr.sizeVer0, n <= body.count else {
            throw s.error("attribute record says the attribute is \(n) bytes, the record holds \(body.count)")
        }
        attr.ids = (0..<((body.count - n) / 8)).map { s.order.u64(body, n + $0 * 8) }
        return attr
    }

    static func bit(_ n: Int, _ words: [UInt64]) -> Bool { words[n / 64] >> UInt64(n % 64) & 1 != 0 }

    static func bitmapFrom32(_ header: [UInt8], order: PerfByteOrder) -> [UInt64] {
        header.withUnsafeBytes { h in
            (0..<4).map { w in UInt64(order.u32(h, 72 + w * 8)) | UInt64(order.u32(h, 76 + w * 8)) << 32 }
        }
    }

    static func add(_ a: UInt64, _ b: UInt64) -> UInt64? {
        let (s, o) = a.addingReportingOverflow(b)
        return o ? nil : s
    }
}
