import Foundation

/// `kvmscope io`: qemu-io's commands on a `BlockBackend`, printing qemu-io's exact lines.
/// Commands: read, write, flush, discard, info, help, quit (and qemu-io's one-letter names).
/// Each command returns whether it succeeded; like qemu-io, a session fails if any command did.
public final class QemuIOSession {
    public let backend: any BlockBackend
    /// Where the report goes (qemu-io's stdout) and where complaints go (its stderr).
    private let out: (String) -> Void
    private let err: (String) -> Void
    /// Called for every fault a rule injected (for `--log`).
    public var onFault: ((InjectedFault, String) -> Void)?
    public private(set) var quitRequested = false
    public var formatName = "raw"

    /// qemu-io's BDRV_REQUEST_MAX_BYTES.
    public static let maxRequestBytes: Int64 = (Int64(Int32.max) >> 9) << 9

    public init(backend: any BlockBackend, out: @escaping (String) -> Void, err: @escaping (String) -> Void) {
        self.backend = backend
        self.out = out
        self.err = err
    }

    struct Command {
        let name: String
        let altName: String?
        let args: String
        let oneline: String
        let help: String
    }

    static let commands: [Command] = [
        Command(name: "discard", altName: "d", args: "[-Cq] off len", oneline: "discards a number of bytes at a specified offset",
                help: " Discards (unmaps) a range of the image; reads of it may then return zeroes.\n -C, -- report statistics in a machine parsable format\n -q, -- quiet mode, do not show I/O statistics\n"),
        Command(name: "flush", altName: "f", args: "", oneline: "flush all in-core file state to disk",
                help: " Flushes the image (fdatasync), passing through blkdebug's flush_to_os and flush_to_disk events.\n"),
        Command(name: "help", altName: "?", args: "[command]", oneline: "help for one or all commands", help: ""),
        Command(name: "info", altName: "i", args: "", oneline: "prints information about the current file", help: ""),
        Command(name: "quit", altName: "q", args: "", oneline: "exit the program", help: ""),
        Command(name: "read", altName: "r", args: "[-Cqv] [-P pattern [-s off] [-l len]] off len",
                oneline: "reads a number of bytes at a specified offset",
                help: " Example: 'read -v 512 1k' dumps 1 KiB read at byte 512.\n -C, -- report statistics in a machine parsable format\n -l, -- length for pattern verification (only with -P)\n -P, -- use a pattern to verify read data\n -q, -- quiet mode, do not show I/O statistics\n -s, -- start offset for pattern verification (only with -P)\n -v, -- dump buffer to standard output\n"),
        Command(name: "write", altName: "w", args: "[-Cfquz] [-P pattern] off len",
                oneline: "writes a number of bytes at a specified offset",
                help: " Example: 'write -P 0xab 0 4k' writes 4 KiB of 0xab at offset 0 (default pattern 0xcd).\n -C, -- report statistics in a machine parsable format\n -f, -- use Force Unit Access semantics\n -P, -- use different pattern to fill file\n -q, -- quiet mode, do not show I/O statistics\n -u, -- with -z, allow unmapping\n -z, -- write zeroes\n"),
    ]

    static func find(_ name: String) -> Command? {
        commands.first { $0.name == name || $0.altName == name }
    }

    /// Runs one command line. Returns false when the command failed (qemu-io then exits 1).
    @discardableResult
    public func run(_ line: String) -> Bool {
        let argv = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard let name = argv.first else { return true }
        guard let cmd = Self.find(name) else {
            err("command \"\(name)\" not found\n")
            return false
        }
        let args = Array(argv.dropFirst())
        switch cmd.name {
        case "read": return read(cmd, args)
        case "write": return write(cmd, args)
        case "discard": return discard(cmd, args)
        case "flush":
            guard args.isEmpty else { return badCount(cmd, args.count, 0, 0) }
            return flush()
        case "info":
            guard args.isEmpty else { return badCount(cmd, args.count, 0, 0) }
            out("format name: \(formatName)\ncluster size: 0 bytes\nvm state offset: 0 bytes\n")
            return true
        case "help":
            return help(args)
        case "quit":
            quitRequested = true
            return true
        default:
            return false
        }
    }

