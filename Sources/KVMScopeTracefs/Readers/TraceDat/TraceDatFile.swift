import Foundation

/// The metadata of a trace-cmd `trace.dat` (versions 6 and 7), as trace-cmd's
/// Documentation/trace-cmd/trace-cmd.dat.v6.5.txt and .v7.5.txt describe it and libtracecmd's
/// lib/trace-cmd/trace-input.c reads it:
///
///     "\x17\x08\x44" "tracing" VERSION "\0"  endian(1: 0 little, 1 big)  long size(1)  page size(4)
///     v6: header_page, header_event, ftrace formats, event formats per system, kallsyms,
///         trace_printk formats, saved cmdlines, CPU count, ["options  \0" options...],
///         "flyrecord\0" then per CPU: offset(8) size(8), then the trace clock (size(8) + text)
///     v7: compression "name\0version\0", offset(8) of the first options section; the options
///         point at sections (header info 16, ftrace formats 17, event formats 18, kallsyms 19,
///         printk 20, cmdlines 21) and describe each buffer (option 3: section offset, name,
///         clock, [page size], per CPU: id(4) offset(8) size(8)). A section starts with
///         id(2) flags(2, 1 = compressed) description(4) size(8); compressed data is
///         csize(4) usize(4) then one zlib stream / zstd frame.
///
/// Only the top buffer (the instance trace-cmd records by default) is read; `otherBuffers`
/// names any other, so a report can say what it left out.
public struct TraceDatFile {
    public struct CPUData: Equatable, Sendable {
        public let cpu: Int
        public let offset: UInt64
        public let size: UInt64
    }

    public let name: String
    public let version: Int
    public let bigEndian: Bool
    /// The traced user space's long size (4 or 8), as the file header says.
    public let longSize: Int
    public let pageSize: Int
    /// "zstd"/"zlib" for a compressed v7 file, nil when not compressed.
    public let compression: BlockDecompression.Algorithm?
    public let layout: RingBufferLayout
    /// Event formats by their id (`common_type`), with the system each came from.
    public let formats: [Int: TracepointFormat]
    public let systems: [Int: String]
    /// Formats that did not parse (libtraceevent counts them as parsing failures too).
    public let unparsedFormats: Int
    /// The traced host's /proc/kallsyms as stored (empty when none was).
    public let kallsyms: [UInt8]
    /// pid → comm, from the saved cmdlines.
    public let comms: [Int32: String]
    public let cpus: [CPUData]
    /// The CPU data is compressed in chunks (v7 with compression).
    public let cpuDataCompressed: Bool
    public let clock: String?
    /// OPTION_OFFSET: added to every timestamp (trace-input.c does the same).
    public let timestampOffset: Int64
    /// OPTION_TSC2NSEC multiplier and shift, when the clock counts TSC cycles.
    public let tscToNs: (mult: UInt32, shift: UInt32)?
    public let otherBuffers: [String]
    public let latencyOnly: Bool

    /// Limits on single metadata items: far above what any kernel writes (a distribution
    /// kernel's kallsyms is ~10 MB, a format file a few KB), low enough that a hostile size
    /// field cannot make kvmscope allocate gigabytes.
    static let maxFormatBytes = 1 << 20
    static let maxTableBytes = 256 << 20
    static let maxSectionBytes = 256 << 20
    static let maxCPUs = 1 << 16

    public func format(id: Int) -> TracepointFormat? { formats[id] }
    public func format(system: String, name: String) -> TracepointFormat? {
        formats.first { $0.value.name == name && systems[$0.key] == system }?.value
    }

    /// Whether `sample` (the first bytes of an input) starts with the trace.dat magic.
    public static func hasMagic(_ sample: UnsafeRawBufferPointer) -> Bool {
        sample.count >= 10 && sample.prefix(10).elementsEqual(magic)
    }
    static let magic: [UInt8] = [0x17, 0x08, 0x44] + Array("tracing".utf8)

