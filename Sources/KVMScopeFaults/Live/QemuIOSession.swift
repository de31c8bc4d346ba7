import Foundation

/// `kvmscope io`: qemu-io's commands on a `BlockBackend`, printing qemu-io's exact lines
/// (qemu-io-cmds.c, QEMU 7.2). Synchronous commands are in QemuIOSession+Requests.swift, the
/// asynchronous ones and blkdebug's breakpoints in QemuIOSession+Async.swift.
/// Each command returns whether it succeeded; like qemu-io, a session fails if any command did.
public final class QemuIOSession {
    public let backend: any BlockBackend
    /// Where the report goes (qemu-io's stdout) and where complaints go (its stderr). Requests
    /// running in the background print too (blkdebug's breakpoint lines), so both go through
    /// `outputLock`.
    private let outSink: (String) -> Void
    private let errSink: (String) -> Void
    private let outputLock = NSLock()
    /// Called for every fault a rule injected (for `--log`); from request threads too.
    public var onFault: ((InjectedFault, String) -> Void)?
    /// [rate] connection-rate pipes of this session (one connection); aio requests complete on threads.
    var connectionRates = ConnectionRatePipes()
    let connectionRateLock = NSLock()
    public private(set) var quitRequested = false
    public var formatName = "raw"
    /// Whether `info` has the driver's cluster size and VM state offset to print: a file has
    /// (zeroes, for raw); QEMU's NBD client gives none (bdrv_get_info fails), so only the format.
    public var hasDriverInfo = true
    /// What stderr lines are prefixed with where qemu-io's error_report says `qemu-io: `.
    public var programName = "kvmscope io"

    /// qemu-io's BDRV_REQUEST_MAX_BYTES.
    public static let maxRequestBytes: Int64 = (Int64(Int32.max) >> 9) << 9

    /// Requests in the background (aio_read, aio_write) and their state.
    let async: AsyncRequests

    public init(backend: any BlockBackend, out: @escaping (String) -> Void, err: @escaping (String) -> Void) {
        self.backend = backend
        self.outSink = out
        self.errSink = err
        self.async = AsyncRequests()
        if let injecting = backend as? FaultInjectingBackend, injecting.breakpoints == nil {
            injecting.breakpoints = BlkdebugBreakpoints(observer: async.breakpointObserver(session: self))
        }
    }

    func out(_ s: String) { outputLock.lock(); outSink(s); outputLock.unlock() }
    func err(_ s: String) { outputLock.lock(); errSink(s); outputLock.unlock() }
    /// qemu-io's error_report: `PROGRAM: message` on stderr.
    func report(_ s: String) { err("\(programName): \(s)\n") }

    struct Command {
        let name: String
        let altName: String?
        /// nil: qemu-io prints no argument field at all (`flush -- ...`); "" prints an empty one
        /// (`map  -- ...`).
        let args: String?
        let oneline: String
        let help: String
        let argmin: Int
        let argmax: Int
    }

