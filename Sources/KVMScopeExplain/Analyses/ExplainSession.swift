import Foundation
import KVMScopeQMP
import KVMScopeTrace
import KVMScopeGuestLog
import KVMScopeHost

/// Reads `explain`'s inputs — named by role, or just given, in which case each one's kind is
/// detected by the format registry — runs each through its own reader and analysis (the
/// same calls `kvmscope guest`, `trace` and the QMP reader make), and explains the result.
public enum ExplainSession {
    /// The formats explain tells apart: QMP, QEMU traces and guest kernel logs.
    static let formats = QMPFormats.list + TraceFormats.list + GuestLogFormats.list

    public struct Inputs {
        public var guest: ByteStream?
        public var trace: ByteStream?
        public var qmp: ByteStream?
        /// QEMU's command line (a /proc/PID/cmdline copy, `ps -o args`, a libvirt VM log).
        public var qemuCommandLine: ByteStream?
        /// The host's own kernel log (`--host-log`, or named so in a directory or on the command line).
        public var hostLog: ByteStream?
        /// The host log's wall-clock stamps are QEMU's clock, calibrated (a `kvmscope record`
        /// capture): no allowance for dmesg's drift at its ends.
        public var hostLogOnQEMUClock = false
        /// The host's block_rq_error tracepoint, recorded with the host log (`kvmscope record`).
        public var hostBlockTrace: BlockTracepointRecording?
        /// Where the command line's images are on this host; nil: look them up (HostImageLocator),
        /// which finds them when explain runs on the VM's host.
        public var hostImages: [HostImageLocation]?
        /// Saved `findmnt --json` / `lsblk --json` of the VM's host (`--host-mounts`): which
        /// device holds each image when explain runs elsewhere.
        public var hostMounts: [ByteStream] = []
        /// Names of inputs found in a capture directory rather than given: one that turns out
        /// to hold nothing of its role is left out with a note instead of failing the rest.
        public var foundInDirectory: Set<String> = []
        /// What was left out of a directory, and why (printed with the inputs).
        public var notes: [String] = []
        /// The libvirt domain whose events to take from a QMP input of several
        /// (`virsh qemu-monitor-event` for every domain).
        public var qmpDomain: String?
        public init(guest: ByteStream? = nil, trace: ByteStream? = nil, qmp: ByteStream? = nil, qemuCommandLine: ByteStream? = nil) {
            self.guest = guest; self.trace = trace; self.qmp = qmp; self.qemuCommandLine = qemuCommandLine
        }
        public var isEmpty: Bool { guest == nil && trace == nil && qmp == nil }
    }

    /// What an input is, and how sure: 1 for formats with a signature; for log-backend
    /// traces, the share of the sample's lines that are trace lines.
    static func kind(of sample: [UInt8]) -> (kind: InputKind, score: Double)? {
        sample.withUnsafeBytes { buf -> (InputKind, Double)? in
            if ExplainSession.formats.detect(.qmpEvents, sample: buf) != nil { return (.qmpEvents, 1) }
            if let f = ExplainSession.formats.detect(.qemuTrace, sample: buf) {
                if let text = f as? LogBackendTraceFormat {
                    let share = text.traceLineShare(buf)
                    if share >= minimumTraceShare { return (.qemuTrace, share) }
                } else {
                    return (.qemuTrace, 1)
                }
            }
            if ExplainSession.formats.detect(.guestLog, sample: buf) != nil { return (.guestLog, 1) }
            return nil
        }
    }

    /// The host's own kernel log, by its name (`host-dmesg.log`, `host-kern.log`,
    /// `host-journal…`): its content reads like a guest's, so the name gives the role, and a
    /// file so named is never taken for the guest's log.
    public static func isHostLog(_ name: String) -> Bool {
        let n = ((name as NSString).lastPathComponent).lowercased()
        return ["host-dmesg", "host-kern", "host-journal", "host-syslog", "host-messages"].contains { n.hasPrefix($0) }
    }