    public static func read(_ input: TraceDatInput) throws -> TraceDatFile {
        var parser = TraceDatParser(input: input)
        return try parser.parse()
    }

    init(parser p: TraceDatParser, version: Int, layout: RingBufferLayout, cpus: [CPUData], compressed: Bool,
         clock: String?, otherBuffers: [String], latencyOnly: Bool) {
        name = p.input.name
        self.version = version
        bigEndian = p.bigEndian
        longSize = p.longSize
        pageSize = p.pageSize
        compression = p.compression
        self.layout = layout
        formats = p.formats
        systems = p.systems
        unparsedFormats = p.unparsedFormats
        kallsyms = p.kallsyms
        comms = p.comms
        self.cpus = cpus
        cpuDataCompressed = compressed
        self.clock = clock
        timestampOffset = p.timestampOffset
        tscToNs = p.tscToNs
        self.otherBuffers = otherBuffers
        self.latencyOnly = latencyOnly
    }
}

/// The parse, in the order trace-input.c reads: shared by both versions for the parts whose
/// content is the same (header info, formats, kallsyms, printk, cmdlines).
struct TraceDatParser {
    let input: TraceDatInput
    var bigEndian = false
    var longSize = 8
    var pageSize = 4096
    var compression: BlockDecompression.Algorithm?
    var headerPage: String?
    var headerEvent: String?
    var formats: [Int: TracepointFormat] = [:]
    var systems: [Int: String] = [:]
    var unparsedFormats = 0
    var kallsyms: [UInt8] = []
    var comms: [Int32: String] = [:]
    var timestampOffset: Int64 = 0
    var tscToNs: (mult: UInt32, shift: UInt32)?
    var cpuCountOption: Int?
    var clock: String?

    init(input: TraceDatInput) { self.input = input }

    mutating func parse() throws -> TraceDatFile {
        var c = TraceDatFileCursor(input: input, offset: 0, bigEndian: false)
        guard input.size >= 10, try c.bytes(10, what: "magic") == TraceDatFile.magic else { throw TraceDatError.notTraceDat }
        let versionText = try c.cString("version", limit: 16)
        let endian = try c.bytes(1, what: "endianness")[0]
        guard endian <= 1 else { throw TraceDatError.malformed("endianness byte is \(endian), not 0 (little) or 1 (big)") }
        bigEndian = endian == 1
        c.bigEndian = bigEndian
        let ls = try c.bytes(1, what: "long size")[0]
        guard ls == 4 || ls == 8 else { throw TraceDatError.malformed("long size is \(ls), not 4 or 8") }
        longSize = Int(ls)
        let ps = try c.u32("page size")
        // The ring buffer's sub-buffers are a power of two from 4 KiB (6.8+ allows up to 128 MiB per sub-buffer; kvmscope takes 64 MiB).
        guard ps >= 1024, ps <= 64 << 20, ps & (ps - 1) == 0 else { throw TraceDatError.malformed("page size \(ps) is not a power of two from 1 KiB to 64 MiB") }
        pageSize = Int(ps)
        switch versionText {
        case "6": return try parseV6(&c)
        case "7": return try parseV7(&c)
        default: throw TraceDatError.unsupportedVersion(versionText)
        }
    }

    // MARK: shared parts

    mutating func readHeaderInfo<R: TraceDatReading>(_ c: inout R) throws {
        guard try c.bytes(12, what: "header_page tag") == Array("header_page\0".utf8) else {
            throw TraceDatError.malformed("no header_page where the page header should be (offset \(c.position - 12))")
        }
        headerPage = String(decoding: try c.sized("header_page", sizeBytes: 8, limit: TraceDatFile.maxFormatBytes), as: UTF8.self)
        guard try c.bytes(13, what: "header_event tag") == Array("header_event\0".utf8) else {
            throw TraceDatError.malformed("no header_event after header_page (offset \(c.position - 13))")
        }
        headerEvent = String(decoding: try c.sized("header_event", sizeBytes: 8, limit: TraceDatFile.maxFormatBytes), as: UTF8.self)
    }

