import Foundation

/// One errno value: what logs and traces print as a number, in words.
public struct ErrnoEntry: Hashable, Sendable, Codable {
    /// Positive errno number on the table's architecture.
    public let number: Int32
    /// The canonical symbolic name, e.g. `EIO`.
    public let name: String
    /// Other names for the same number, e.g. `EWOULDBLOCK` for `EAGAIN`.
    public let aliases: [String]
    /// glibc's strerror() text, e.g. "Input/output error"; for kernel-internal numbers, the
    /// comment of include/linux/errno.h.
    public let message: String
    /// One of the kernel's own numbers (512...531, include/linux/errno.h): printed in kernel
    /// logs, never returned to user space, unknown to glibc's strerror().
    public let kernelInternal: Bool

    public init(number: Int32, name: String, aliases: [String], message: String, kernelInternal: Bool = false) {
        self.number = number
        self.name = name
        self.aliases = aliases
        self.message = message
        self.kernelInternal = kernelInternal
    }

    /// "kernel-internal, never returned to user space" for the kernel's own numbers.
    public static let kernelInternalNote = "kernel-internal, never returned to user space"
}

/// Architectures whose errno numbering kvmscope knows. Everything not listed here
/// (x86-64, i386, arm, arm64, riscv, s390, loongarch, ...) uses asm-generic's numbers.
public enum ErrnoArchitecture: String, CaseIterable, Sendable, Codable {
    case generic = "x86-64"
    case alpha, mips, parisc, powerpc, sparc

    /// Accepts the names people type: `x86_64`, `amd64`, `arm64`, `mips64el`, `ppc64le`, `sparc64`, `hppa`...
    public init?(userName: String) {
        let n = userName.lowercased().replacingOccurrences(of: "_", with: "-")
        switch n {
        case "x86-64", "x86", "amd64", "i386", "i686", "generic", "asm-generic", "arm", "arm64",
             "aarch64", "riscv", "riscv64", "s390", "s390x", "loongarch", "loongarch64", "ia64",
             "arc", "csky", "hexagon", "m68k", "microblaze", "nios2", "openrisc", "sh", "um", "xtensa":
            self = .generic
        case "alpha": self = .alpha
        case "mips", "mipsel", "mips64", "mips64el": self = .mips
        case "parisc", "parisc64", "hppa": self = .parisc
        case "powerpc", "ppc", "ppc64", "ppc64le", "powerpc64", "powerpc64le": self = .powerpc
        case "sparc", "sparc64": self = .sparc
        default: return nil
        }
    }
}

/// The errno table of one architecture: number ↔ name ↔ message.
/// This is the one place every analysis decodes `ret -5`, `errno = "28"` or `Error -28` with.
public struct ErrnoTable: Sendable {
    public let architecture: ErrnoArchitecture
    /// Every known number, ascending.
    public let entries: [ErrnoEntry]
    private let byNumber: [Int32: ErrnoEntry]
    private let byName: [String: ErrnoEntry]

    /// The asm-generic (x86-64) table, used wherever no architecture was named.
    public static let standard = ErrnoTable(architecture: .generic)

    public static func forArchitecture(_ arch: ErrnoArchitecture) -> ErrnoTable {
        arch == .generic ? standard : ErrnoTable(architecture: arch)
    }

