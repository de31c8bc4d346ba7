import Foundation

/// qemu-io's synchronous commands (qemu-io-cmds.c 7.2: read_f, readv_f, write_f, writev_f,
/// discard_f, flush_f, length_f, map_f, alloc_f, truncate_f): same checks in the same order,
/// same messages, same reports.
extension QemuIOSession {
    func read(_ cmd: Command, _ args: [String]) -> Bool {
        // read_f's getopt string in 7.2 (-r, registered buffers, came in 8.0).
        guard let (f, ops) = getopt(cmd, args, spec: "bCl:pP:qs:v") else { return usage(cmd) }
        guard ops.count == 2 else { return usage(cmd) }
        // -b reads the VM state, which a raw image does not have (bdrv_load_vmstate: ENOTSUP).
        if f["b"] != nil {
            out("read failed: \(strerror(ENOTSUP))\n")
            return false
        }
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

    /// readv: one request into several buffers, which are one after the other on the disk, so
    /// it is one read of their total length (QEMU's preadv of the I/O vector).
    func readv(_ cmd: Command, _ args: [String]) -> Bool {
        guard let (f, ops) = getopt(cmd, args, spec: "CP:qv") else { return usage(cmd) }
        guard ops.count >= 2 else { return usage(cmd) }
        guard let r = vectoredRead(f, ops) else { return false }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: r.count, alignment: 4096)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0xab)
        let t0 = now()
        let e = inRange(r.offset, Int64(r.count)) ? complete(backend.read(offset: r.offset, into: buffer), "readv") : EIO
        let outcome = readOutcome(UnsafeRawBufferPointer(buffer), r, errno: e, seconds: now() - t0, flags: f)
        out(outcome.text)
        return outcome.ok
    }

    /// What readv and aio_read take: `-P pattern`, the offset, the lengths (their sum is read).
    struct VectoredRead { let offset: Int64; let count: Int; let pattern: UInt8? }

    func vectoredRead(_ f: [Character: String], _ ops: [String]) -> VectoredRead? {
        var patternByte: UInt8?
        if let p = f["P"] { guard let b = pattern(p) else { return nil }; patternByte = b }
        guard let offset = number(ops[0]) else { return nil }
        guard let lengths = vectorLengths(ops.dropFirst()) else { return nil }
        return VectoredRead(offset: offset, count: lengths.reduce(0, +), pattern: patternByte)
    }

    /// readv_f's and aio_read_done's output: the error, else the pattern check, `-v`'s dump and
    /// the report (`-q`: only the check); `ok` is false on an error or a pattern mismatch.
    func readOutcome(_ buffer: UnsafeRawBufferPointer, _ r: VectoredRead, errno e: Int32, seconds: Double,
                     flags f: [Character: String]) -> (text: String, ok: Bool) {
        if e != 0 { return ("readv failed: \(strerror(e))\n", false) }
        var text = "", ok = true
        if let p = r.pattern, buffer.contains(where: { $0 != p }) {
            text += "Pattern verification failed at offset \(r.offset), \(r.count) bytes\n"
            ok = false
        }
        if f["q"] != nil { return (text, ok) }
        if f["v"] != nil { text += QemuIOFormat.dump(buffer, offset: r.offset) }
        text += QemuIOFormat.report("read", seconds: seconds, offset: r.offset, count: Int64(r.count), total: Int64(r.count),
                                    ops: 1, machine: f["C"] != nil)
        return (text, ok)
    }

    /// write_f (qemu-io-cmds.c 7.2), its checks in its order: -b writes the VM state (none on a
    /// raw image: ENOTSUP, as bdrv_save_vmstate), -z wins over -c, -c (compressed) fails with
    /// ENOTSUP after the range check (the raw driver has no bdrv_co_pwritev_compressed, so
    /// bdrv_co_pwritev_part refuses it before any blkdebug event fires), -n (BDRV_REQ_NO_FALLBACK)
    /// lifts the length limit and makes a write-zeroes that the disk cannot do itself fail
    /// with ENOTSUP instead of writing a buffer of zeroes, -s fills the buffer from a file
    /// (qemu_io_alloc_from_file: its bytes repeated).
    func write(_ cmd: Command, _ args: [String]) -> Bool {
        guard let (f, ops) = getopt(cmd, args, spec: "bcCfnpP:qs:uz") else { return usage(cmd) }
        guard ops.count == 2 else { return usage(cmd) }
        let zero = f["z"] != nil, fua = f["f"] != nil, vmstate = f["b"] != nil, compressed = f["c"] != nil
        let noFallback = f["n"] != nil
        if vmstate && zero { out("-b and -z cannot be specified at the same time\n"); return false }
        if fua && (vmstate || compressed) { out("-f and -b or -c cannot be specified at the same time\n"); return false }
        if noFallback && !zero { out("-n requires -z to be specified\n"); return false }
        if f["u"] != nil && !zero { out("-u requires -z to be specified\n"); return false }
        if [zero, f["P"] != nil, f["s"] != nil].filter({ $0 }).count > 1 {
            out("Only one of -z, -P, and -s can be specified at the same time\n")
            return false
        }
        var fill: UInt8 = 0xcd
        if let p = f["P"] { guard let b = pattern(p) else { return false }; fill = b }
        guard let offset = number(ops[0]) else { return false }
        guard let count = number(ops[1]) else { return false }
        if count > Self.maxRequestBytes && !noFallback {
            out("length cannot exceed \(Self.maxRequestBytes) without -n, given \(ops[1])\n")
            return false
        }
        if vmstate || compressed {
            if offset % 512 != 0 { out("\(offset) is not a sector-aligned value for 'offset'\n"); return false }
            if count % 512 != 0 { out("\(count) is not a sector-aligned value for 'count'\n"); return false }
        }
        var buffer: UnsafeMutableRawBufferPointer?
        defer { buffer?.deallocate() }
        if !zero {
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(count), alignment: 4096)
            buffer = b
            if let source = f["s"] {
                guard fillBuffer(b, fromFile: source) else { return false }
            } else {
                b.initializeMemory(as: UInt8.self, repeating: fill)
            }
        }
        let t0 = now()
        let e: Int32
        if vmstate {
            e = ENOTSUP
        } else if zero {
            e = inRange(offset, count)
                ? complete(backend.writeZeroes(offset: offset, length: count, mayUnmap: f["u"] != nil, fua: fua,
                                               noFallback: noFallback), "write")
                : EIO
        } else if compressed {
            e = inRange(offset, count) ? ENOTSUP : EIO
        } else {
            e = inRange(offset, count) ? complete(backend.write(offset: offset, from: UnsafeRawBufferPointer(buffer!), fua: fua), "write") : EIO
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

    /// qemu_io_alloc_from_file: the file's first bytes (up to the buffer's size), repeated to
    /// fill it; perror(file) when it cannot be opened or read, and "file is empty".
    private func fillBuffer(_ buffer: UnsafeMutableRawBufferPointer, fromFile path: String) -> Bool {
        guard let file = fopen(path, "r") else {
            err("\(path): \(strerror(errno))\n")
            return false
        }
        defer { fclose(file) }
        let n = fread(buffer.baseAddress, 1, buffer.count, file)
        if ferror(file) != 0 {
            err("\(path): \(strerror(errno))\n")
            return false
        }
        if n == 0 {
            err("\(path): file is empty\n")
            return false
        }
        var at = n
        while at < buffer.count {
            let chunk = min(n, buffer.count - at)
            (buffer.baseAddress! + at).copyMemory(from: buffer.baseAddress!, byteCount: chunk)
            at += chunk
        }
        return true
    }

    func writev(_ cmd: Command, _ args: [String]) -> Bool {
        guard let (f, ops) = getopt(cmd, args, spec: "CfqP:") else { return usage(cmd) }
        guard ops.count >= 2 else { return usage(cmd) }
        var fill: UInt8 = 0xcd
        if let p = f["P"] { guard let b = pattern(p) else { return false }; fill = b }
        guard let offset = number(ops[0]) else { return false }
        guard let lengths = vectorLengths(ops.dropFirst()) else { return false }
        let count = lengths.reduce(0, +)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 4096)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: fill)
        let t0 = now()
        let e = inRange(offset, Int64(count))
            ? complete(backend.write(offset: offset, from: UnsafeRawBufferPointer(buffer), fua: f["f"] != nil), "writev") : EIO
        let t1 = now()
        if e != 0 {
            out("writev failed: \(strerror(e))\n")
            return false
        }
        if f["q"] != nil { return true }
        out(QemuIOFormat.report("wrote", seconds: t1 - t0, offset: offset, count: Int64(count), total: Int64(count), ops: 1, machine: f["C"] != nil))
        return true
    }

    func discard(_ cmd: Command, _ args: [String]) -> Bool {
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

    func flush() -> Bool {
        let e = complete(backend.flush(), "flush")
        if e != 0 {
            // qemu-io prints nothing when a flush fails (only its exit status says so); say it on stderr.
            err("flush failed: \(strerror(e))\n")
            return false
        }
        return true
    }

    func length() -> Bool {
        out(QemuIOFormat.size(Double(diskSize)) + "\n")
        return true
    }

    /// map_f over the raw format: a raw node has no backing file, so QEMU's bdrv_is_allocated
    /// calls every byte allocated (holes in the file below are data of the raw disk); the
    /// whole disk is one run.
    func map() -> Bool {
        let size = diskSize
        guard size > 0 else { return true }
        out("\(QemuIOFormat.size(Double(size))) (0x\(String(size, radix: 16))) bytes     allocated at offset 0 bytes (0x0)\n")
        return true
    }

    /// alloc_f: as map, everything inside the disk is allocated; the count stops at its end.
    func alloc(_ args: [String]) -> Bool {
        guard let offset = number(args[0]) else { return false }
        var count: Int64 = 512
        if args.count == 2 {
            guard let c = number(args[1]) else { return false }
            count = c
        }
        let size = diskSize
        let inside = offset >= size ? 0 : min(count, size - offset)
        out("\(inside)/\(inside) bytes allocated at offset \(QemuIOFormat.size(Double(offset)))\n")
        return true
    }

    func truncate(_ cmd: Command, _ args: [String]) -> Bool {
        guard let (f, ops) = getopt(cmd, args, spec: "m:") else { return usage(cmd) }
        // qemu-io 7.2 takes the first operand (up to three are allowed) and reads it without
        // checking that there is one (and crashes).
        guard !ops.isEmpty else { return usage(cmd) }
        var mode = Preallocation.off
        if let m = f["m"] {
            guard let parsed = Preallocation(rawValue: m) else {
                report("Invalid preallocation mode '\(m)'")
                return false
            }
            mode = parsed
        }
        guard let offset = number(ops[0]) else { return false }
        if let problem = backend.resize(to: offset, preallocation: mode) {
            report(problem)
            return false
        }
        return true
    }
}