    mutating func readFtraceFormats<R: TraceDatReading>(_ c: inout R) throws {
        let n = try c.u32("ftrace format count")
        for _ in 0..<n { addFormat(try c.sized("ftrace format", sizeBytes: 8, limit: TraceDatFile.maxFormatBytes), system: "ftrace") }
    }

    mutating func readEventFormats<R: TraceDatReading>(_ c: inout R) throws {
        let systemCount = try c.u32("event system count")
        for _ in 0..<systemCount {
            let system = try c.cString("event system name", limit: 256)
            let n = try c.u32("event count of system \(system)")
            for _ in 0..<n { addFormat(try c.sized("\(system) event format", sizeBytes: 8, limit: TraceDatFile.maxFormatBytes), system: system) }
        }
    }

    mutating func addFormat(_ bytes: [UInt8], system: String) {
        guard let f = try? TracepointFormat.parse(String(decoding: bytes, as: UTF8.self)) else {
            unparsedFormats += 1
            return
        }
        if formats[f.id] == nil {
            formats[f.id] = f
            systems[f.id] = system
        }
    }

    mutating func readKallsyms<R: TraceDatReading>(_ c: inout R) throws {
        kallsyms = try c.sized("kallsyms", sizeBytes: 4, limit: TraceDatFile.maxTableBytes)
    }

    mutating func readPrintk<R: TraceDatReading>(_ c: inout R) throws {
        _ = try c.sized("trace_printk formats", sizeBytes: 4, limit: TraceDatFile.maxTableBytes)
    }

    /// saved_cmdlines: `PID COMM` per line.
    mutating func readCmdlines<R: TraceDatReading>(_ c: inout R) throws {
        let text = try c.sized("saved cmdlines", sizeBytes: 8, limit: TraceDatFile.maxTableBytes)
        for line in text.split(separator: 0x0A) {
            guard let space = line.firstIndex(of: 0x20),
                  let pid = Int32(String(decoding: line[line.startIndex..<space], as: UTF8.self)) else { continue }
            comms[pid] = String(decoding: line[(space + 1)...], as: UTF8.self)
        }
    }

    func ringLayout() throws -> RingBufferLayout {
        guard let headerPage else { throw TraceDatError.malformed("no header_page (the ring-buffer page layout)") }
        var layout: RingBufferLayout
        do { layout = try RingBufferLayout.parse(headerPage: headerPage, headerEvent: headerEvent) } catch {
            throw TraceDatError.malformed("header_page: \(error)")
        }
        layout = layout.withPageSize(pageSize)
        layout.bigEndian = bigEndian
        return layout
    }

    /// An option both versions share; returns false for the ones the caller handles.
    mutating func handleCommonOption(id: UInt16, data: [UInt8]) {
        switch id {
        case 4:   // TRACECLOCK: the trace_clock file, `[local] global ...`
            let text = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
            if let open = text.firstIndex(of: "["), let close = text[open...].firstIndex(of: "]") {
                clock = String(text[text.index(after: open)..<close])
            }
        case 7:   // OFFSET: a decimal (or 0x) number of ns added to every timestamp
            let text = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
            let v = text.hasPrefix("0x") ? Int64(text.dropFirst(2), radix: 16) : Int64(text)
            if let v { timestampOffset = timestampOffset.addingReportingOverflow(v).overflow ? timestampOffset : timestampOffset + v }
        case 8:   // CPUCOUNT
            if data.count >= 4 { cpuCountOption = Int(TraceDatBytes.number(data[0..<4], bigEndian: bigEndian)) }
        case 14:  // TSC2NSEC: mult(4) shift(4) offset(8)
            if data.count >= 16 {
                let mult = UInt32(TraceDatBytes.number(data[0..<4], bigEndian: bigEndian))
                let shift = UInt32(TraceDatBytes.number(data[4..<8], bigEndian: bigEndian))
                if mult != 0, shift < 64 { tscToNs = (mult, shift) }
            }
        default: break
        }
    }

