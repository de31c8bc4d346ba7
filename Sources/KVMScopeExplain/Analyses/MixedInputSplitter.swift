import Foundation
import KVMScopeQMP
import KVMScopeTrace
import KVMScopeGuestLog

/// Splits one unnamed text input that mixes kinds (`cat console.log trace.log | kvmscope explain -`,
/// QEMU's stderr with `-serial stdio` and `-trace`) into the roles explain reads, line by line,
/// by content, with each domain's own recogniser: a QMP message (QMPLineRecogniser), a QEMU
/// trace line (TraceLineRecogniser), a stamped guest kernel line or another program's syslog
/// line (KernelLinePrefixParser). A line none of them claims (user space on a console, a QEMU
/// warning, a `--pretty` virsh record's JSON) belongs to the same input as the line before it,
/// which is what concatenated files and interleaved outputs both give; the lines before the
/// first recognised one belong to it. Each role's lines are spooled to an unlinked temporary
/// file, so memory stays bounded by one buffer per role; every other line is an empty line
/// there, so that each reader's line numbers are the mixed input's ("guest line 79" is line 79
/// of what was piped in).
struct MixedInputSplitter {
    enum Role: Int, CaseIterable {
        case guest, trace, qmp
        var kind: InputKind { [InputKind.guestLog, .qemuTrace, .qmpEvents][rawValue] }
        var label: String { ["guest kernel log lines", "QEMU trace lines", "QMP lines"][rawValue] }
    }

    /// What one pass found, per role: lines claimed by their content, and lines that went with
    /// their neighbours.
    struct Census {
        var byContent = [Int](repeating: 0, count: Role.allCases.count)
        var byAdjacency = [Int](repeating: 0, count: Role.allCases.count)
        /// Non-blank lines before any recognised line, when none followed (all go to the guest).
        var unclaimed = 0
        /// Trace lines in the SystemTap log style (`PID@NS name`), and in the log backend's.
        var stapTraceLines = 0, logTraceLines = 0
        var traceFormat: String { stapTraceLines > logTraceLines ? "qemu-stap-log" : "qemu-log" }
        var rolesFound: [Role] { Role.allCases.filter { byContent[$0.rawValue] > 0 } }
    }

    let traceLines: TraceLineRecogniser

    init(catalog: TraceEventCatalog) {
        traceLines = TraceLineRecogniser(catalog: catalog)
    }

    func role(of line: LineBytes, _ census: inout Census) -> Role? {
        if QMPLineRecogniser.isQMPLine(line) { return .qmp }
        if let format = traceLines.format(of: line) {
            if format == "qemu-stap-log" { census.stapTraceLines += 1 } else { census.logTraceLines += 1 }
            return .trace
        }
        switch KernelLinePrefixParser.parse(line) {
        case let .kernel(prefix): return prefix.style == .bare ? nil : .guest
        case .notKernel: return .guest
        }
    }

    /// Ends a census early: once two kinds are seen, the input will be split anyway.
    private struct SecondKindFound: Error {}

    /// Reads `stream` once; with `spool`, writes each role's lines to its own stream. Without,
    /// only counts, and stops at the second kind found (the census then holds two roles).
    func split(_ stream: ByteStream, spool: Bool) throws -> (census: Census, parts: [Role: SpooledByteStream]) {
        var census = Census()
        var parts: [Role: SpooledByteStream] = [:]
        var leading: SpooledByteStream? = spool ? try SpooledByteStream(name: stream.name, splitFrom: stream.name) : nil
        var leadingLines = 0
        var linesSoFar = 0
        var current: Role?
        var splitter = LineSplitter()
        do {
            try splitter.forEachLine(in: stream) { line, number in
                let blank = line.skipBlanks(0) == line.count
                if let r = blank ? nil : role(of: line, &census) {
                    census.byContent[r.rawValue] += 1
                    if !spool, census.byContent[r.rawValue] == 1, census.rolesFound.count > 1 { throw SecondKindFound() }
                    if current == nil {
                        census.byAdjacency[r.rawValue] += leadingLines
                        if let leading { parts[r] = leading }
                        leading = nil
                    } else if spool, parts[r] == nil {
                        let part = try SpooledByteStream(name: stream.name, splitFrom: stream.name)
                        try part.appendPlaceholders(linesSoFar)
                        parts[r] = part
                    }
                    current = r
                } else if !blank {
                    if let c = current { census.byAdjacency[c.rawValue] += 1 } else { leadingLines += 1 }
                }
                // Lines the splitter skipped (over its length limit) still took a number.
                let skippedBefore = number - 1 - linesSoFar
                linesSoFar = number
                guard spool else { return }
                let target = current.flatMap { parts[$0] } ?? leading!
                for part in parts.values {
                    if skippedBefore > 0 { try part.appendPlaceholders(skippedBefore) }
                    if part !== target { try part.appendPlaceholders(1) }
                }
                if let leading, skippedBefore > 0 { try leading.appendPlaceholders(skippedBefore) }
                try target.append(line.bytes)
                try target.append(byte: 0x0A)
            }
        } catch is SecondKindFound {
            return (census, parts)
        }
        if current == nil {
            // No line of any kind: the text is offered to the guest-log reader, which judges it.
            census.unclaimed = leadingLines
            if let leading { parts[.guest] = leading }
        }
        parts[.trace]?.formatName = census.traceFormat
        return (census, parts)
    }
}