    private func badCount(_ cmd: Command, _ n: Int, _ min: Int, _ max: Int) -> Bool {
        if max == -1 {
            err("bad argument count \(n) to \(cmd.name), expected at least \(min) arguments\n")
        } else if min == max {
            err("bad argument count \(n) to \(cmd.name), expected \(min) arguments\n")
        } else {
            err("bad argument count \(n) to \(cmd.name), expected between \(min) and \(max) arguments\n")
        }
        return false
    }

    private func usage(_ cmd: Command) -> Bool {
        out("\(cmd.name) \(cmd.args) -- \(cmd.oneline)\n")
        return false
    }

    private func help(_ args: [String]) -> Bool {
        if let name = args.first {
            guard let cmd = Self.find(name) else {
                err("command \(name) not found\n")
                return false
            }
            out("\(cmd.name) \(cmd.args) -- \(cmd.oneline)\n\n\(cmd.help)\n")
            return true
        }
        for c in Self.commands {
            out("\(c.name)\(c.altName.map { " (or \($0))" } ?? "") \(c.args) -- \(c.oneline)\n")
        }
        out("\nUse 'help commandname' for extended help.\n")
        return true
    }

    /// getopt(3) as glibc does it: options may follow operands, `-Cq` clusters, `-P0xab` or `-P 0xab`.
    private func getopt(_ cmd: Command, _ args: [String], spec: String) -> (flags: [Character: String], operands: [String])? {
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

    private func number(_ s: String) -> Int64? {
        guard let v = QemuIOFormat.parseSize(s) else {
            out("Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- \(s)\n")
            return nil
        }
        return v
    }

    private func pattern(_ s: String) -> UInt8? {
        var v: Int?
        let t = s.lowercased()
        if t.hasPrefix("0x") { v = Int(t.dropFirst(2), radix: 16) }
        else if t.count > 1 && t.hasPrefix("0") { v = Int(t.dropFirst(), radix: 8) }
        else { v = Int(t) }
        guard let v, (0...255).contains(v) else {
            out("\(s) is not a valid pattern byte\n")
            return nil
        }
        return UInt8(v)
    }

    /// qemu's blk_check_byte_request: a range outside the image fails with EIO.
    private func inRange(_ offset: Int64, _ length: Int64) -> Bool {
        offset <= backend.size && backend.size - offset >= length
    }

    private func complete(_ c: BlockCompletion, _ command: String) -> Int32 {
        for f in c.faults { onFault?(f, command) }
        if c.delayNanoseconds > 0 { Thread.sleep(forTimeInterval: Double(c.delayNanoseconds) / 1e9) }
        c.stall?.wait()                            // one request at a time: nothing else to serve meanwhile
        return c.errno
    }

    private func strerror(_ e: Int32) -> String { String(cString: Foundation.strerror(e)) }

    private func now() -> Double { FaultRuleEngine.monotonicSeconds() }

    private func read(_ cmd: Command, _ args: [String]) -> Bool {
        guard args.count >= 2 else { return badCount(cmd, args.count, 2, -1) }
        guard let (f, ops) = getopt(cmd, args, spec: "bCl:pP:qrs:v") else { return usage(cmd) }
        guard ops.count == 2 else { return usage(cmd) }
        var patternByte: UInt8?
        if let p = f["P"] { guard let b = pattern(p) else { return false }; patternByte = b }
        var patternOffset: Int64 = 0, patternCount: Int64?
        if let l = f["l"] { guard let v = number(l) else { return false }; patternCount = v }
        if let s = f["s"] { guard let v = number(s) else { return false }; patternOffset = v }
        guard let offset = number(ops[0]) else { return false }
        guard let count = number(ops[1]) else { return false }
        if count > Self.maxRequestBytes {
            out("length cannot exceed \(Self.maxRequestBytes), given \(ops[1])\n")
            return false
        }
        if patternByte == nil && (f["l"] != nil || f["s"] != nil) { return usage(cmd) }
        let pcount = patternCount ?? (count - patternOffset)
        if pcount < 0 || pcount + patternOffset > count {
            out("pattern verification range exceeds end of read data\n")
            return false
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(count), alignment: 4096)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0xab)
        let t0 = now()
        let e = inRange(offset, count) ? complete(backend.read(offset: offset, into: buffer), "read") : EIO
        let t1 = now()
        if e != 0 {
            out("read failed: \(strerror(e))\n")
            return false
        }
        var ok = true
        if let p = patternByte, pcount > 0 {
            let slice = UnsafeRawBufferPointer(rebasing: buffer[Int(patternOffset)..<Int(patternOffset + pcount)])
            if slice.contains(where: { $0 != p }) {
                out("Pattern verification failed at offset \(offset + patternOffset), \(pcount) bytes\n")
                ok = false
            }
        }
        if f["q"] != nil { return ok }
        if f["v"] != nil { out(QemuIOFormat.dump(UnsafeRawBufferPointer(buffer), offset: offset)) }
        out(QemuIOFormat.report("read", seconds: t1 - t0, offset: offset, count: count, total: count, ops: 1, machine: f["C"] != nil))
        return ok
    }