    // MARK: version 6

    mutating func parseV6(_ c: inout TraceDatFileCursor) throws -> TraceDatFile {
        try readHeaderInfo(&c)
        try readFtraceFormats(&c)
        try readEventFormats(&c)
        try readKallsyms(&c)
        try readPrintk(&c)
        try readCmdlines(&c)
        var cpuCount = Int(try c.u32("CPU count"))
        var tag = try c.bytes(10, what: "data type tag")
        var otherBuffers: [String] = []
        if tag.starts(with: Array("options".utf8)) {
            while true {
                let id = try c.u16("option id")
                if id == 0 { break }
                let data = try c.sized("option \(id)", sizeBytes: 4, limit: TraceDatFile.maxTableBytes)
                if id == 3 {   // BUFFER (an instance): offset(8) name
                    var m = TraceDatMemoryCursor(data, bigEndian: bigEndian, base: 0, label: "buffer option")
                    _ = try m.u64("buffer offset")
                    otherBuffers.append(try m.cString("buffer name", limit: 4096))
                } else {
                    handleCommonOption(id: id, data: data)
                }
            }
            tag = try c.bytes(10, what: "data type tag")
        }
        if let n = cpuCountOption { cpuCount = n }
        let layout = try ringLayout()
        if tag.starts(with: Array("latency".utf8)) {
            return TraceDatFile(parser: self, version: 6, layout: layout, cpus: [], compressed: false,
                                clock: clock, otherBuffers: otherBuffers, latencyOnly: true)
        }
        guard tag == Array("flyrecord\0".utf8) else {
            throw TraceDatError.malformed("expected flyrecord or latency data at offset \(c.position - 10)")
        }
        guard cpuCount <= TraceDatFile.maxCPUs else { throw TraceDatError.malformed("\(cpuCount) CPUs (at most \(TraceDatFile.maxCPUs))") }
        var cpus: [TraceDatFile.CPUData] = []
        for cpu in 0..<cpuCount {
            let offset = try c.u64("CPU \(cpu) data offset")
            let size = try c.u64("CPU \(cpu) data size")
            try checkExtent(offset: offset, size: size, cpu: cpu)
            cpus.append(.init(cpu: cpu, offset: offset, size: size))
        }
        // trace-cmd ≥2.x writes the trace_clock file after the table (trace-input.c
        // tracecmd_init_data): size(8) then the text. Older files have none: not an error.
        var clockCursor = c
        if let text = try? clockCursor.sized("trace clock", sizeBytes: 8, limit: 4096) {
            handleCommonOption(id: 4, data: text)
        }
        return TraceDatFile(parser: self, version: 6, layout: layout, cpus: cpus, compressed: false,
                            clock: clock, otherBuffers: otherBuffers, latencyOnly: false)
    }

    func checkExtent(offset: UInt64, size: UInt64, cpu: Int) throws {
        guard size == 0 || (offset <= input.size && size <= input.size - offset) else {
            throw TraceDatError.outOfBounds(what: "CPU \(cpu)'s data", offset: offset, count: size, fileSize: input.size)
        }
    }

    // MARK: version 7