    /// qemu-io 7.2's commands that kvmscope implements, in qemu-io's (sorted) order, with its
    /// argument counts, argument strings, one-line descriptions and extended help, word for word
    /// as qemu-io-cmds.c has them (its cmdinfo_t `args`, `oneline` and `help` functions, e.g.
    /// read_help): qemuio_command_usage prints `name args -- oneline` after an argument error,
    /// so the option letters there are qemu-io's own (`-a` in read's is qemu-io's too, though its
    /// getopt string has none).
    static let commands: [Command] = [
        Command(name: "aio_flush", altName: nil, args: nil, oneline: "completes all outstanding aio requests", help: "", argmin: 0, argmax: 0),
        Command(name: "aio_read", altName: nil, args: "[-Ciqv] [-P pattern] off len [len..]", oneline: "asynchronously reads a number of bytes",
                help: " asynchronously reads a range of bytes from the given offset\n\n Example:\n 'aio_read -v 512 1k 1k ' - dumps 2 kilobytes read from 512 bytes into the file\n\n Reads a segment of the currently open file, optionally dumping it to the\n standard output stream (with -v option) for subsequent inspection.\n The read is performed asynchronously and the aio_flush command must be\n used to ensure all outstanding aio requests have been completed.\n Note that due to its asynchronous nature, this command will be\n considered successful once the request is submitted, independently\n of potential I/O errors or pattern mismatches.\n -C, -- report statistics in a machine parsable format\n -P, -- use a pattern to verify read data\n -i, -- treat request as invalid, for exercising stats\n -v, -- dump buffer to standard output\n -q, -- quiet mode, do not show I/O statistics\n",
                argmin: 2, argmax: -1),
        Command(name: "aio_write", altName: nil, args: "[-Cfiquz] [-P pattern] off len [len..]", oneline: "asynchronously writes a number of bytes",
                help: " asynchronously writes a range of bytes from the given offset source\n from multiple buffers\n\n Example:\n 'aio_write 512 1k 1k' - writes 2 kilobytes at 512 bytes into the open file\n\n Writes into a segment of the currently open file, using a buffer\n filled with a set pattern (0xcdcdcdcd).\n The write is performed asynchronously and the aio_flush command must be\n used to ensure all outstanding aio requests have been completed.\n Note that due to its asynchronous nature, this command will be\n considered successful once the request is submitted, independently\n of potential I/O errors or pattern mismatches.\n -P, -- use different pattern to fill file\n -C, -- report statistics in a machine parsable format\n -f, -- use Force Unit Access semantics\n -i, -- treat request as invalid, for exercising stats\n -q, -- quiet mode, do not show I/O statistics\n -u, -- with -z, allow unmapping\n -z, -- write zeroes using blk_aio_pwrite_zeroes\n",
                argmin: 2, argmax: -1),
        Command(name: "alloc", altName: "a", args: "offset [count]", oneline: "checks if offset is allocated in the file", help: "", argmin: 1, argmax: 2),
        Command(name: "break", altName: nil, args: "event tag", oneline: "sets a breakpoint on event and tags the stopped request as tag", help: "", argmin: 2, argmax: 2),
        Command(name: "discard", altName: "d", args: "[-Cq] off len", oneline: "discards a number of bytes at a specified offset",
                help: " discards a range of bytes from the given offset\n\n Example:\n 'discard 512 1k' - discards 1 kilobyte from 512 bytes into the file\n\n Discards a segment of the currently open file.\n -C, -- report statistics in a machine parsable format\n -q, -- quiet mode, do not show I/O statistics\n",
                argmin: 2, argmax: -1),
        Command(name: "flush", altName: "f", args: nil, oneline: "flush all in-core file state to disk",
                help: "", argmin: 0, argmax: 0),
        Command(name: "help", altName: "?", args: "[command]", oneline: "help for one or all commands", help: "", argmin: 0, argmax: 1),
        Command(name: "info", altName: "i", args: nil, oneline: "prints information about the current file", help: "", argmin: 0, argmax: 0),
        Command(name: "length", altName: "l", args: nil, oneline: "gets the length of the current file", help: "", argmin: 0, argmax: 0),
        Command(name: "map", altName: nil, args: "", oneline: "prints the allocated areas of a file", help: "", argmin: 0, argmax: 0),
        Command(name: "quit", altName: "q", args: nil, oneline: "exit the program", help: "", argmin: 0, argmax: -1),
        Command(name: "read", altName: "r", args: "[-abCqv] [-P pattern [-s off] [-l len]] off len",
                oneline: "reads a number of bytes at a specified offset",
                help: " reads a range of bytes from the given offset\n\n Example:\n 'read -v 512 1k' - dumps 1 kilobyte read from 512 bytes into the file\n\n Reads a segment of the currently open file, optionally dumping it to the\n standard output stream (with -v option) for subsequent inspection.\n -b, -- read from the VM state rather than the virtual disk\n -C, -- report statistics in a machine parsable format\n -l, -- length for pattern verification (only with -P)\n -p, -- ignored for backwards compatibility\n -P, -- use a pattern to verify read data\n -q, -- quiet mode, do not show I/O statistics\n -s, -- start offset for pattern verification (only with -P)\n -v, -- dump buffer to standard output\n",
                argmin: 2, argmax: -1),
        Command(name: "readv", altName: nil, args: "[-Cqv] [-P pattern] off len [len..]", oneline: "reads a number of bytes at a specified offset",
                help: " reads a range of bytes from the given offset into multiple buffers\n\n Example:\n 'readv -v 512 1k 1k ' - dumps 2 kilobytes read from 512 bytes into the file\n\n Reads a segment of the currently open file, optionally dumping it to the\n standard output stream (with -v option) for subsequent inspection.\n Uses multiple iovec buffers if more than one byte range is specified.\n -C, -- report statistics in a machine parsable format\n -P, -- use a pattern to verify read data\n -v, -- dump buffer to standard output\n -q, -- quiet mode, do not show I/O statistics\n",
                argmin: 2, argmax: -1),
        Command(name: "remove_break", altName: nil, args: "tag", oneline: "remove a breakpoint by tag", help: "", argmin: 1, argmax: 1),
        Command(name: "resume", altName: nil, args: "tag", oneline: "resumes the request tagged as tag", help: "", argmin: 1, argmax: 1),
        Command(name: "sleep", altName: nil, args: nil, oneline: "waits for the given value in milliseconds", help: "", argmin: 1, argmax: 1),
        Command(name: "truncate", altName: "t", args: "[-m prealloc_mode] off", oneline: "truncates the current file at the given offset",
                help: "", argmin: 1, argmax: 3),
        Command(name: "wait_break", altName: nil, args: "tag", oneline: "waits for the suspension of a request", help: "", argmin: 1, argmax: 1),
        Command(name: "write", altName: "w", args: "[-bcCfnquz] [-P pattern | -s source_file] off len",
                oneline: "writes a number of bytes at a specified offset",
                help: " writes a range of bytes from the given offset\n\n Example:\n 'write 512 1k' - writes 1 kilobyte at 512 bytes into the open file\n\n Writes into a segment of the currently open file, using a buffer\n filled with a set pattern (0xcdcdcdcd).\n -b, -- write to the VM state rather than the virtual disk\n -c, -- write compressed data with blk_write_compressed\n -f, -- use Force Unit Access semantics\n -n, -- with -z, don't allow slow fallback\n -p, -- ignored for backwards compatibility\n -P, -- use different pattern to fill file\n -s, -- use a pattern file to fill the write buffer\n -C, -- report statistics in a machine parsable format\n -q, -- quiet mode, do not show I/O statistics\n -u, -- with -z, allow unmapping\n -z, -- write zeroes using blk_co_pwrite_zeroes\n",
                argmin: 2, argmax: -1),
        Command(name: "writev", altName: nil, args: "[-Cfq] [-P pattern] off len [len..]", oneline: "writes a number of bytes at a specified offset",
                help: " writes a range of bytes from the given offset source from multiple buffers\n\n Example:\n 'writev 512 1k 1k' - writes 2 kilobytes at 512 bytes into the open file\n\n Writes into a segment of the currently open file, using a buffer\n filled with a set pattern (0xcdcdcdcd).\n -P, -- use different pattern to fill file\n -C, -- report statistics in a machine parsable format\n -f, -- use Force Unit Access semantics\n -q, -- quiet mode, do not show I/O statistics\n",
                argmin: 2, argmax: -1),
    ]

