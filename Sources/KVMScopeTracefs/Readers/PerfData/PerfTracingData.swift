/// One tracepoint as the recording kernel described it: its system (`kvm`) and its
/// `format` file, parsed by the same TracepointFormat tracefs readers use.
/// A class: every sample refers to its event, and a reference costs one retain where a
/// struct of strings and arrays would cost one per member.
public final class PerfTracepoint: Sendable {
    public let system: String
    public let format: TracepointFormat
    /// The format file as stored (what tests rebuild files from).
    public let text: String

    init(system: String, format: TracepointFormat, text: String) {
        self.system = system
        self.format = format
        self.text = text
    }

    public var name: String { format.name }
    /// `kvm:kvm_exit`, as perf names it.
    public var fullName: String { "\(system):\(format.name)" }
}

/// The tracing data perf stores in a file's HEADER_TRACING_DATA feature section, or in a
/// pipe's PERF_RECORD_HEADER_TRACING_DATA record: the tracefs format files of every recorded
/// tracepoint, written by tools/perf/util/trace-event-info.c and read back by
/// trace-event-read.c (trace_report):
///
///     "\x17\x08\x44" "tracing"  version "0.6\0"
///     u8 big-endian?  u8 sizeof(long)  u32 page size
///     "header_page\0" u64 size, text      "header_event\0" u64 size, text
///     u32 count, { u64 size, text }        ftrace's own event formats
///     u32 systems, { "system\0", u32 count, { u64 size, format text } }
///     u32 size, kallsyms     u32 size, ftrace_printk     (0.6+) u64 size, saved_cmdlines
///
/// Numbers inside use the byte order the blob itself declares.
public struct PerfTracingData: Sendable {
    public let version: String
    public let bigEndian: Bool
    public let longSize: Int
    public let pageSize: UInt32
    /// By tracepoint id.
    public let events: [Int: PerfTracepoint]
    /// Format files that did not parse (named by system), skipped: only their samples are lost.
    public let unreadableFormats: [String]

    static let magic: [UInt8] = [0x17, 0x08, 0x44] + Array("tracing".utf8)
    /// Upper bound of the blob kvmscope holds in memory (a kernel with every tracepoint
    /// recorded stores a few MiB).
    public static let maxSize = 256 << 20

    public static func parse(_ bytes: [UInt8], path: String) throws -> PerfTracingData {
        func bad(_ s: String) -> PerfDataError { PerfDataError(path: path, "tracing data: \(s)") }
        guard bytes.count >= 12, Array(bytes[0..<10]) == magic else {
            throw bad("does not start with perf's tracing-data signature (\\x17\\x08\\x44tracing)")
        }
        var c = PerfSectionCursor(bytes, order: .native, what: "tracing data", path: path)
        c.offset = 10
        let version = try c.cString(limit: 16)
        let big = try c.u8()
        guard big <= 1 else { throw bad("endianness byte \(big) is neither 0 nor 1") }
        c = PerfSectionCursor(bytes, order: PerfByteOrder(swapped: (big == 1) != hostIsBigEndian), what: "tracing data", path: path)
        c.offset = 10 + version.utf8.count + 2
        let longSize = Int(try c.u8())
        guard longSize == 4 || longSize == 8 else { throw bad("sizeof(long) is \(longSize), neither 4 nor 8") }
        let pageSize = try c.u32()

        guard try c.cString(limit: 16) == "header_page" else { throw bad("no header_page") }
        try c.skip(try c.u64())
        guard try c.cString(limit: 16) == "header_event" else { throw bad("no header_event") }
        try c.skip(try c.u64())

        // ftrace's own events (function, print, ...): not tracepoints anyone samples here.
        let ftraceCount = try c.u32()
        for _ in 0..<ftraceCount { try c.skip(try c.u64()) }

        var events: [Int: PerfTracepoint] = [:]
        var unreadable: [String] = []
        let systems = try c.u32()
        for _ in 0..<systems {
            let system = try c.cString()
            let count = try c.u32()
            for _ in 0..<count {
                let text = try c.take(try c.u64())
                do {
                    let string = String(decoding: text, as: UTF8.self)
                    let format = try TracepointFormat.parse(string)
                    events[format.id] = PerfTracepoint(system: system, format: format, text: string)
                } catch {
                    unreadable.append(system)
                }
            }
        }
        // kallsyms, ftrace_printk and saved_cmdlines follow; nothing here needs them.
        return PerfTracingData(version: version, bigEndian: big == 1, longSize: longSize, pageSize: pageSize,
                               events: events, unreadableFormats: unreadable)
    }

    static var hostIsBigEndian: Bool { 1.bigEndian == 1 }
}