    mutating func parseV7(_ c: inout TraceDatFileCursor) throws -> TraceDatFile {
        let algorithm = try c.cString("compression name", limit: 64)
        _ = try c.cString("compression version", limit: 64)
        switch algorithm {
        case "none", "": compression = nil
        case "zstd": compression = .zstd
        case "zlib": compression = .zlib
        default:
            throw TraceDatError.unsupported("compressed with '\(algorithm)'; kvmscope decompresses zstd and zlib (trace-cmd convert --compression none FILE to rewrite it)")
        }
        var next = try c.u64("options offset")
        var visited = Set<UInt64>()
        var sections: [UInt16: UInt64] = [:]
        struct Buffer { var name: String; var offset: UInt64; var clock: String; var cpus: [TraceDatFile.CPUData]; var latency: Bool }
        var buffers: [Buffer] = []
        while next != 0 {
            guard visited.insert(next).inserted, visited.count <= 1024 else {
                throw TraceDatError.malformed("options sections form a loop (offset \(next) again)")
            }
            var m = try section(at: next, expect: 0, label: "options section")
            next = 0
            while m.remaining > 0 {
                let id = try m.u16("option id")
                let data = try m.sized("option \(id)", sizeBytes: 4, limit: TraceDatFile.maxTableBytes)
                switch id {
                case 0:   // DONE: offset of the next options section
                    guard data.count >= 8 else { throw TraceDatError.malformed("DONE option of \(data.count) bytes") }
                    next = TraceDatBytes.number(data[0..<8], bigEndian: bigEndian)
                    m.index = m.data.count
                case 3, 22:   // BUFFER / BUFFER_TEXT (latency)
                    var b = TraceDatMemoryCursor(data, bigEndian: bigEndian, base: 0, label: "buffer option")
                    let offset = try b.u64("buffer offset")
                    let name = try b.cString("buffer name")
                    let clock = try b.cString("buffer clock", limit: 256)
                    var cpus: [TraceDatFile.CPUData] = []
                    if id == 3 {
                        // trace-cmd ≥3.3 writes the sub-buffer size before the CPU count
                        // (trace-input.c handle_buffer_option); 3.1/3.2 do not. The entries
                        // are 20 bytes each, so the remaining size tells which this is.
                        var count = Int(try b.u32("buffer CPU count"))
                        if b.remaining != count * 20, b.remaining >= 4 {
                            let bufferPage = count
                            count = Int(try b.u32("buffer CPU count"))
                            guard bufferPage == pageSize else {
                                throw TraceDatError.unsupported("buffer '\(name)' has \(bufferPage)-byte sub-buffers, the file header says \(pageSize)")
                            }
                        }
                        guard count <= TraceDatFile.maxCPUs, b.remaining >= count * 20 else {
                            throw TraceDatError.malformed("buffer '\(name)' lists \(count) CPUs in \(b.remaining) bytes")
                        }
                        var seen = Set<Int>()
                        for _ in 0..<count {
                            let cpu = Int(try b.u32("CPU id"))
                            let off = try b.u64("CPU data offset")
                            let size = try b.u64("CPU data size")
                            guard cpu < TraceDatFile.maxCPUs, seen.insert(cpu).inserted else {
                                throw TraceDatError.malformed("buffer '\(name)' lists CPU \(cpu) twice or out of range")
                            }
                            try checkExtent(offset: off, size: size, cpu: cpu)
                            cpus.append(.init(cpu: cpu, offset: off, size: size))
                        }
                    }
                    buffers.append(Buffer(name: name, offset: offset, clock: clock, cpus: cpus, latency: id == 22))
                case 16, 17, 18, 19, 20, 21:
                    guard data.count >= 8 else { throw TraceDatError.malformed("option \(id) of \(data.count) bytes") }
                    sections[id] = TraceDatBytes.number(data[0..<8], bigEndian: bigEndian)
                default:
                    handleCommonOption(id: id, data: data)
                }
            }
        }
        guard let headerAt = sections[16] else { throw TraceDatError.malformed("no header info section (option 16)") }
        var h = try section(at: headerAt, expect: 16, label: "header info section")
        try readHeaderInfo(&h)
        if let at = sections[17] { var s = try section(at: at, expect: 17, label: "ftrace formats section"); try readFtraceFormats(&s) }
        if let at = sections[18] { var s = try section(at: at, expect: 18, label: "event formats section"); try readEventFormats(&s) }
        if let at = sections[19] { var s = try section(at: at, expect: 19, label: "kallsyms section"); try readKallsyms(&s) }
        if let at = sections[20] { var s = try section(at: at, expect: 20, label: "printk section"); try readPrintk(&s) }
        if let at = sections[21] { var s = try section(at: at, expect: 21, label: "cmdlines section"); try readCmdlines(&s) }
        let layout = try ringLayout()
        let others = buffers.filter { !$0.name.isEmpty }.map(\.name)
        guard let top = buffers.first(where: { $0.name.isEmpty }) else {
            return TraceDatFile(parser: self, version: 7, layout: layout, cpus: [], compressed: false,
                                clock: clock, otherBuffers: others, latencyOnly: buffers.contains { $0.latency })
        }
        if top.latency {
            return TraceDatFile(parser: self, version: 7, layout: layout, cpus: [], compressed: false,
                                clock: top.clock, otherBuffers: others, latencyOnly: true)
        }
        // The buffer's section header says whether its CPU data is compressed.
        let head = try sectionHeader(at: top.offset, label: "buffer section")
        let compressed = head.flags & 1 != 0
        if compressed, compression == nil {
            throw TraceDatError.malformed("the buffer section is flagged compressed but the file names no compression")
        }
        return TraceDatFile(parser: self, version: 7, layout: layout, cpus: top.cpus.sorted { $0.cpu < $1.cpu },
                            compressed: compressed, clock: top.clock.isEmpty ? clock : top.clock,
                            otherBuffers: others, latencyOnly: false)
    }