    /// The commands whose cmdinfo_t asks for BLK_PERM_WRITE.
    static let writingCommands: Set<String> = ["write", "writev", "aio_write", "discard", "truncate"]

    static func find(_ name: String) -> Command? {
        commands.first { $0.name == name || $0.altName == name }
    }

    /// Runs one command line. Returns false when the command failed (qemu-io then exits 1).
    @discardableResult
    public func run(_ line: String) -> Bool {
        // qemu-io's breakline: words split on single spaces, empty ones skipped.
        let argv = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard let name = argv.first else { return true }
        guard let cmd = Self.find(name) else {
            err("command \"\(name)\" not found\n")
            return false
        }
        let args = Array(argv.dropFirst())
        // qemu-io-cmds.c `command`: the argument count is checked before the command runs.
        if args.count < cmd.argmin || (cmd.argmax != -1 && args.count > cmd.argmax) {
            return badCount(name, args.count, cmd.argmin, cmd.argmax)
        }
        // qemu-io raises a command's permissions before running it (qemu-io-cmds.c `command`,
        // `ct->perm`), which a read-only image refuses.
        if Self.writingCommands.contains(cmd.name) && refuseReadOnly() { return false }
        let ok = dispatch(cmd, name, args)
        // Background requests that completed meanwhile report now, as qemu-io's main loop runs
        // their callbacks while it waits for a command's own I/O.
        if cmd.name != "quit" { deliverCompletions() }
        return ok
    }

