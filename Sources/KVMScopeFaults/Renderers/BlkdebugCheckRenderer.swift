import Foundation

/// `kvmscope blkdebug check` output: one line per problem, `file:line: severity: message`
/// (the compiler shape editors jump to), an indented hint, and a summary line.
public struct BlkdebugCheckReport: Encodable, Sendable {
    public struct Item: Encodable, Sendable {
        public var severity: String
        public var code: String
        @NullEncoded public var file: String?
        @NullEncoded public var line: Int?
        public var message: String
        @NullEncoded public var hint: String?
    }
    public var file: String
    public var injectErrorRules: Int
    public var setStateRules: Int
    public var errors: Int
    public var warnings: Int
    public var notes: Int
    public var diagnostics: [Item]
    /// The `-blockdev` form of the rules, with `--blockdev`; null otherwise.
    @NullEncoded public var blockdev: [String]?

    enum CodingKeys: String, CodingKey {
        case file, errors, warnings, notes, diagnostics, blockdev
        case injectErrorRules
        case setStateRules
    }

    public init(file: String, config: BlkdebugConfig, diagnostics: [RuleDiagnostic], blockdev: [String]? = nil) {
        self.file = file
        injectErrorRules = config.injectErrors.count
        setStateRules = config.setStates.count
        errors = diagnostics.filter { $0.severity == .error }.count
        warnings = diagnostics.filter { $0.severity == .warning }.count
        notes = diagnostics.filter { $0.severity == .note }.count
        self.diagnostics = diagnostics.map {
            Item(severity: $0.severity.rawValue, code: $0.code, file: $0.location?.file, line: $0.location?.line,
                 message: $0.message, hint: $0.hint)
        }
        self.blockdev = blockdev
    }
}

public enum BlkdebugCheckRenderer {
    public static func line(_ d: RuleDiagnostic, style: TerminalStyle) -> String {
        let sev: String
        switch d.severity {
        case .error: sev = style.red("error")
        case .warning: sev = style.yellow("warning")
        case .note: sev = style.dim("note")
        }
        var s = "\(d.location.map { "\($0): " } ?? "")\(sev): \(d.message)\n"
        if let hint = d.hint { s += "    hint: \(hint)\n" }
        return s
    }

    public static func text(_ report: BlkdebugCheckReport, diagnostics: [RuleDiagnostic], style: TerminalStyle) -> String {
        var s = diagnostics.map { line($0, style: style) }.joined()
        func plural(_ n: Int, _ w: String) -> String { "\(n) \(w)\(n == 1 ? "" : "s")" }
        s += "\(report.file): \(plural(report.injectErrorRules, "inject-error rule")), \(plural(report.setStateRules, "set-state rule")): "
        s += "\(plural(report.errors, "error")), \(plural(report.warnings, "warning")), \(plural(report.notes, "note"))\n"
        if let b = report.blockdev { s += b.joined(separator: " \\\n  ") + "\n" }
        return s
    }
}

/// One JSON line per injected fault (`--log FILE`), so a test can prove that a fault fired.
/// Keys (docs/json.md): type ("fault"), time (epoch seconds), client, command, offset, length,
/// rule, kind, effect, event (null for kvmscope's own sections), errno, errnoName, nbdError,
/// delayMs, bitsFlipped.
public struct FaultLogRecord: Encodable, Sendable {
    public let type = "fault"
    public var time: Double
    public var client: String
    public var command: String
    public var offset: Int64
    public var length: Int64
    public var rule: String
    /// inject-error, error-rate, delay, stall, bad-blocks, bit-flips, flakey.
    public var kind: String
    /// error, delay, stall, drop-write, bit-flips.
    public var effect: String
    /// The blkdebug event that armed an [inject-error] rule; null for kvmscope's sections.
    @NullEncoded public var event: String?
    public var errno: Int32
    public var errnoName: String
    /// The error value sent on the wire (NBD only; nil for `kvmscope io`).
    @NullEncoded public var nbdError: String?
    public var delayMs: Double
    public var bitsFlipped: Int

    enum CodingKeys: String, CodingKey {
        case type, time, client, command, offset, length, rule, kind, effect, event, errno
        case errnoName
        case nbdError
        case delayMs
        case bitsFlipped
    }

    public init(fault: InjectedFault, client: String, command: String, nbdError: String?, date: Date = Date()) {
        time = date.timeIntervalSince1970
        self.client = client
        self.command = command
        offset = fault.offset
        length = fault.length
        rule = fault.rule.location.description
        kind = fault.kind.rawValue
        effect = fault.effect.rawValue
        event = fault.kind == .injectError ? fault.rule.event.rawValue : nil
        bitsFlipped = fault.bitsFlipped
        errno = fault.errno
        errnoName = fault.errno == 0 ? "" : (ErrnoTable.standard.entry(number: Int64(fault.errno))?.name ?? "errno \(fault.errno)")
        self.nbdError = nbdError
        delayMs = Double(fault.delayNanoseconds) / 1e6
    }

    public func jsonLine() -> String {
        (try? JSONReport.encode(self, pretty: false)) ?? "{}\n"
    }
}

/// `nbd serve --log`: a change of rules (nbd control, SIGHUP) that let replies held back by a
/// delay, a rate or a stall go at once (`released`) or wait less (`shortened`). Written only
/// when it did either, next to the fault records (`type` tells them apart).
public struct RulesChangeLogRecord: Encodable, Sendable {
    public let type = "rules-change"
    public var time: Double
    /// What changed, as the server's stderr line says it ("removed r.cfg:1", "cleared", ...).
    public var change: String
    /// "control" or "SIGHUP".
    public var via: String
    public var released: Int
    public var shortened: Int

    enum CodingKeys: String, CodingKey { case type, time, change, via, released, shortened }

    public init(change: String, via: String, released: Int, shortened: Int, date: Date = Date()) {
        time = date.timeIntervalSince1970
        self.change = change; self.via = via; self.released = released; self.shortened = shortened
    }

    public func jsonLine() -> String {
        (try? JSONReport.encode(self, pretty: false)) ?? "{}\n"
    }
}

/// Appends fault records to a file, one line each, flushed as they happen (thread-safe).
public final class FaultLogWriter: @unchecked Sendable {
    private let handle: FileHandle
    private let lock = NSLock()

    public init(path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw KVMScopeError.cannotOpen(path: path, reason: KVMScopeError.systemMessage(errno))
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else {
            throw KVMScopeError.cannotOpen(path: path, reason: KVMScopeError.systemMessage(errno))
        }
        h.seekToEndOfFile()
        handle = h
    }

    public func write(_ record: FaultLogRecord) { write(line: record.jsonLine()) }

    public func write(_ record: RulesChangeLogRecord) { write(line: record.jsonLine()) }

    private func write(line: String) {
        let data = Data(line.utf8)
        lock.lock(); defer { lock.unlock() }
        handle.write(data)
    }
}
