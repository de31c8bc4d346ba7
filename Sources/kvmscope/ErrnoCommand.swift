import ArgumentParser
import KVMScope

extension ErrnoArchitecture: ExpressibleByArgument {
    public init?(argument: String) { self.init(userName: argument) }
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

struct ErrnoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "errno",
        abstract: "Turn the error numbers that logs and traces print into names and words.",
        discussion: """
        Accepts numbers (QEMU traces print them negative: `ret -5`), names and aliases in any case.
        Messages are glibc's strerror() texts, as qemu-io and QMP print them.

        Examples:
          $ kvmscope errno -5
          EIO 5 Input/output error
          $ kvmscope errno ewouldblock
          EAGAIN 11 Resource temporarily unavailable
          $ kvmscope errno --search space left
          ENOSPC 28 No space left on device
          $ kvmscope errno --arch sparc 69
          EDQUOT 69 Disk quota exceeded
          $ kvmscope errno --json 28
          $ kvmscope errno --list
        Exit status: 0 found, 1 unknown number/name or no match, 2 usage error.
        """
    )

    // `.allUnrecognized` so that `-5` (how QEMU prints errnos) reaches us as a number
    // instead of being rejected as an unknown option; `validate()` rejects real unknown flags.
    @Argument(parsing: .allUnrecognized, help: "Errno numbers or names, e.g. 5, -28, EIO, enospc.")
    var queries: [String] = []

    @Flag(name: .shortAndLong, help: "List every errno of the architecture.")
    var list = false

    @Option(name: .shortAndLong, parsing: .upToNextOption,
            help: "Words that must all appear in the name or message (case-insensitive).")
    var search: [String] = []

    @Option(name: .long, help: "Numbering of the host that printed the numbers: x86-64 (also arm64, riscv, s390...), alpha, mips, parisc, powerpc, sparc.")
    var arch: ErrnoArchitecture = .generic

    @OptionGroup var output: OutputOptions

    /// The queries with a `--` taken as the end of options, as every Unix tool does
    /// (`kvmscope errno -- -28`): what follows it is never an option.
    var terms: [String] {
        guard let end = queries.firstIndex(of: "--") else { return queries }
        return Array(queries[..<end]) + queries[(end + 1)...]
    }

    func validate() throws {
        let beforeEnd = queries.prefix { $0 != "--" }
        for q in beforeEnd where q.hasPrefix("-") && Int64(q) == nil && !q.lowercased().hasPrefix("-0x") {
            throw ValidationError("unknown option '\(q)'")
        }
        let modes = (list ? 1 : 0) + (search.isEmpty ? 0 : 1) + (terms.isEmpty ? 0 : 1)
        if modes == 0 { throw ValidationError("give an errno number or name, --search WORDS or --list") }
        if modes > 1 { throw ValidationError("use only one of: numbers/names, --search, --list") }
    }

    func run() throws {
        let table = ErrnoTable.forArchitecture(arch)
        var found: [ErrnoEntry] = []
        var unknown: [String] = []
        if list {
            found = table.entries
        } else if !search.isEmpty {
            found = table.search(search)
            if found.isEmpty { unknown.append(search.joined(separator: " ")) }
        } else {
            for q in terms {
                if let e = table.entry(query: q) { found.append(e) } else { unknown.append(q) }
            }
        }
        if output.json {
            CLIOutput.write(try ErrnoRenderer.json(found, architecture: arch))
        } else {
            CLIOutput.write(found.map { ErrnoRenderer.line($0) + "\n" }.joined())
        }
        for u in unknown {
            if !search.isEmpty { CLIOutput.error("no errno matches '\(u)'") }
            else { CLIOutput.error("unknown errno '\(u)' on \(arch.rawValue) (try --list, --search or --arch)") }
        }
        if !unknown.isEmpty { throw ExitCode.failure }
    }
}