    private func dispatch(_ cmd: Command, _ name: String, _ args: [String]) -> Bool {
        switch cmd.name {
        case "read": return read(cmd, args)
        case "readv": return readv(cmd, args)
        case "write": return write(cmd, args)
        case "writev": return writev(cmd, args)
        case "discard": return discard(cmd, args)
        case "flush": return flush()
        case "aio_read": return aioRead(cmd, args)
        case "aio_write": return aioWrite(cmd, args)
        case "aio_flush": return aioFlush()
        case "length": return length()
        case "map": return map()
        case "alloc": return alloc(args)
        case "truncate": return truncate(cmd, args)
        case "sleep": return sleep(args[0])
        case "break": return setBreakpoint(event: args[0], tag: args[1])
        case "resume": return resume(tag: args[0])
        case "wait_break": return waitBreak(tag: args[0])
        case "remove_break": return removeBreakpoint(tag: args[0])
        case "info":
            out("format name: \(formatName)\n")
            if hasDriverInfo { out("cluster size: 0 bytes\nvm state offset: 0 bytes\n") }
            return true
        case "help": return help(args)
        case "quit":
            quitRequested = true
            return true
        default:
            return false
        }
    }

    private func badCount(_ name: String, _ n: Int, _ min: Int, _ max: Int) -> Bool {
        if max == -1 {
            err("bad argument count \(n) to \(name), expected at least \(min) arguments\n")
        } else if min == max {
            err("bad argument count \(n) to \(name), expected \(min) arguments\n")
        } else {
            err("bad argument count \(n) to \(name), expected between \(min) and \(max) arguments\n")
        }
        return false
    }

    /// qemu-io's help_oneline: `NAME [ARGS ]-- ONELINE`.
    private func oneline(_ name: String, _ cmd: Command) -> String {
        "\(name) \(cmd.args.map { "\($0) " } ?? "")-- \(cmd.oneline)\n"
    }

    func usage(_ cmd: Command) -> Bool {
        out(oneline(cmd.name, cmd))
        return false
    }

    private func help(_ args: [String]) -> Bool {
        if let name = args.first {
            guard let cmd = Self.find(name) else {
                out("command \(name) not found\n")
                return false
            }
            out(oneline(name, cmd) + (cmd.help.isEmpty ? "" : "\n\(cmd.help)\n"))
            return true
        }
        for c in Self.commands { out(oneline(c.name, c)) }
        out("\nUse 'help commandname' for extended help.\n")
        return true
    }

    // MARK: - arguments

