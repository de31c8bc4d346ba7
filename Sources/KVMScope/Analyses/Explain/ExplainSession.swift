import Foundation

/// Reads `explain`'s inputs — named by role, or just given, in which case each one's kind is
/// detected by the format registry — runs each through its own reader and analysis (the
/// same calls `kvmscope guest`, `trace` and the QMP reader make), and explains the result.
public enum ExplainSession {
    public struct Inputs {
        public var guest: ByteStream?
        public var trace: ByteStream?
        public var qmp: ByteStream?
        public init(guest: ByteStream? = nil, trace: ByteStream? = nil, qmp: ByteStream? = nil) {
            self.guest = guest; self.trace = trace; self.qmp = qmp
        }
        public var isEmpty: Bool { guest == nil && trace == nil && qmp == nil }
    }

    /// What an input is, and how sure: 1 for formats with a signature; for log-backend
    /// traces, the share of the sample's lines that are trace lines.
    static func kind(of sample: [UInt8]) -> (kind: InputKind, score: Double)? {
        sample.withUnsafeBytes { buf -> (InputKind, Double)? in
            if FormatRegistry.detect(.qmpEvents, sample: buf) != nil { return (.qmpEvents, 1) }
            if let f = FormatRegistry.detect(.qemuTrace, sample: buf) {
                if let text = f as? LogBackendTraceFormat {
                    let share = text.traceLineShare(buf)
                    if share >= minimumTraceShare { return (.qemuTrace, share) }
                } else {
                    return (.qemuTrace, 1)
                }
            }
            if FormatRegistry.detect(.guestLog, sample: buf) != nil { return (.guestLog, 1) }
            return nil
        }
    }

    /// File names that say "guest kernel log" in a capture directory.
    static let guestLogNames = ["console", "dmesg", "kern", "messages", "syslog", "journal", "serial", "guest"]

    /// No NUL or other control bytes (tab, CR, LF and ESC aside) in the sample.
    static func looksLikeText(_ sample: [UInt8]) -> Bool {
        !sample.isEmpty && !sample.contains { $0 < 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D && $0 != 0x1B }
    }

    /// Below this share of trace lines a text file is not taken for a trace when unnamed
    /// (QEMU's stderr mixes warnings into its trace; a command line mentioning events does not count).
    static let minimumTraceShare = 0.2

    /// Sorts unnamed inputs by what they are. Throws one clear error for an input that is
    /// none of the three, or a second input of a kind already given.
    public static func classify(_ streams: [ByteStream], into inputs: inout Inputs) throws {
        for s in streams {
            let peekable = PeekableByteStream(s)
            let sample = try peekable.peek()
            // A text file the user gave that no reader claims is taken as a guest log: a serial
            // console can hold no kernel line at all (a guest that hung before printing any).
            let detected = kind(of: sample)?.kind ?? (looksLikeText(sample) ? .guestLog : nil)
            switch detected {
            case .qmpEvents?:
                guard inputs.qmp == nil else { throw duplicate(s, "QMP event") }
                inputs.qmp = peekable
            case .qemuTrace?:
                guard inputs.trace == nil else { throw duplicate(s, "QEMU trace") }
                inputs.trace = peekable
            case .guestLog?:
                guard inputs.guest == nil else { throw duplicate(s, "guest log") }
                inputs.guest = peekable
            default:
                throw KVMScopeError.unsupportedFormat(path: s.name, detail: "neither a guest kernel log, a QEMU trace nor QMP events (name its role with --guest, --trace or --qmp)")
            }
        }
    }

    static func duplicate(_ s: ByteStream, _ what: String) -> KVMScopeError {
        .usage("'\(s.name)' is a second \(what); give one of each (or name them with --guest, --trace, --qmp)")
    }

    /// The best file of each kind in a capture directory (e.g. a lab scenario: console.log,
    /// trace.log, qmp.jsonl); files of no kind (scripts, notes) are skipped.
    public static func streams(inDirectory path: String) throws -> [ByteStream] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        var best: [InputKind: (stream: ByteStream, score: Double)] = [:]
        for n in names.sorted() where !n.hasPrefix(".") {
            let p = (path as NSString).appendingPathComponent(n)
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir), !isDir.boolValue else { continue }
            let s = PeekableByteStream(try FileByteSource(path: p))
            let sample = try s.peek()
            var found = kind(of: sample)
            if found == nil, looksLikeText(sample), guestLogNames.contains(where: { n.lowercased().hasPrefix($0) }) {
                found = (.guestLog, 0.1)   // named like a guest log, holding no kernel line
            }
            guard let (k, score) = found else { continue }
            if (best[k]?.score ?? -1) < score { best[k] = (s, score) }
        }
        if best.isEmpty { throw KVMScopeError.invalidInput("'\(path)' holds no guest log, QEMU trace or QMP events") }
        return [InputKind.guestLog, .qemuTrace, .qmpEvents].compactMap { best[$0]?.stream }
    }

    /// Reads every given input once and explains.
    public static func run(_ inputs: Inputs, events: String? = nil, detailLimit: Int = 10_000,
                           onProgress: ((Int64) -> Void)? = nil) throws -> ExplainReport {
        var guestReport: GuestDiskReport?
        if let g = inputs.guest {
            var reader = GuestLogReader()
            var analysis = GuestDiskAnalysis(detailLimit: detailLimit)
            try reader.read(g, into: &analysis, progress: onProgress)
            guestReport = analysis.report(source: g.name, input: reader.stats)
        }
        var traceReport: TraceReport?
        if let t = inputs.trace {
            var options = VirtioBlkRequestTracker.Options()
            options.maxFailuresKept = detailLimit
            traceReport = try TraceSession.analyse(t, catalog: try TraceEventCatalog.load(eventsFile: events),
                                                   options: options, onProgress: onProgress)
        }
        var timeline: QMPTimeline?
        if let q = inputs.qmp {
            // Streamed: each event is summarised as it is read (bounded by the detail limit).
            var reader = QMPEventReader()
            var t = QMPTimeline(detailLimit: detailLimit)
            try reader.read(q) { t.consume($0) }
            t.finish(reader: reader)
            timeline = t
        }
        return ExplainAnalysis.explain(guest: guestReport, host: traceReport, qmp: timeline,
                                       inputs: .init(guest: inputs.guest?.name, trace: inputs.trace?.name, qmp: inputs.qmp?.name))
    }

    /// A bundled lab capture as inputs.
    public static func inputs(example: BundledExample) -> Inputs {
        Inputs(guest: example.stream("console.log"), trace: example.stream("trace.log"), qmp: example.stream("qmp.jsonl"))
    }
}