    public init(architecture: ErrnoArchitecture) {
        self.architecture = architecture
        var messages: [String: String] = ErrnoData.extraMessages
        var numbers: [String: Int32] = [:]
        for (number, name, message) in ErrnoData.generic {
            messages[name] = message
            if architecture == .generic || number <= 34 { numbers[name] = number }
        }
        var aliases: [(String, String)] = architecture == .generic ? ErrnoData.genericAliases : []
        let archText: String
        switch architecture {
        case .generic: archText = ""
        case .alpha: archText = ErrnoData.alpha
        case .mips: archText = ErrnoData.mips
        case .parisc: archText = ErrnoData.parisc
        case .sparc: archText = ErrnoData.sparc
        case .powerpc:
            archText = ErrnoData.powerpc
            for (number, name, _) in ErrnoData.generic { numbers[name] = number }
            aliases = ErrnoData.genericAliases.filter { $0.0 != "EDEADLOCK" }
        }
        let words = archText.split(whereSeparator: { $0 == " " || $0 == "\n" })
        var i = 0
        while i < words.count {
            let word = String(words[i])
            if let eq = word.firstIndex(of: "=") {
                aliases.append((String(word[..<eq]), String(word[word.index(after: eq)...])))
                i += 1
            } else {
                numbers[word] = Int32(words[i + 1])!
                i += 2
            }
        }
        // One name per number; the headers spell every second name as an alias define,
        // so a clash here would be a transcription slip — keep it visible as an alias.
        var canonicalByNumber: [Int32: String] = [:]
        for (name, number) in numbers.sorted(by: { $0.key < $1.key }) {
            if let existing = canonicalByNumber[number] { aliases.append((name, existing)) }
            else { canonicalByNumber[number] = name }
        }
        var aliasMap: [String: [String]] = [:]
        for (alias, canonical) in aliases { aliasMap[canonical, default: []].append(alias) }
        var list: [ErrnoEntry] = []
        for (number, name) in canonicalByNumber {
            list.append(ErrnoEntry(number: number, name: name,
                                   aliases: (aliasMap[name] ?? []).sorted(),
                                   message: messages[name] ?? "Unknown error \(number)"))
        }
        // The kernel's own numbers sit above every architecture's user-space range (MIPS's
        // largest, EDQUOT, is 1133 but nothing of MIPS lies in 512...531).
        for (number, name, message) in ErrnoData.kernelInternal where canonicalByNumber[number] == nil {
            list.append(ErrnoEntry(number: number, name: name, aliases: [], message: message, kernelInternal: true))
        }
        list.sort { $0.number < $1.number }
        entries = list
        var numberIndex: [Int32: ErrnoEntry] = [:]
        var nameIndex: [String: ErrnoEntry] = [:]
        for e in list {
            numberIndex[e.number] = e
            nameIndex[e.name] = e
            for a in e.aliases { nameIndex[a] = e }
        }
        byNumber = numberIndex
        byName = nameIndex
    }

    /// Looks up a number; negative numbers (QEMU's `ret -5`, the kernel's `-EIO`) are negated.
    public func entry(number: Int64) -> ErrnoEntry? {
        let magnitude = number < 0 ? -number : number
        guard magnitude <= Int64(Int32.max) else { return nil }
        return byNumber[Int32(magnitude)]
    }

    /// Looks up a symbolic name, case-insensitively, aliases included (`eio`, `EWOULDBLOCK`).
    public func entry(name: String) -> ErrnoEntry? {
        byName[name.uppercased()]
    }

    /// Accepts whatever a user or a log wrote: `5`, `-5`, `EIO`, `eio`, `0x5`.
    public func entry(query: String) -> ErrnoEntry? {
        let q = query.trimmingCharacters(in: .whitespaces)
        if let n = Int64(q) { return entry(number: n) }
        if q.lowercased().hasPrefix("0x"), let n = Int64(q.dropFirst(2), radix: 16) { return entry(number: n) }
        if q.hasPrefix("-0x") || q.hasPrefix("-0X"), let n = Int64(q.dropFirst(3), radix: 16) { return entry(number: n) }
        return entry(name: q)
    }

    /// The entry whose glibc message is exactly `message` (QMP's BLOCK_IO_ERROR `reason` is
    /// strerror() text: "No space left on device" → ENOSPC). Case-insensitive.
    public func entry(message: String) -> ErrnoEntry? {
        let m = message.lowercased()
        return entries.first { $0.message.lowercased() == m }
    }

    /// Entries whose name, aliases or message contain every word (case-insensitive).
    public func search(_ words: [String]) -> [ErrnoEntry] {
        let needles = words.flatMap { $0.split(separator: " ") }.map { $0.lowercased() }.filter { !$0.isEmpty }
        guard !needles.isEmpty else { return entries }
        return entries.filter { e in
            let hay = ([e.name] + e.aliases + [e.message]).joined(separator: " ").lowercased()
            return needles.allSatisfy { hay.contains($0) }
        }
    }

    /// "EIO (Input/output error)" for a raw return value such as `-5`; "errno 999" when unknown.
    public func describe(returnValue: Int64) -> String {
        if let e = entry(number: returnValue) { return "\(e.name) (\(e.message))" }
        return "errno \(returnValue < 0 ? -returnValue : returnValue) (unknown)"
    }
}