    /// The host kernel log in a capture directory, when it has one (the first by name).
    public static func hostLog(inDirectory path: String) throws -> ByteStream? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for n in names.sorted() where !n.hasPrefix(".") && isHostLog(n) {
            let p = (path as NSString).appendingPathComponent(n)
            guard isRegularFile(p) else { continue }
            return try FileByteSource(path: p, allowEmpty: true)
        }
        return nil
    }

    /// A regular file (after symlinks): a capture directory can hold the VM's QMP socket (the
    /// lab's does) or a FIFO, which would fail to open or block forever; they are no evidence.
    static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
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

    /// Sorts unnamed inputs by what they are. A text input is judged line by line
    /// (MixedInputSplitter): one that holds several kinds (`cat console.log trace.log |
    /// kvmscope explain -`) is split into its roles, each read by its own reader; a regular file
    /// of one kind is read whole, as it is. Throws one clear error for an input that is none of
    /// the three, or a second input of a kind already given.
    public static func classify(_ streams: [ByteStream], into inputs: inout Inputs, events: String? = nil) throws {
        var splitter: MixedInputSplitter?
        // A text input with nothing of any role is read as the guest log (whose reader then
        // refuses it by name); if a real guest log comes too, the first is the stranger.
        var fallbackGuest: String?
        func assign(_ kind: InputKind, _ stream: ByteStream, _ name: String) throws {
            switch kind {
            case .qmpEvents:
                guard inputs.qmp == nil else { throw duplicate(name, "QMP event") }
                inputs.qmp = stream
            case .qemuTrace:
                guard inputs.trace == nil else { throw duplicate(name, "QEMU trace") }
                inputs.trace = stream
            default:
                if inputs.guest != nil, let f = fallbackGuest { throw unrecognised(f) }
                guard inputs.guest == nil else { throw duplicate(name, "guest log") }
                inputs.guest = stream
            }
        }
        for s in streams {
            if isHostLog(s.name) {
                guard inputs.hostLog == nil else { throw duplicate(s.name, "host kernel log") }
                inputs.hostLog = s
                continue
            }
            let peekable = PeekableByteStream(s)
            let sample = try peekable.peek()
            guard looksLikeText(sample) else {
                // Binary: a simpletrace file (its magic says so) is read whole; nothing else is ours.
                if let detected = kind(of: sample)?.kind { try assign(detected, peekable, s.name); continue }
                throw unrecognised(s.name)
            }
            let sp = try splitter ?? MixedInputSplitter(catalog: TraceEventCatalog.load(eventsFile: events))
            splitter = sp
            // A regular file can be read twice: count its kinds first, and read it whole when it
            // holds one (no copy). A pipe is split as it is read.
            if let file = underlyingFile(s), file.isRegularFile {
                let census = try sp.split(FileByteSource(path: file.path), spool: false).census
                // Nothing of any role in it, beside a guest log already given: it is no second
                // guest log (that would be the guest reader's refusal of the wrong file), just
                // not one of ours.
                if census.rolesFound.isEmpty, inputs.guest != nil { throw unrecognised(s.name) }
                if census.rolesFound.isEmpty { fallbackGuest = s.name }
                if census.rolesFound.count <= 1 {
                    try assign((census.rolesFound.first ?? .guest).kind, peekable, s.name)
                    continue
                }
            }
            let (census, parts) = try sp.split(peekable, spool: true)
            if census.rolesFound.isEmpty, inputs.guest != nil { throw unrecognised(s.name) }
            if census.rolesFound.isEmpty { fallbackGuest = s.name }
            let roles = census.rolesFound.isEmpty ? [MixedInputSplitter.Role.guest] : census.rolesFound
            for role in roles {
                guard let part = parts[role] else { continue }
                part.name = roles.count == 1 ? s.name : "\(s.name) (\(role.label))"
                if roles.count == 1 { part.splitFrom = nil }
                try assign(role.kind, part, part.name)
            }
        }
    }

    /// The file under a stream (through the detection replay), if it is one.
    static func underlyingFile(_ stream: ByteStream) -> FileByteSource? {
        if let f = stream as? FileByteSource { return f }
        if let p = stream as? PeekableByteStream { return underlyingFile(p.base) }
        return nil
    }

    static func unrecognised(_ name: String) -> KVMScopeError {
        .unsupportedFormat(path: name, detail: "neither a guest kernel log, a QEMU trace nor QMP events (name its role with --guest, --trace, --qmp or --host-log)")
    }

    static func duplicate(_ name: String, _ what: String) -> KVMScopeError {
        let hint = what == "guest log" ? "; if it is the host's kernel log, give it with --host-log" : ""
        return .usage("'\(name)' is a second \(what); give one of each (or name them with --guest, --trace, --qmp, --host-log)\(hint)")
    }

    /// The best file of each kind in a capture directory (e.g. a lab scenario: console.log,
    /// trace.log, qmp.jsonl); files of no kind (scripts, notes) are skipped.
    public static func streams(inDirectory path: String) throws -> [ByteStream] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        var best: [InputKind: (stream: ByteStream, score: Double)] = [:]
        for n in names.sorted() where !n.hasPrefix(".") && !isHostLog(n) {
            let p = (path as NSString).appendingPathComponent(n)
            guard isRegularFile(p) else { continue }
            let s = PeekableByteStream(try FileByteSource(path: p, allowEmpty: true))
            let sample = try s.peek()
            var found = kind(of: sample)
            if found == nil, looksLikeText(sample), guestLogNames.contains(where: { n.lowercased().hasPrefix($0) }) {
                found = (.guestLog, 0.1)   // named like a guest log, holding no kernel line
            }
            guard let (k, score) = found else { continue }
            if (best[k]?.score ?? -1) < score { best[k] = (s, score) }
        }
        if best.isEmpty { throw ExplainError.noEvidence(path: path) }
        return [InputKind.guestLog, .qemuTrace, .qmpEvents].compactMap { best[$0]?.stream }
    }

    /// A small text file in a capture directory that holds a QEMU command line (the lab's
    /// run.txt, a saved `ps -o args`, a /proc/PID/cmdline copy), when there is one.
    public static func commandLine(inDirectory path: String) -> ByteStream? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for n in names.sorted() where !n.hasPrefix(".") {
            let p = (path as NSString).appendingPathComponent(n)
            guard let attrs = try? FileManager.default.attributesOfItem(atPath: p),
                  (attrs[.type] as? FileAttributeType) == .typeRegular,
                  let size = attrs[.size] as? Int, size > 0, size < 1 << 20,
                  let data = FileManager.default.contents(atPath: p),
                  (try? QEMUCommandLineReader.arguments(in: Array(data), name: p)) != nil else { continue }
            return MemoryByteSource(String(decoding: data, as: UTF8.self), name: p)
        }
        return nil
    }

    /// Reads every given input once and explains.
    public static func run(_ inputs: Inputs, events: String? = nil, detailLimit: Int = 10_000,
                           onProgress: ((Int64) -> Void)? = nil) throws -> ExplainReport {
        var understood: [ExplainInputUnderstanding] = []
        var notes = inputs.notes
        var guestReport: GuestDiskReport?
        if let g = inputs.guest {
            var reader = GuestLogReader()
            var analysis = GuestDiskAnalysis(detailLimit: detailLimit)
            try reader.read(g, into: &analysis, progress: onProgress)
            // No kernel message: no clean bill of health from a file that is not a kernel log. A
            // console found in a directory (a guest that stopped before logging anything) is
            // left out with a note; one the user gave is refused.
            if reader.stats.recognisedKernelLines == 0, inputs.foundInDirectory.contains(g.name) {
                notes.append("\(g.name): no kernel messages in it (a guest that logged nothing, or not a kernel log): not used as the guest log")
            } else {
                try reader.stats.requireKernelMessages(source: g.name)
                guestReport = analysis.report(source: g.name, input: reader.stats)
                understood.append(understanding(guest: reader.stats, stream: g))
            }
        }
        var traceReport: TraceReport?
        if var t = inputs.trace {
            // A libvirt log of several QEMU starts: only the last run is this VM's evidence (the
            // command line read is the last start's too); earlier runs' requests would be
            // taken for this one's, and their unfinished ones for stuck requests.
            if let file = underlyingFile(t), file.isRegularFile,
               let starts = try? LibvirtDomainLog.starts(in: FileByteSource(path: file.path, allowEmpty: true)),
               starts.count > 1, let last = starts.last {
                t = LineSkippingByteStream(t, skippingLines: last.line - 1)
                notes.append("\(t.name): libvirt's log of \(starts.count) QEMU starts; the trace is read from the last one (line \(last.line), started \(last.stamp)), \(starts.count == 2 ? "the one before it is another run" : "the \(starts.count - 1) before it are other runs") of the VM")
            }
            var options = VirtioBlkRequestTracker.Options()
            options.maxFailuresKept = detailLimit
            // A part split from a mixed input holds trace lines by construction (and empty lines
            // for the others', which detection from the first bytes would not see past).
            let report = try TraceSession.analyse(t, catalog: try TraceEventCatalog.load(eventsFile: events),
                                                  format: (t as? SpooledByteStream)?.formatName, options: options,
                                                  onProgress: onProgress)
            traceReport = report
            let s = report.input.stats
            understood.append(ExplainInputUnderstanding(role: InputKind.qemuTrace.rawValue, source: t.name,
                                                        compression: compression(of: t), lines: s.lines - placeholders(t),
                                                        linesRecognised: s.linesRecognised, linesSkipped: s.linesSkipped,
                                                        splitFrom: splitSource(of: t)))
        }
        var timeline: QMPTimeline?
        if let q = inputs.qmp {
            // Streamed: each event is summarised as it is read (bounded by the detail limit).
            var reader = QMPEventReader()
            var selection = QMPRunSelection(detailLimit: detailLimit)
            try reader.read(q) { selection.consume($0) }
            try QMPRecognitionError.check(reader, name: q.name)
            selection.finish(reader: reader)
            guard let chosen = selection.select(inputs.qmpDomain) else {
                throw KVMScopeError.usage(inputs.qmpDomain.map {
                    "\(q.name) has no QMP events of domain '\($0)' (it has: \(selection.choices))"
                } ?? "\(q.name) holds the QMP events of \(selection.domains.count) domains: \(selection.choices); name this guest's with --domain NAME")
            }
            if let d = chosen.name, selection.domains.count > 1 {
                notes.append("\(q.name): the QMP events of domain '\(d)' (--domain); those of \(selection.domains.count - 1) other domain(s) are not this guest's and are left out")
            }
            if selection.eventsOfUnkeptDomains > 0 {
                notes.append("\(q.name): \(selection.eventsOfUnkeptDomains) events of domains past the first \(QMPRunSelection.maxDomains) were not read")
            }
            if chosen.run > 0, chosen.run <= reader.runStartLines.count {
                notes.append("\(q.name): \(chosen.run + 1) QEMU runs (a greeting after a SHUTDOWN starts each); the events are read from the last one (its greeting at line \(reader.runStartLines[chosen.run - 1])), the \(chosen.earlierRunsEvents) events before it are \(chosen.run == 1 ? "another run" : "other runs") of the VM")
            }
            timeline = chosen.timeline
            understood.append(ExplainInputUnderstanding(role: InputKind.qmpEvents.rawValue, source: q.name,
                                                        compression: compression(of: q), lines: reader.lineStats.lines - placeholders(q),
                                                        linesRecognised: reader.linesRecognised, linesSkipped: reader.linesSkipped,
                                                        splitFrom: splitSource(of: q)))
        }
        var hostKernel: HostKernelReport?
        if inputs.hostLog != nil || inputs.hostBlockTrace != nil {
            let h = inputs.hostLog ?? inputs.hostBlockTrace!.stream
            do {
                let r = try HostKernelSession.read(inputs.hostLog, blockTrace: inputs.hostBlockTrace, detailLimit: detailLimit,
                                                   progress: onProgress)
                hostKernel = r
                let i = r.input
                understood.append(ExplainInputUnderstanding(role: InputKind.hostKernelLog.rawValue, source: r.source,
                                                            compression: compression(of: h), lines: i.lines,
                                                            linesRecognised: i.recognisedLines, linesSkipped: max(0, i.lines - i.recognisedLines),
                                                            splitFrom: nil))
            } catch KVMScopeError.usage(let message) where inputs.foundInDirectory.contains(h.name) {
                notes.append("\(message): not used as the host's kernel log")
            }
        }
        let disks = try inputs.qemuCommandLine.map { QEMUDiskMap(arguments: try QEMUCommandLineReader.arguments(in: $0)) }
        var names = ExplainReport.Inputs(guest: guestReport == nil ? nil : inputs.guest?.name, trace: inputs.trace?.name, qmp: inputs.qmp?.name)
        names.notes = notes
        names.qemuCommandLine = inputs.qemuCommandLine?.name
        names.hostLog = hostKernel?.source
        names.understood = understood
        var images = inputs.hostImages ?? disks.map { HostImageLocator.locate($0) } ?? []
        if inputs.hostImages == nil, let disks, !inputs.hostMounts.isEmpty {
            var table = HostMountTable()
            for m in inputs.hostMounts {
                do { try HostMountTableReader.read(m, into: &table) } catch let e as HostMountTableReader.NotAMountTable {
                    throw KVMScopeError.usage(e.description)
                }
            }
            let from = inputs.hostMounts.map(\.name).joined(separator: ", ")
            let live = Set(images.compactMap(\.drive))
            images += HostImageLocator.locate(disks) { table.locate($0, from: from) }
                .filter { $0.drive == nil || !live.contains($0.drive!) }
        }
        return ExplainAnalysis.explain(guest: guestReport, host: traceReport, qmp: timeline, disks: disks,
                                       hostKernel: hostKernel, hostKernelOnQEMUClock: inputs.hostLogOnQEMUClock,
                                       hostImages: images, inputs: names)
    }

    /// The guest log's share: kernel messages with a recognised stamp; every other line
    /// (user space on a console, other programs in a syslog, bare text) is counted as skipped.
    static func understanding(guest s: GuestLogInputStats, stream: ByteStream) -> ExplainInputUnderstanding {
        let recognised = s.recognisedKernelLines
        let lines = s.lines - placeholders(stream)
        return ExplainInputUnderstanding(role: InputKind.guestLog.rawValue, source: stream.name, compression: compression(of: stream),
                                         lines: lines, linesRecognised: recognised, linesSkipped: max(0, lines - recognised),
                                         splitFrom: splitSource(of: stream))
    }

    /// The compression a file input was read through (looking through the detection replay).
    static func compression(of stream: ByteStream) -> String? {
        underlyingFile(stream)?.compression?.rawValue
    }

    /// The empty lines a split part holds in place of other roles' lines (not the input's own).
    static func placeholders(_ stream: ByteStream) -> Int {
        (stream as? SpooledByteStream)?.placeholderLines ?? 0
    }

    static func splitSource(of stream: ByteStream) -> String? {
        (stream as? SpooledByteStream)?.splitFrom
    }
}
