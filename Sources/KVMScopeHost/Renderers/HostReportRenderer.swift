import Foundation
import KVMScopeGuestLog

/// `kvmscope host` output: the text report and the JSON document (docs/json.md, ```keys host```).
public enum HostReportRenderer {
    // MARK: - text

    public static func text(_ r: HostKernelReport, style: TerminalStyle = .plain, listLimit: Int = 20) -> String {
        var out = ""
        let styles = r.input.styles.filter { $0.key != .bare }.sorted { $0.value > $1.value }.map(\.key.rawValue)
        out += style.bold("Host kernel log \(r.source)") + ": \(r.input.lines) lines, \(r.input.kernelMessages) kernel messages"
        if !styles.isEmpty { out += " (" + styles.joined(separator: ", ") + ")" }
        if r.input.blockTracepointRecords > 0 {
            out += ", \(r.input.blockTracepointRecords) block_rq_error tracepoint record\(r.input.blockTracepointRecords == 1 ? "" : "s")"
        }
        out += "\n"
        if r.findingsTotal == 0 {
            out += "No host storage failures: nothing below QEMU (block devices, paths, host filesystems, hung or killed QEMU) failed in this log.\n"
        } else {
            out += "\(r.failures) failure\(r.failures == 1 ? "" : "s")"
            let rec = r.kinds.filter { $0.key.isRecovery }.reduce(0) { $0 + $1.value }
            if rec > 0 { out += ", \(rec) recover\(rec == 1 ? "y" : "ies")" }
            out += " on \(r.devices.count) device\(r.devices.count == 1 ? "" : "s")\n"
        }
        for d in r.devices {
            out += "\n" + style.bold(d.device) + " — "
            let messages = counts(d.kinds.map { ($0.key.label, $0.value) })
            if d.failures > 0 {
                out += "\(d.failures) failure\(d.failures == 1 ? "" : "s")"
                out += d.findings > d.failures ? " (\(d.findings) messages: \(messages))" : " (\(messages))"
            } else {
                out += messages
            }
            if !d.operations.isEmpty { out += "; " + counts(d.operations.map { ($0.key, $0.value) }) }
            if !d.errnos.isEmpty { out += "; " + counts(d.errnos.map { ($0.key, $0.value) }) }
            out += "\n"
            if !d.sectors.isEmpty {
                let shown = d.sectors.prefix(10).map(String.init).joined(separator: ", ")
                let more = d.sectors.count - min(10, d.sectors.count) + d.sectorsNotListed
                out += "  sectors: \(shown)\(more > 0 ? " and \(more) more" : "")\n"
            }
            if !d.noise.isEmpty { out += "  also (not failures): " + counts(d.noise.map { ($0.key.label, $0.value) }) + "\n" }
        }
        if !r.findings.isEmpty {
            out += "\n" + style.bold("Findings") + (r.findings.count < r.findingsTotal ? " (first \(r.findings.count) of \(r.findingsTotal))" : "") + ":\n"
            for f in r.findings.prefix(listLimit) {
                out += "  line \(f.line)  \(f.time.description)  \(f.kind.label)"
                    + (f.source == .blockTracepoint ? " (tracepoint)" : "")
                if let d = f.device { out += " \(d)" }
                if let first = f.partOfLine { out += " — same failure as line \(first)" }
                if let p = f.process { out += " \(p)" + (f.pid.map { "[\($0)]" } ?? "") + (f.isQEMU ? " (QEMU)" : "") }
                out += "\n    \(f.message)\n"
            }
            if r.findings.count > listLimit { out += "  ... \(r.findings.count - listLimit) more (--json lists them)\n" }
        }
        if !r.noise.isEmpty {
            out += "\nNot failures: " + counts(r.noise.map { ($0.key.label, $0.value) })
                + " (e.g. mkfs trying DISCARD/WRITE_ZEROES on a device that lacks them, a loop device attached)\n"
        }
        if r.input.malformedLines > 0 {
            out += "\(r.input.malformedLines) line\(r.input.malformedLines == 1 ? "" : "s") looked like a known message but could not be read (first: line \(r.input.firstMalformedLine ?? 0)); skipped.\n"
        }
        if r.input.blockErrorsAlsoTraced > 0 {
            out += "\(r.input.blockErrorsAlsoTraced) `I/O error, dev` kernel message\(r.input.blockErrorsAlsoTraced == 1 ? " is" : "s are") the same failed request\(r.input.blockErrorsAlsoTraced == 1 ? "" : "s") as a tracepoint record: counted once.\n"
        }
        if r.input.suppressedMessages > 0 {
            out += r.input.blockTracepointComplete
                ? "The kernel's rate limiter dropped \(r.input.suppressedMessages) messages; the block_rq_error tracepoint, which is not rate-limited, lists every failed block request.\n"
                : "The kernel's rate limiter dropped \(r.input.suppressedMessages) messages: there were more failures than listed.\n"
        }
        return out
    }

