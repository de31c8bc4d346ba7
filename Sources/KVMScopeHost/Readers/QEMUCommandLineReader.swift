import Foundation

/// Reads a QEMU command line as admins have it: `/proc/PID/cmdline` (NUL-separated), a shell
/// line (`ps -o args`, a script; backslash escapes and quotes, as bash's `printf %q` writes
/// them), libvirt's per-domain log (one option per line, each ending in ` \`, JSON arguments
/// in single quotes), or any line that holds the command after a prefix (`qemu_command=…`).
/// Only the last QEMU command of the input is read: a libvirt log holds one per start of the
/// domain, and the last start is the run the other inputs are of.
public enum QEMUCommandLineReader {
    /// Inputs larger than this are not a command line (a QEMU command line is kilobytes).
    public static let maxBytes = 4 << 20

    public enum Failure: KVMScopeFailure, Equatable {
        case noCommandLine(path: String)
        case tooLarge(path: String)
        public var description: String {
            switch self {
            case .noCommandLine(let p): return "no QEMU command line found in \(p): not a qemu-system/qemu-kvm command?"
            case .tooLarge(let p): return "\(p) is larger than \(QEMUCommandLineReader.maxBytes >> 20) MiB: not a QEMU command line"
            }
        }
        public var isUsageError: Bool { true }
    }

    /// Reads `stream` whole (bounded by `maxBytes`) and returns its last QEMU command's arguments.
    public static func arguments(in stream: ByteStream) throws -> [String] {
        let data = try stream.readAll(limit: maxBytes) { Failure.tooLarge(path: stream.name) }
        return try arguments(in: data, name: stream.name)
    }

    /// The arguments of the last QEMU command in `data` (program name first).
    public static func arguments(in data: [UInt8], name: String) throws -> [String] {
        guard data.count <= maxBytes else { throw Failure.tooLarge(path: name) }
        // /proc/PID/cmdline: arguments separated (and ended) by NUL.
        if data.contains(0) {
            let args = data.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            if let i = args.lastIndex(where: isQEMU) { return Array(args[i...]).filter { !$0.isEmpty } }
            throw Failure.noCommandLine(path: name)
        }
        let text = String(decoding: data, as: UTF8.self)
        // libvirt writes each option on its own line ending in " \": join those lines.
        let joined = text.replacingOccurrences(of: " \\\n", with: " ")
        var found: [String]?
        for line in joined.split(separator: "\n", omittingEmptySubsequences: true) {
            guard line.contains("qemu-system-") || line.contains("qemu-kvm") else { continue }
            let words = shellWords(String(line))
            // `qemu_command=qemu-system-x86_64 …`, `LC_ALL=C PATH=… /usr/bin/qemu-system-x86_64 …`
            if let i = words.firstIndex(where: isQEMU) { found = Array(words[i...]) }
        }
        guard let args = found, args.count > 1 else { throw Failure.noCommandLine(path: name) }
        return args
    }

    static func isQEMU(_ word: String) -> Bool {
        let base = word.split(separator: "/").last.map(String.init) ?? word
        let program = base.split(separator: "=").last.map(String.init) ?? base
        return program.hasPrefix("qemu-system-") || program == "qemu-kvm"
    }

    /// Splits like a POSIX shell: whitespace separates words; `\` escapes the next character;
    /// '…' is literal; "…" allows `\"` and `\\`. Unterminated quotes end at the line's end.
    static func shellWords(_ s: String) -> [String] {
        var words: [String] = []
        var cur = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for c in s {
            if escaped { cur.append(c); escaped = false; inWord = true; continue }
            if let q = quote {
                if c == q { quote = nil }
                else if c == "\\" && q == "\"" { escaped = true }
                else { cur.append(c) }
                continue
            }
            switch c {
            case "\\": escaped = true; inWord = true
            case "'", "\"": quote = c; inWord = true
            case " ", "\t", "\r":
                if inWord { words.append(cur); cur = ""; inWord = false }
            default: cur.append(c); inWord = true
            }
        }
        if inWord { words.append(cur) }
        return words
    }
}