    private func write(_ cmd: Command, _ args: [String]) -> Bool {
        guard args.count >= 2 else { return badCount(cmd, args.count, 2, -1) }
        guard let (f, ops) = getopt(cmd, args, spec: "CfpP:quz") else { return usage(cmd) }
        guard ops.count == 2 else { return usage(cmd) }
        let zero = f["z"] != nil, fua = f["f"] != nil
        if f["u"] != nil && !zero { out("-u requires -z to be specified\n"); return false }
        if zero && f["P"] != nil { out("Only one of -z, -P, and -s can be specified at the same time\n"); return false }
        var fill: UInt8 = 0xcd
        if let p = f["P"] { guard let b = pattern(p) else { return false }; fill = b }
        guard let offset = number(ops[0]) else { return false }
        guard let count = number(ops[1]) else { return false }
        if count > Self.maxRequestBytes {
            out("length cannot exceed \(Self.maxRequestBytes) without -n, given \(ops[1])\n")
            return false
        }
        let t0: Double, e: Int32
        if zero {
            t0 = now()
            e = inRange(offset, count)
                ? complete(backend.writeZeroes(offset: offset, length: count, mayUnmap: f["u"] != nil, fua: fua), "write")
                : EIO
        } else {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(count), alignment: 4096)
            defer { buffer.deallocate() }
            buffer.initializeMemory(as: UInt8.self, repeating: fill)
            t0 = now()
            e = inRange(offset, count) ? complete(backend.write(offset: offset, from: UnsafeRawBufferPointer(buffer), fua: fua), "write") : EIO
        }
        let t1 = now()
        if e != 0 {
            out("write failed: \(strerror(e))\n")
            return false
        }
        if f["q"] != nil { return true }
        out(QemuIOFormat.report("wrote", seconds: t1 - t0, offset: offset, count: count, total: count, ops: 1, machine: f["C"] != nil))
        return true
    }

    private func discard(_ cmd: Command, _ args: [String]) -> Bool {
        guard args.count >= 2 else { return badCount(cmd, args.count, 2, -1) }
        guard let (f, ops) = getopt(cmd, args, spec: "Cq") else { return usage(cmd) }
        guard ops.count == 2 else { return usage(cmd) }
        guard let offset = number(ops[0]) else { return false }
        guard let count = number(ops[1]) else { return false }
        if count > Self.maxRequestBytes {
            out("length cannot exceed \(Self.maxRequestBytes), given \(ops[1])\n")
            return false
        }
        let t0 = now()
        let e = inRange(offset, count) ? complete(backend.discard(offset: offset, length: count), "discard") : EIO
        let t1 = now()
        if e != 0 {
            out("discard failed: \(strerror(e))\n")
            return false
        }
        if f["q"] != nil { return true }
        out(QemuIOFormat.report("discard", seconds: t1 - t0, offset: offset, count: count, total: count, ops: 1, machine: f["C"] != nil))
        return true
    }

    private func flush() -> Bool {
        let e = complete(backend.flush(), "flush")
        if e != 0 {
            // qemu-io prints nothing when a flush fails (only its exit status says so); say it on stderr.
            err("flush failed: \(strerror(e))\n")
            return false
        }
        return true
    }
}