    struct SectionHeader { let id: UInt16; let flags: UInt16; let size: UInt64; let dataOffset: UInt64 }

    func sectionHeader(at offset: UInt64, label: String) throws -> SectionHeader {
        var c = TraceDatFileCursor(input: input, offset: offset, bigEndian: bigEndian)
        let id = try c.u16("\(label) id")
        let flags = try c.u16("\(label) flags")
        _ = try c.u32("\(label) description")
        let size = try c.u64("\(label) size")
        return SectionHeader(id: id, flags: flags, size: size, dataOffset: c.offset)
    }

    /// A section's content in memory, decompressed when its flags say so.
    func section(at offset: UInt64, expect id: UInt16, label: String) throws -> TraceDatMemoryCursor {
        let h = try sectionHeader(at: offset, label: label)
        guard h.id == id else { throw TraceDatError.malformed("\(label) at offset \(offset) has id \(h.id), not \(id)") }
        guard h.size <= UInt64(TraceDatFile.maxSectionBytes) else {
            throw TraceDatError.malformed("\(label) at offset \(offset) claims \(h.size) bytes")
        }
        let raw = try input.read(at: h.dataOffset, count: Int(h.size), what: label)
        guard h.flags & 1 != 0 else { return TraceDatMemoryCursor(raw, bigEndian: bigEndian, base: h.dataOffset, label: label) }
        guard let compression else { throw TraceDatError.malformed("\(label) is flagged compressed but the file names no compression") }
        guard raw.count >= 8 else { throw TraceDatError.malformed("compressed \(label) of \(raw.count) bytes") }
        let csize = TraceDatBytes.number(raw[0..<4], bigEndian: bigEndian)
        let usize = TraceDatBytes.number(raw[4..<8], bigEndian: bigEndian)
        guard csize <= UInt64(raw.count - 8), usize <= UInt64(TraceDatFile.maxSectionBytes) else {
            throw TraceDatError.malformed("compressed \(label): \(csize) bytes in a \(raw.count)-byte section, \(usize) uncompressed")
        }
        let data: [UInt8]
        do {
            data = try raw.withUnsafeBytes { try BlockDecompression.decompress(UnsafeRawBufferPointer(rebasing: $0[8..<8 + Int(csize)]), size: Int(usize), algorithm: compression) }
        } catch {
            throw TraceDatError.malformed("\(label) at offset \(offset): \(error)")
        }
        return TraceDatMemoryCursor(data, bigEndian: bigEndian, base: 0, label: label)
    }
}