    /// getopt(3) as glibc does it: options may follow operands, `-Cq` clusters, `-P0xab` or `-P 0xab`.
    func getopt(_ cmd: Command, _ args: [String], spec: String) -> (flags: [Character: String], operands: [String])? {
        var flags: [Character: String] = [:], operands: [String] = []
        var i = 0
        var onlyOperands = false
        while i < args.count {
            let a = args[i]
            i += 1
            if onlyOperands || !a.hasPrefix("-") || a == "-" { operands.append(a); continue }
            if a == "--" { onlyOperands = true; continue }
            var chars = Array(a.dropFirst())
            while let c = chars.first {
                chars.removeFirst()
                guard let idx = spec.firstIndex(of: c) else {
                    err("\(cmd.name): invalid option -- '\(c)'\n")
                    return nil
                }
                let takesArg = spec.index(after: idx) < spec.endIndex && spec[spec.index(after: idx)] == ":"
                if takesArg {
                    if !chars.isEmpty { flags[c] = String(chars); chars = [] }
                    else if i < args.count { flags[c] = args[i]; i += 1 }
                    else { err("\(cmd.name): option requires an argument -- '\(c)'\n"); return nil }
                } else {
                    flags[c] = ""
                }
            }
        }
        return (flags, operands)
    }

    /// qemu-io's cvtnum with print_cvtnum_err's messages.
    func number(_ s: String) -> Int64? {
        switch QemuIOFormat.parseSizeChecked(s) {
        case .value(let v): return v
        case .tooLarge: out("Parsing error: argument too large -- \(s)\n")
        case .invalid: out("Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- \(s)\n")
        }
        return nil
    }

    /// parse_pattern: strtol(arg, &end, 0) that must fit a byte.
    func pattern(_ s: String) -> UInt8? {
        guard let v = QemuIOFormat.strtol(s), (0...255).contains(v) else {
            out("\(s) is not a valid pattern byte\n")
            return nil
        }
        return UInt8(v)
    }

    /// create_iovec's lengths: each a size, the total within one request.
    func vectorLengths(_ args: ArraySlice<String>) -> [Int]? {
        var lengths: [Int] = []
        var total: Int64 = 0
        for a in args {
            guard let n = number(a) else { return nil }
            if n > Self.maxRequestBytes {
                out("Argument '\(a)' exceeds maximum size \(Self.maxRequestBytes)\n")
                return nil
            }
            if total > Self.maxRequestBytes - n {
                out("The total number of bytes exceed the maximum size \(Self.maxRequestBytes)\n")
                return nil
            }
            total += n
            lengths.append(Int(n))
        }
        return lengths
    }

    /// The disk's size as QEMU sees a file: whole 512-byte sectors, the last one partial in the
    /// file rounded up (block.c bdrv_getlength = bdrv_nb_sectors * 512; file-posix reads past
    /// the end as zeroes and extends the file on writes there).
    var diskSize: Int64 {
        let size = backend.size
        guard (backend as? FaultInjectingBackend)?.image is RawImageFile, size % 512 != 0 else { return size }
        return size + 512 - size % 512
    }

    /// qemu's blk_check_byte_request: a range outside the image fails with EIO.
    func inRange(_ offset: Int64, _ length: Int64) -> Bool {
        let size = diskSize
        return offset >= 0 && offset <= size && size - offset >= length
    }

    /// Waits out what a rule asked for (delay, stall) and logs its faults; returns the errno.
    func complete(_ c: BlockCompletion, _ command: String) -> Int32 {
        // The session is one connection: [rate] connection-rate charges its own pipe.
        connectionRateLock.lock()
        let c = connectionRates.apply(c, now: now())
        connectionRateLock.unlock()
        for f in c.faults { onFault?(f, command) }
        if c.delayNanoseconds > 0 { Thread.sleep(forTimeInterval: Double(c.delayNanoseconds) / 1e9) }
        c.stall?.wait()
        return c.errno
    }

    func strerror(_ e: Int32) -> String { String(cString: Foundation.strerror(e)) }

    func now() -> Double { FaultRuleEngine.monotonicSeconds() }

    /// What a write-type command on a read-only image gets (block.c: "Block node is read-only").
    func refuseReadOnly() -> Bool {
        guard backend.isReadOnly else { return false }
        report("Block node is read-only")
        return true
    }
}
