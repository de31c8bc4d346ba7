import Foundation

/// Reads QEMU's blkdebug config files (`-readconfig` INI dialect, util/qemu-config.c) exactly as
/// QEMU does, so that a file kvmscope accepts is one QEMU accepts too — and says where and why
/// when not. Sections are `[inject-error]` and `[set-state]` (optionally `[name "id"]`), keys are
/// `key = "value"`. QEMU's quirks are kept: only a line that is exactly empty is skipped (a line
/// of spaces is a parse error), `#` only comments at column 0, `=` needs the value in double
/// quotes, text after the closing quote is ignored, a repeated key silently replaces the earlier one.
public struct BlkdebugConfigReader {
    public struct Result: Sendable {
        /// The rules that parsed, in file order (also when there were errors elsewhere).
        public var config: BlkdebugConfig
        /// Problems QEMU rejects (`.error`) and the reader's own warnings and notes.
        public var diagnostics: [RuleDiagnostic]
        public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }
    }

    /// QEMU reads lines with `fgets(line, 1024)`: longer lines are split and then misparsed.
    public static let maxLineBytes = 1023
    /// Rule files are small; refuse anything absurd instead of holding it in memory.
    public static let maxFileBytes = 64 << 20

    /// Keys QEMU knows, by section (block/blkdebug.c `inject_error_opts`, `set_state_opts`).
    static let injectErrorKeys: Set<String> = ["event", "state", "iotype", "errno", "sector", "once", "immediately"]
    static let setStateKeys: Set<String> = ["event", "state", "new_state"]
    /// kvmscope's own keys (only in `[inject-error]`).
    public static let extensionKeys: Set<String> = ["probability", "delay", "after", "up", "down"]

    public init() {}

    /// Reads a rules file from disk (missing, unreadable, directory: one clear `KVMScopeError`).
    public func read(path: String) throws -> Result {
        let source = try FileByteSource(path: path)
        let bytes = try source.readAll(limit: Self.maxFileBytes) {
            FaultsError.rulesFileTooLarge(path: path, limitMiB: Self.maxFileBytes >> 20)
        }
        return parse(bytes, file: source.name)
    }

    public func parse(_ text: String, file: String = "<rules>") -> Result {
        parse(Array(text.utf8), file: file)
    }

    struct Entry { var key: String; var value: String; var line: Int }
    struct Section { var group: String; var id: String?; var line: Int; var entries: [Entry] = [] }

    public func parse(_ bytes: [UInt8], file: String) -> Result {
        var diags: [RuleDiagnostic] = []
        var sections: [Section] = []
        var lineNumber = 0
        var start = 0
        func loc(_ l: Int) -> RuleLocation { RuleLocation(file: file, line: l) }

        if bytes.contains(0) {
            diags.append(RuleDiagnostic(.error, "binary-file", at: nil,
                                        "this is not a text file (it contains NUL bytes); QEMU reports a parse error"))
            return Result(config: BlkdebugConfig(), diagnostics: diags)
        }
        while start < bytes.count {
            lineNumber += 1
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
            let raw = Array(bytes[start..<end])
            let hasNewline = end < bytes.count
            start = end + 1
            let here = loc(lineNumber)

            if raw.count + (hasNewline ? 1 : 0) > Self.maxLineBytes {
                diags.append(RuleDiagnostic(.error, "line-too-long", at: here,
                    "line is \(raw.count) bytes long; QEMU reads at most \(Self.maxLineBytes) bytes per line and misparses the rest"))
                continue
            }
            if raw.isEmpty { continue }                                 // only a truly empty line is skipped
            if raw[0] == UInt8(ascii: "#") { continue }
            let line = String(decoding: raw, as: UTF8.self)

            if raw[0] == UInt8(ascii: "[") {
                if let header = parseHeader(raw) {
                    switch header {
                    case let .ok(group, id):
                        sections.append(Section(group: group, id: id, line: lineNumber))
                    case .unclosed:
                        diags.append(RuleDiagnostic(.error, "parse-error", at: here,
                            "section header '\(line)' has no closing ']'"))
                    }
                    continue
                }
            }
            switch parseKeyValue(raw) {
            case let .ok(key, value):
                guard !sections.isEmpty else {
                    diags.append(RuleDiagnostic(.error, "no-group", at: here,
                        "'\(key)' comes before any section: QEMU says \"no group defined\"",
                        hint: "start the file with [inject-error] or [set-state]"))
                    continue
                }
                sections[sections.count - 1].entries.append(Entry(key: key, value: value, line: lineNumber))
            case let .unterminated(key):
                diags.append(RuleDiagnostic(.error, "unterminated-quote", at: here,
                    "the value of '\(key)' has no closing quote: QEMU takes the rest of the line, newline included, as the value"))
            case .failed:
                diags.append(RuleDiagnostic(.error, "parse-error", at: here,
                    "QEMU cannot parse this line (\"parse error\"): '\(line.trimmingCharacters(in: .newlines))'",
                    hint: parseErrorHint(raw)))
            }
        }

        var config = BlkdebugConfig()
        var ids: [String: Set<String>] = [:]
        for section in sections {
            let here = loc(section.line)
            if let id = section.id {
                if ids[section.group, default: []].contains(id) {
                    diags.append(RuleDiagnostic(.error, "duplicate-id", at: here,
                        "duplicate ID '\(id)' for \(section.group): QEMU refuses the second section"))
                    continue
                }
                ids[section.group, default: []].insert(id)
            }
            switch section.group {
            case "inject-error":
                if let rule = buildInjectError(section, file: file, diags: &diags) { config.injectErrors.append(rule) }
            case "set-state":
                if let rule = buildSetState(section, file: file, diags: &diags) { config.setStates.append(rule) }
            case let name where KvmscopeFaultSections.names.contains(name):
                // kvmscope's own sections (KvmscopeSectionReader.swift); the checker says QEMU refuses them.
                buildKvmscopeSection(section, file: file, into: &config.kvmscope, diags: &diags)
            default:
                var hint = "a blkdebug file has only [inject-error] and [set-state] sections (kvmscope also reads [" + KvmscopeFaultSections.names.joined(separator: "], [") + "])"
                if section.group.trimmingCharacters(in: .whitespaces) != section.group {
                    hint = "remove the spaces inside the brackets: QEMU keeps them as part of the name"
                } else if section.group == "take-snapshot" || section.group == "suspend" || section.group == "break" {
                    hint += "; breakpoints exist only as qemu-io's 'break EVENT TAG' command"
                }
                diags.append(RuleDiagnostic(.error, "unknown-section", at: here,
                    "there is no section [\(section.group)]: QEMU says \"There is no option group '\(section.group)'\"", hint: hint))
            }
        }
        return Result(config: config, diagnostics: diags)
    }

    // MARK: - line syntax (the two sscanf formats of qemu_config_foreach)

    private enum Header { case ok(String, String?), unclosed }

    /// `[%63s "%63[^"]"]` or `[%63[^]]]`; nil when neither matches (QEMU then tries key = value).
    private func parseHeader(_ raw: [UInt8]) -> Header? {
        let body = raw[1...]
        // With id: a whitespace-free name, blanks, a quoted id.
        if let nameEnd = body.firstIndex(where: isSpace), nameEnd > body.startIndex {
            var i = nameEnd
            while i < raw.count, isSpace(raw[i]) { i += 1 }
            if i < raw.count, raw[i] == UInt8(ascii: "\"") {
                let idStart = i + 1
                if let idEnd = raw[idStart...].firstIndex(of: UInt8(ascii: "\"")), idEnd > idStart {
                    let name = String(decoding: raw[body.startIndex..<nameEnd], as: UTF8.self)
                    return .ok(String(name.prefix(63)), String(String(decoding: raw[idStart..<idEnd], as: UTF8.self).prefix(63)))
                }
            }
        }
        guard body.first != UInt8(ascii: "]") else { return nil }   // "[]": QEMU falls through to a parse error
        if let close = body.firstIndex(of: UInt8(ascii: "]")) {
            return .ok(String(String(decoding: raw[body.startIndex..<close], as: UTF8.self).prefix(63)), nil)
        }
        return .unclosed
    }

    private enum KeyValue { case ok(String, String), unterminated(String), failed }

    /// ` %63s = "%1023[^"]"` or ` %63s = ""`.
    private func parseKeyValue(_ raw: [UInt8]) -> KeyValue {
        var i = 0
        while i < raw.count, isSpace(raw[i]) { i += 1 }
        let keyStart = i
        while i < raw.count, !isSpace(raw[i]) { i += 1 }
        guard i > keyStart, i - keyStart <= 63 else { return .failed }
        let key = String(decoding: raw[keyStart..<i], as: UTF8.self)
        while i < raw.count, isSpace(raw[i]) { i += 1 }
        guard i < raw.count, raw[i] == UInt8(ascii: "=") else { return .failed }
        i += 1
        while i < raw.count, isSpace(raw[i]) { i += 1 }
        guard i < raw.count, raw[i] == UInt8(ascii: "\"") else { return .failed }
        i += 1
        guard let close = raw[i...].firstIndex(of: UInt8(ascii: "\"")) else {
            return i < raw.count ? .unterminated(key) : .failed
        }
        return .ok(key, String(decoding: raw[i..<close], as: UTF8.self))
    }

    private func parseErrorHint(_ raw: [UInt8]) -> String {
        if raw.allSatisfy(isSpace) {
            return raw.last == UInt8(ascii: "\r") && raw.count == 1
                ? "the file has Windows (CRLF) line endings; QEMU skips only empty lines, so convert it with dos2unix"
                : "the line holds only blanks; QEMU skips only lines that are completely empty"
        }
        let text = String(decoding: raw, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("#") { return "comments must start in the first column" }
        if text.hasPrefix(";") { return "QEMU's comment character is '#' in the first column" }
        if let eq = text.firstIndex(of: "=") {
            let before = text[text.startIndex..<eq], after = text[text.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            let key = before.trimmingCharacters(in: .whitespaces)
            if before.last != " " && before.last != "\t" {
                return "put a blank before '=': \(key) = \"...\" (QEMU reads the key up to the first blank)"
            }
            if !after.hasPrefix("\"") {
                return "the value must be in double quotes: \(key) = \"\(after)\""
            }
        }
        return "expected [section] or key = \"value\""
    }

    private func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d || c == 0x0b || c == 0x0c }

    // MARK: - sections → rules (qemu_opts_from_qdict + add_rule)

    private func values(_ section: Section, known: Set<String>, file: String,
                        diags: inout [RuleDiagnostic]) -> [String: Entry] {
        var map: [String: Entry] = [:]
        for e in section.entries {
            let here = RuleLocation(file: file, line: e.line)
            if !known.contains(e.key) {
                if section.group == "set-state" && Self.extensionKeys.contains(e.key) {
                    diags.append(RuleDiagnostic(.error, "unknown-key", at: here,
                        "'\(e.key)' is a kvmscope key for [inject-error] sections only"))
                    continue
                }
                var hint: String?
                // In a fixed order (the section's own keys first, then by name): a Set's order
                // changes from one instance to the next, and ties must not pick a different
                // suggestion each time the same file is checked.
                let all = known.sorted() + Self.extensionKeys.subtracting(known).sorted()
                if let close = all.min(by: { editDistance($0, e.key) < editDistance($1, e.key) }),
                   editDistance(close, e.key) <= 2 { hint = "did you mean '\(close)'?" }
                if e.key == "new-state" { hint = "the key is 'new_state' (underscore)" }
                diags.append(RuleDiagnostic(.error, "unknown-key", at: here,
                    "[\(section.group)] has no key '\(e.key)': QEMU says \"Invalid parameter '\(e.key)'\"", hint: hint))
                continue
            }
            if let earlier = map[e.key] {
                diags.append(RuleDiagnostic(.warning, "duplicate-key", at: here,
                    "'\(e.key)' is set twice in this section (also line \(earlier.line)): QEMU silently uses the last value"))
            }
            map[e.key] = e
        }
        return map
    }

    private func event(_ map: [String: Entry], section: Section, file: String,
                       diags: inout [RuleDiagnostic]) -> BlkdebugEvent? {
        guard let e = map["event"] else {
            diags.append(RuleDiagnostic(.error, "missing-event", at: RuleLocation(file: file, line: section.line),
                "[\(section.group)] has no 'event': QEMU says \"Missing event name for rule\""))
            return nil
        }
        let here = RuleLocation(file: file, line: e.line)
        switch BlkdebugEvent.lookup(e.value) {
        case let .found(ev): return ev
        case let .legacyDotted(ev):
            diags.append(RuleDiagnostic(.error, "legacy-event-name", at: here,
                "'\(e.value)' is the old dotted event name, which today's QEMU rejects",
                hint: "use event = \"\(ev.rawValue)\""))
        case let .misspelled(s):
            diags.append(RuleDiagnostic(.error, "unknown-event", at: here,
                "'\(e.value)' is not a blkdebug event", hint: "did you mean \"\(s.rawValue)\"?"))
        case .unknown:
            diags.append(RuleDiagnostic(.error, "unknown-event", at: here,
                "'\(e.value)' is not a blkdebug event",
                hint: "the events are QEMU's BlkdebugEvent names, e.g. read_aio, write_aio, flush_to_disk, none (kvmscope blkdebug events lists them)"))
        }
        return nil
    }

    /// A QEMU_OPT_NUMBER value as util/qemu-option.c's parse_option_number reads it:
    /// qemu_strtou64 (util/cutils.c), i.e. glibc strtoull with base 0 over the whole string.
    enum ParsedNumber: Equatable {
        /// The unsigned 64-bit result; `negated` when a '-' made it wrap (a nonzero negative).
        case value(UInt64, negated: Bool)
        /// strtoull's ERANGE: QEMU says "Value '…' is too large for parameter '…'".
        case tooLarge
        /// No digits, or anything after them: QEMU says "Parameter '…' expects a number".
        case invalid
    }

    /// strtoull's grammar: leading isspace(), an optional sign, `0x`/`0X` + hex digits, `0` +
    /// octal digits, or decimal digits; qemu_strtou64 with a NULL endptr then refuses any
    /// trailing byte. A '-' negates in unsigned arithmetic (C11 7.22.1.4), so "-1" is 2^64-1
    /// and "-0" is 0; a magnitude beyond 2^64-1 is ERANGE whatever the sign.
    static func parseQEMUNumber(_ s: String) -> ParsedNumber {
        let b = Array(s.utf8)
        func isCSpace(_ c: UInt8) -> Bool { c == 0x20 || (0x09...0x0d).contains(c) }
        func digit(_ c: UInt8) -> UInt64? {
            switch c {
            case 0x30...0x39: return UInt64(c - 0x30)
            case 0x61...0x66: return UInt64(c - 0x61 + 10)
            case 0x41...0x46: return UInt64(c - 0x41 + 10)
            default: return nil
            }
        }
        var i = 0
        while i < b.count, isCSpace(b[i]) { i += 1 }
        var negative = false
        if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            negative = b[i] == UInt8(ascii: "-")
            i += 1
        }
        var base: UInt64 = 10
        if i + 2 < b.count, b[i] == UInt8(ascii: "0"), b[i + 1] | 0x20 == UInt8(ascii: "x"), digit(b[i + 2]) != nil {
            base = 16
            i += 2
        } else if i < b.count, b[i] == UInt8(ascii: "0") {
            base = 8                               // "0x" without a hex digit: the 0, then junk
        }
        let digitsStart = i
        var value: UInt64 = 0
        var overflow = false
        while i < b.count, let d = digit(b[i]), d < base {
            let (m, o1) = value.multipliedReportingOverflow(by: base)
            let (a, o2) = m.addingReportingOverflow(d)
            if o1 || o2 { overflow = true } else { value = a }
            i += 1
        }
        guard i > digitsStart, i == b.count else { return .invalid }
        if overflow { return .tooLarge }
        return negative && value != 0 ? .value(0 &- value, negated: true) : .value(value, negated: false)
    }

    /// The number QEMU's option parser stores (nil: key absent; .none: a diagnostic was added).
    private func number(_ map: [String: Entry], _ key: String, file: String,
                        diags: inout [RuleDiagnostic]) -> UInt64?? {
        guard let e = map[key] else { return .some(nil) }
        let here = RuleLocation(file: file, line: e.line)
        let trimmed = e.value.trimmingCharacters(in: .whitespaces)
        switch Self.parseQEMUNumber(e.value) {
        case let .value(n, _):
            return .some(n)
        case .tooLarge:
            diags.append(RuleDiagnostic(.error, "number-too-large", at: here,
                "'\(key)' = \"\(e.value)\" does not fit 64 bits: QEMU says \"Value '\(e.value)' is too large for parameter '\(key)'\""))
            return nil
        case .invalid:
            var hint: String?
            if key == "errno", let num = ErrnoTable.standard.entry(query: trimmed)?.number {
                hint = "QEMU wants the number: errno = \"\(num)\""
            }
            if key == "sector", trimmed.last.map({ "kKmMgG".contains($0) }) == true {
                hint = "sector is a count of 512-byte sectors, without size suffixes"
            }
            if e.value.last.map({ $0 == " " || $0 == "\t" }) == true {
                hint = "remove the blanks after the number: QEMU skips them only before it"
            }
            diags.append(RuleDiagnostic(.error, "not-a-number", at: here,
                "'\(key)' must be a number, not '\(e.value)': QEMU says \"Parameter '\(key)' expects a number\"", hint: hint))
            return nil
        }
    }

    /// add_rule stores state, new_state and errno in C ints: the low 32 bits of the number
    /// (GCC's conversion is modulo 2^32). Warns when that is not the number written.
    private func int32(_ n: UInt64?, _ key: String, _ map: [String: Entry], file: String,
                       diags: inout [RuleDiagnostic]) -> Int32? {
        guard let n, let e = map[key] else { return nil }
        let stored = Int32(truncatingIfNeeded: n)
        let written = Self.writtenValue(e.value)
        if written != Int64(stored) {
            diags.append(RuleDiagnostic(.warning, "number-wraps", at: RuleLocation(file: file, line: e.line),
                "QEMU reads \(key) = \"\(e.value)\" as the unsigned 64-bit number \(n) and keeps its low 32 bits in an int: \(key) is \(stored), not \(written.map(String.init) ?? e.value)",
                hint: "write \(key) = \"\(stored)\" if that is what you mean"))
        }
        return stored
    }

    /// The value as written, when it fits Int64 ("-5" → -5); nil for larger magnitudes.
    static func writtenValue(_ s: String) -> Int64? {
        guard case let .value(n, negated) = parseQEMUNumber(s) else { return nil }
        guard negated else { return n <= UInt64(Int64.max) ? Int64(n) : nil }
        let magnitude = 0 &- n                     // undoes strtoull's unsigned negation
        if magnitude == Int64.min.magnitude { return Int64.min }
        return magnitude < Int64.min.magnitude ? -Int64(magnitude) : nil
    }

    /// add_rule: `int64_t sector = qemu_opt_get_number(opts, "sector", -1)`, then
    /// `offset = sector == -1 ? -1 : sector * BDRV_SECTOR_SIZE` (QEMU builds with -fwrapv, so the
    /// product wraps), and rule_check compares the offset as a uint64_t. nil = any sector.
    private func sectorValue(_ n: UInt64?, _ map: [String: Entry], file: String, diags: inout [RuleDiagnostic]) -> Int64? {
        guard let n, let e = map["sector"] else { return nil }
        let here = RuleLocation(file: file, line: e.line)
        let sector = Int64(bitPattern: n)
        if sector == -1 {
            diags.append(RuleDiagnostic(.warning, "sector-wraps", at: here,
                "QEMU reads sector = \"\(e.value)\" as 2^64-1, which add_rule takes for 'no sector': the rule matches requests at any offset",
                hint: "remove 'sector' to say so, or give the sector number"))
            return nil
        }
        let (offset, overflow) = sector.multipliedReportingOverflow(by: 512)
        if overflow || sector < 0 {
            let what = offset < 0
                ? "byte offset \(UInt64(bitPattern: offset)), beyond any request: the rule never matches"
                : "byte offset \(offset) (sector \(offset / 512)): the rule matches there"
            diags.append(RuleDiagnostic(.warning, "sector-wraps", at: here,
                "QEMU reads sector = \"\(e.value)\" as the unsigned 64-bit number \(n), and sector * 512 wraps around to \(what)"))
        }
        return sector
    }

    private func bool(_ map: [String: Entry], _ key: String, file: String, diags: inout [RuleDiagnostic]) -> Bool? {
        guard let e = map[key] else { return false }
        switch e.value {
        case "on", "yes", "true", "y": return true
        case "off", "no", "false", "n": return false
        default:
            diags.append(RuleDiagnostic(.error, "not-a-bool", at: RuleLocation(file: file, line: e.line),
                "'\(key)' must be \"on\" or \"off\", not '\(e.value)': QEMU says \"Parameter '\(key)' expects 'on' or 'off'\""))
            return nil
        }
    }

    private func buildInjectError(_ section: Section, file: String, diags: inout [RuleDiagnostic]) -> InjectErrorRule? {
        let before = diags.filter { $0.severity == .error }.count
        let map = values(section, known: Self.injectErrorKeys.union(Self.extensionKeys), file: file, diags: &diags)
        let ev = event(map, section: section, file: file, diags: &diags)
        let stateNumber = number(map, "state", file: file, diags: &diags)
        let errnoNumber = number(map, "errno", file: file, diags: &diags)
        let sectorNumber = number(map, "sector", file: file, diags: &diags)
        let once = bool(map, "once", file: file, diags: &diags)
        let immediately = bool(map, "immediately", file: file, diags: &diags)
        var mask = BlkdebugIOType.defaultMask
        if let e = map["iotype"] {
            if let t = BlkdebugIOType(rawValue: e.value) {
                mask = t.bit
            } else {
                var hint = "one of: " + BlkdebugIOType.allCases.map(\.rawValue).joined(separator: ", ")
                if e.value.contains(",") || e.value.contains("|") { hint = "a rule takes one iotype; write one rule per iotype" }
                if e.value == "write_zeroes" || e.value == "block_status" { hint = "QEMU spells it with a dash: \(e.value.replacingOccurrences(of: "_", with: "-"))" }
                diags.append(RuleDiagnostic(.error, "unknown-iotype", at: RuleLocation(file: file, line: e.line),
                    "'\(e.value)' is not a blkdebug iotype", hint: hint))
            }
        }
        // Outer nil: the number had an error; inner nil: the key is absent.
        var state: Int32??, errno: Int32??, sector: Int64??
        if let n = stateNumber { state = .some(int32(n, "state", map, file: file, diags: &diags)) }
        if let n = errnoNumber { errno = .some(int32(n, "errno", map, file: file, diags: &diags)) }
        if let n = sectorNumber { sector = .some(sectorValue(n, map, file: file, diags: &diags)) }
        let ext = extensions(map, file: file, diags: &diags)
        guard diags.filter({ $0.severity == .error }).count == before, let ev,
              let state, let errno, let sector, let once, let immediately else { return nil }
        return InjectErrorRule(event: ev, state: Int(state ?? 0), iotypeMask: mask, errno: errno ?? 5,
                               sector: sector, once: once, immediately: immediately, extensions: ext,
                               location: RuleLocation(file: file, line: section.line), id: section.id)
    }

    private func buildSetState(_ section: Section, file: String, diags: inout [RuleDiagnostic]) -> SetStateRule? {
        let before = diags.filter { $0.severity == .error }.count
        let map = values(section, known: Self.setStateKeys, file: file, diags: &diags)
        let ev = event(map, section: section, file: file, diags: &diags)
        let stateNumber = number(map, "state", file: file, diags: &diags)
        let newStateNumber = number(map, "new_state", file: file, diags: &diags)
        var state: Int32??, newState: Int32??
        if let n = stateNumber { state = .some(int32(n, "state", map, file: file, diags: &diags)) }
        if let n = newStateNumber { newState = .some(int32(n, "new_state", map, file: file, diags: &diags)) }
        guard diags.filter({ $0.severity == .error }).count == before, let ev, let state, let newState else { return nil }
        return SetStateRule(event: ev, state: Int(state ?? 0), newState: Int(newState ?? 0),
                            location: RuleLocation(file: file, line: section.line), id: section.id)
    }

    // MARK: - kvmscope extensions

    private func extensions(_ map: [String: Entry], file: String, diags: inout [RuleDiagnostic]) -> FaultExtensions {
        var ext = FaultExtensions()
        func bad(_ e: Entry, _ message: String) {
            diags.append(RuleDiagnostic(.error, "bad-extension-value", at: RuleLocation(file: file, line: e.line), message))
        }
        if let e = map["probability"] {
            if let p = Self.parseProbability(e.value) { ext.probability = p }
            else { bad(e, "probability must be a number from 0 to 1 (or a percentage like \"10%\"), not '\(e.value)'") }
        }
        if let e = map["delay"] {
            if let d = Self.parseDuration(e.value) { ext.delayNanoseconds = d }
            else { bad(e, "delay must be a duration like \"20ms\", \"1.5s\", \"500us\", not '\(e.value)'") }
        }
        if let e = map["after"] {
            if let n = Int(e.value.trimmingCharacters(in: .whitespaces)), n >= 0 { ext.after = n }
            else { bad(e, "after must be a whole number of requests (0 or more), not '\(e.value)'") }
        }
        for key in ["up", "down"] {
            guard let e = map[key] else { continue }
            if let ns = Self.parseDuration(e.value), ns > 0 {
                let s = Double(ns) / 1e9
                if key == "up" { ext.upSeconds = s } else { ext.downSeconds = s }
            } else {
                bad(e, "\(key) must be a positive duration in seconds (\"30\", \"1.5s\", \"500ms\"), not '\(e.value)'")
            }
        }
        if (map["up"] == nil) != (map["down"] == nil), let e = map["up"] ?? map["down"] {
            bad(e, "up and down go together (like dm-flakey's <up interval> <down interval>)")
        }
        for key in Self.extensionKeys.sorted() {
            if let e = map[key] {
                diags.append(RuleDiagnostic(.note, "kvmscope-key", at: RuleLocation(file: file, line: e.line),
                    "'\(key)' is a kvmscope extension: kvmscope io and kvmscope nbd serve apply it; QEMU's blkdebug refuses the file (\"Invalid parameter '\(key)'\")"))
            }
        }
        return ext
    }

    /// "0.1", "10%", "1:10".
    public static func parseProbability(_ s: String) -> Double? {
        let t = s.trimmingCharacters(in: .whitespaces)
        var p: Double?
        if t.hasSuffix("%"), let v = Double(t.dropLast()) { p = v / 100 }
        else if let colon = t.firstIndex(of: ":"), let a = Double(t[..<colon]), let b = Double(t[t.index(after: colon)...]), b > 0 { p = a / b }
        else { p = Double(t) }
        guard let p, p.isFinite, p >= 0, p <= 1 else { return nil }
        return p
    }

    /// "20ms", "1.5s", "500us", "100ns", "2" (seconds) → nanoseconds.
    public static func parseDuration(_ s: String) -> UInt64? {
        let t = s.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9)]
        var number = t, scale = 1e9
        for (suffix, factor) in units where t.hasSuffix(suffix) {
            number = String(t.dropLast(suffix.count)); scale = factor; break
        }
        guard let v = Double(number), v.isFinite, v >= 0, v * scale < 1e18 else { return nil }
        return UInt64((v * scale).rounded())
    }
}