    static func counts(_ pairs: [(String, Int)]) -> String {
        pairs.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }.map { "\($0.1) \($0.0)" }.joined(separator: ", ")
    }

    // MARK: - JSON

    static func uptime(_ t: GuestLogTime?) -> Double? { t?.uptimeMicroseconds.map { Double($0) / 1_000_000 } }

    struct FindingJSON: Encodable {
        var kind: String
        /// `kernel-log` or `block-rq-error-tracepoint` (HostFindingSource).
        var source: String
        var recovery: Bool
        @NullEncoded var device: String?
        @NullEncoded var peer: String?
        @NullEncoded var sector: UInt64?
        @NullEncoded var sectorUnit: String?
        @NullEncoded var operation: String?
        @NullEncoded var flags: UInt32?
        @NullEncoded var status: String?
        @NullEncoded var errno: String?
        @NullEncoded var process: String?
        @NullEncoded var pid: Int?
        var qemu: Bool
        @NullEncoded var tag: Int?
        /// The line of the first message of the failure this one belongs to (null: it is that first message).
        @NullEncoded var partOfFailureAtLine: Int?
        var line: Int
        /// The printk stamp (seconds since the host booted) and the wall clock, as the line gave them.
        @NullEncoded var uptimeSeconds: Double?
        @NullEncoded var wallClock: String?
        var message: String
        init(_ f: HostKernelFinding) {
            kind = f.kind.rawValue; source = f.source.rawValue; recovery = f.kind.isRecovery; device = f.device; peer = f.peer
            sector = f.sector; sectorUnit = f.sector == nil ? nil : (f.sectorIsLBA ? "lba" : "512-byte")
            operation = f.operation; flags = f.flags; status = f.status; errno = f.errno
            process = f.process; pid = f.pid; qemu = f.isQEMU; tag = f.tag; partOfFailureAtLine = f.partOfLine; line = f.line
            uptimeSeconds = HostReportRenderer.uptime(f.time); wallClock = f.time.wallClock?.description; message = f.message
        }
    }

    struct DeviceJSON: Encodable {
        var device: String
        var findings: Int
        var failures: Int
        var kinds: [String: Int]
        var operations: [String: Int]
        var errnos: [String: Int]
        var sectors: [UInt64]
        var sectorsNotListed: Int
        @NullEncoded var lowestSector: UInt64?
        @NullEncoded var highestSector: UInt64?
        var firstLine: Int
        var lastLine: Int
        var noise: [String: Int]
        init(_ d: HostDeviceSummary) {
            device = d.device; findings = d.findings; failures = d.failures
            kinds = Dictionary(uniqueKeysWithValues: d.kinds.map { ($0.key.rawValue, $0.value) })
            operations = d.operations; errnos = d.errnos; sectors = d.sectors; sectorsNotListed = d.sectorsNotListed
            lowestSector = d.lowestSector; highestSector = d.highestSector
            firstLine = d.firstLine; lastLine = d.lastLine
            noise = Dictionary(uniqueKeysWithValues: d.noise.map { ($0.key.rawValue, $0.value) })
        }
    }

    struct NoiseJSON: Encodable {
        var kind: String
        var count: Int
        var firstLine: Int
    }

    struct InputJSON: Encodable {
        var bytes: Int64
        var lines: Int
        var kernelMessages: Int
        var notKernelLines: Int
        var malformedLines: Int
        @NullEncoded var firstMalformedLine: Int?
        var binaryLines: Int
        var overlongLines: Int
        var suppressedMessages: UInt64
        var blockTracepointRecords: Int
        var blockTracepointComplete: Bool
        var blockErrorsAlsoTraced: Int
        var endedMidLine: Bool
        var styles: [String: Int]
        @NullEncoded var firstUptimeSeconds: Double?
        @NullEncoded var lastUptimeSeconds: Double?
        @NullEncoded var firstWallClock: String?
        @NullEncoded var lastWallClock: String?
    }

    struct ReportJSON: Encodable {
        var source: String
        var input: InputJSON
        var failures: Int
        var findingsTotal: Int
        var findingsListed: Int
        var kinds: [String: Int]
        var findings: [FindingJSON]
        var devices: [DeviceJSON]
        var devicesNotSummarised: Int
        var noise: [NoiseJSON]
        var hasFailures: Bool
    }

    public static func json(_ r: HostKernelReport) throws -> String {
        try JSONReport.encode(r)
    }

    /// The document `kvmscope host --json` prints, and `explain --json` embeds as `hostKernel`.
    static func document(_ r: HostKernelReport) -> ReportJSON {
        let i = r.input
        let input = InputJSON(bytes: i.bytes, lines: i.lines, kernelMessages: i.kernelMessages, notKernelLines: i.notKernelLines,
                              malformedLines: i.malformedLines, firstMalformedLine: i.firstMalformedLine,
                              binaryLines: i.binaryLines, overlongLines: i.overlongLines,
                              suppressedMessages: i.suppressedMessages, blockTracepointRecords: i.blockTracepointRecords,
                              blockTracepointComplete: i.blockTracepointComplete, blockErrorsAlsoTraced: i.blockErrorsAlsoTraced,
                              endedMidLine: i.endedMidLine,
                              styles: Dictionary(uniqueKeysWithValues: i.styles.map { ($0.key.rawValue, $0.value) }),
                              firstUptimeSeconds: uptime(i.first), lastUptimeSeconds: uptime(i.last),
                              firstWallClock: i.first?.wallClock?.description, lastWallClock: i.last?.wallClock?.description)
        return ReportJSON(
            source: r.source, input: input, failures: r.failures, findingsTotal: r.findingsTotal,
            findingsListed: r.findings.count,
            kinds: Dictionary(uniqueKeysWithValues: r.kinds.map { ($0.key.rawValue, $0.value) }),
            findings: r.findings.map(FindingJSON.init), devices: r.devices.map(DeviceJSON.init),
            devicesNotSummarised: r.devicesNotSummarised,
            noise: HostNoiseKind.allCases.compactMap { k in
                r.noise[k].map { NoiseJSON(kind: k.rawValue, count: $0, firstLine: r.noiseFirstLine[k] ?? 0) }
            },
            hasFailures: r.hasFailures)
    }
}

extension HostKernelReport: Encodable {
    public func encode(to encoder: Encoder) throws {
        try HostReportRenderer.document(self).encode(to: encoder)
    }
}
