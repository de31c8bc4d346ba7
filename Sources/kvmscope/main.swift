import ArgumentParser
import Foundation
import KVMScope

/// kvmscope's root command: only the subcommand list and the help text live here.
struct Kvmscope: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvmscope",
        abstract: "Why did my QEMU/KVM guest see I/O errors? Answers from guest logs, QEMU traces and QMP events.",
        discussion: """
        Every input may be a file or - (standard input), plain or gzip/xz/zstd-compressed (told
        by its content); an empty input is a usage error.
        Exit status: 0 ok, 1 findings or failure, 2 usage error.

        Examples:
          kvmscope explain --example write-eio    # the main job, on a bundled capture
          kvmscope explain dmesg.txt trace.log qmp.log  # why did the guest see errors?
          kvmscope errno -5                       # EIO 5 Input/output error
          dmesg | kvmscope guest -                # which guest disks failed, and where
          kvmscope trace qemu-trace.log           # every virtio-blk request, failures
          kvmscope exits trace.txt                # vm-exit latency, slowest exits
          kvmscope watch --qmp '/run/kvmscope/*.qmp'   # every VM as Prometheus metrics on :9177
          sudo kvmscope drops                     # where the kernel drops packets
          kvmscope blkdebug check rules.cfg       # check QEMU blkdebug rules
          kvmscope nbd serve disk.img --rules rules.cfg   # fault-injecting NBD server
        """,
        version: KVMScopeVersion.withCommit,
        subcommands: [ExplainCommand.self, ErrnoCommand.self, GuestCommand.self, HostCommand.self, TraceCommand.self, ExitsCommand.self,
                      DropsCommand.self, RecordCommand.self, WatchCommand.self, BlkdebugCommand.self, IoCommand.self, NbdCommand.self]
    )
}

/// `--perf-compat=6.1` is the flag with a value, which ArgumentParser has no form for: it
/// becomes `--perf-compat --perf-version 6.1` (a bare `--perf-compat` detects the version).
func normalizedArguments(_ args: [String]) -> [String] {
    var out: [String] = []
    for a in args {
        if a == "--" { out.append(contentsOf: args[(args.firstIndex(of: "--")!)...]); return out }
        if a.hasPrefix("--perf-compat=") {
            out += ["--perf-compat", "--perf-version", String(a.dropFirst("--perf-compat=".count))]
        } else {
            out.append(a)
        }
    }
    return out
}

/// ArgumentParser reads `--top -1` as `--top` with no value and an option `-1` ("Missing value for
/// '--top <top>'"), hiding the real mistake. When parsing fails and an option is followed by a
/// negative number, that number is given to it (`--top=-1`) and parsed again, so the command's
/// own check says what is wrong ("--top must be 1...100000"). If that fails too, the first error
/// stands (a flag followed by a number, as in `errno --json -5`, keeps its message).
func parseCommand(_ args: [String]) throws -> any ParsableCommand {
    do {
        return try Kvmscope.parseAsRoot(args)
    } catch {
        var joined: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            if a == "--" { joined += args[i...]; break }
            if a.hasPrefix("--"), !a.contains("="), i + 1 < args.count, isNegativeNumber(args[i + 1]) {
                joined.append(a + "=" + args[i + 1])
                i += 2
                continue
            }
            joined.append(a)
            i += 1
        }
        guard joined != args else { throw error }
        do {
            return try Kvmscope.parseAsRoot(joined)
        } catch let retry {
            throw isValidationFailure(retry) ? retry : error
        }
    }
}

/// Whether a parse error came from a command's own `validate()` (so the value reached the
/// command), not from the parser. ArgumentParser keeps that distinction in an internal type;
/// read through Mirror, a change there only costs the better message, never a wrong one.
func isValidationFailure(_ error: any Error) -> Bool {
    if error is ValidationError { return true }
    guard let parserError = Mirror(reflecting: error).children.first(where: { $0.label == "parserError" })?.value else { return false }
    return Mirror(reflecting: parserError).children.first?.label == "userValidationError"
}

func isNegativeNumber(_ s: String) -> Bool {
    guard s.hasPrefix("-"), s.count > 1 else { return false }
    return Double(s) != nil
}

/// Runs the parsed command and maps every outcome onto kvmscope's exit statuses
/// (0 ok, 1 findings or failure, 2 usage), so a user never sees a stack trace or
/// ArgumentParser's own exit code 64.
func runMain() -> Never {
    // A closed stdout (`| head`) shows up as EPIPE in CLIOutput, which ends quietly.
    signal(SIGPIPE, SIG_IGN)
    // Bare `kvmscope` is a usage error, like git or perf without a subcommand: help on stderr, exit 2.
    if CommandLine.arguments.count == 1 {
        FileHandle.standardError.write(Data((Kvmscope.helpMessage() + "\n").utf8))
        exit(2)
    }
    do {
        var command = try parseCommand(normalizedArguments(Array(CommandLine.arguments.dropFirst())))
        try command.run()
        exit(0)
    } catch let error as any KVMScopeFailure {
        // Every domain's typed errors: one line, exit 2 for usage errors, else 1.
        CLIOutput.error(error.description)
        exit(error.isUsageError ? 2 : 1)
    } catch let code as ExitCode {
        exit(code.rawValue)          // the command already said what went wrong
    } catch {
        // Help and --version exit 0; everything else ArgumentParser throws is a usage error.
        let message = Kvmscope.fullMessage(for: error)
        if Kvmscope.exitCode(for: error) == .success {
            print(message)
            exit(0)
        }
        if !message.isEmpty { CLIOutput.error(message, prefix: false) }
        exit(2)
    }
}

runMain()
