/// XFS messages (fs/xfs/xfs_buf.c, xfs_fsops.c, xfs_log.c), all `XFS (%s): %pV`:
///
///   `metadata I/O error: block 0x%llx ("%s") error %d buf count %zd`     ≤3.x
///   `metadata I/O error: block 0x%llx ("%s") error %d numblks %d`        3.x–4.15
///   `metadata I/O error in "%pS" at daddr 0x%llx len %d error %d`        4.16+
///   `log I/O error %d`
///   `%s (0x%x) detected at %pS (%s:%d).  Shutting down filesystem.`      5.x+ xfs_do_force_shutdown
///   `Log I/O Error Detected.  Shutting down filesystem`, `I/O Error Detected. Shutting down filesystem` (older)
///   `Filesystem has been shut down due to log error (0x%x).`            xlog_force_shutdown
///   `xfs_do_force_shutdown(0x%x) called from line %d of file %s.  Return address = %pS`
///   `Mounting V5 Filesystem`, `Mounting V4 Filesystem`, `Mounting Filesystem`
/// Corruption (fs/xfs/xfs_error.c, xfs_fsops.c; 6.1):
///   `Metadata corruption detected at %pS, %s block 0x%llx`               xfs_buf_corruption_error
///   `Metadata %s detected at %pS, %s block 0x%llx %s`                    xfs_buf_verifier_error,
///        %s = `CRC error` (-EFSBADCRC) or `corruption`; then the buffer ops name (`xfs_agf`)
///   `Metadata %s detected at %pS, inode 0x%llx %s`                       xfs_inode_verifier_error
///   `Corruption detected. Unmount and run xfs_repair`                    xfs_corruption_error
///   `%s (0x%x) detected at %pS (%s:%d).  Shutting down filesystem.`      xfs_do_force_shutdown with
///        %s = `Corruption of in-memory data` or `Corruption of on-disk metadata` (5.19+)
///   `Unmount and run xfs_repair`, `First %d bytes of corrupted metadata buffer:`,
///   `Please unmount the filesystem and rectify the problem(s)`: follow-ups, not counted.
/// %pS is `symbol+0xoff/0xlen [module]`; the symbol is the verifier that failed.
/// Any other XFS line that mentions an error or corruption is counted as a filesystem error.
enum XFSMatcher {
    public static func match(_ ctx: MatchContext) -> MatchOutcome {
        let line = ctx.line
        guard line.matches("XFS (", at: ctx.start) else { return .noMatch }
        guard let (device, devEnd) = line.deviceName(at: ctx.start + 5, stop: UInt8(ascii: ")")),
              line.matches("): ", at: devEnd) else { return .malformed }
        let m = devEnd + 3
        if line.matches("metadata I/O error", at: m) {
            var i = m + 18
            var daddr: UInt64? = nil, length: UInt64? = nil, errno: Int? = nil, function: String? = nil
            if line.matches(": block 0x", at: i), let (b, e) = line.hex(at: i + 8) {
                daddr = b
                i = e
                if line.matches(" (\"", at: i), let q = line.find(byte: UInt8(ascii: "\""), in: (i + 3)..<line.count) {
                    function = line.string((i + 3)..<q)
                    i = q + 2
                }
                if line.matches(" error ", at: i), let (v, e2) = line.signedDecimal(at: i + 7) {
                    errno = Int(v)
                    i = e2
                }
                if line.matches(" numblks ", at: i), let (l, _) = line.decimal(at: i + 9) { length = l }
            } else if line.matches(" in \"", at: i), let q = line.find(byte: UInt8(ascii: "\""), in: (i + 5)..<line.count) {
                function = line.string((i + 5)..<q)
                i = q + 1
                if line.matches(" at daddr 0x", at: i), let (b, e) = line.hex(at: i + 10) {
                    daddr = b
                    i = e
                }
                if line.matches(" len ", at: i), let (l, e) = line.decimal(at: i + 5) { length = l; i = e }
                if line.matches(" error ", at: i), let (v, _) = line.signedDecimal(at: i + 7) { errno = Int(v) }
            }
            return event(ctx, device, .metadataIOError(daddr: daddr, length: length, errno: errno, function: function))
        }
        if line.matches("log I/O error", at: m) {
            var errno: Int? = nil
            if let (v, _) = line.signedDecimal(at: m + 14) { errno = Int(v) }
            return event(ctx, device, .logIOError(errno: errno))
        }
        if let c = corruption(line, m) { return event(ctx, device, .corruption(c)) }
        if line.matches("Unmount and run xfs_repair", at: m) || line.matches("First ", at: m)
            || line.matches("Please unmount the filesystem", at: m) {
            return .noMatch
        }
        if line.find("Shutting down filesystem", from: m) != nil || line.matches("Filesystem has been shut down", at: m)
            || line.matches("xfs_do_force_shutdown", at: m) {
            return event(ctx, device, .shutdown)
        }
        if line.matches("Mounting V", at: m) || line.matches("Mounting Filesystem", at: m) {
            return event(ctx, device, .mounted)
        }
        if line.find("rror", from: m) != nil || line.find("orruption", from: m) != nil {
            return event(ctx, device, .error(function: nil, abortedJournal: false))
        }
        return .noMatch
    }

    static func corruption(_ line: LineBytes, _ m: Int) -> FilesystemCorruptionEvent? {
        if line.matches("Metadata ", at: m) {
            var i = m + 9
            let crc: Bool
            if line.matches("CRC error detected at ", at: i) { crc = true; i += 22 }
            else if line.matches("corruption detected at ", at: i) { crc = false; i += 23 }
            else { return nil }
            var e = FilesystemCorruptionEvent(structure: .metadata, checksum: crc, function: symbol(line, i))
            guard let comma = line.find(", ", from: i) else { return e }
            i = comma + 2
            if line.matches("inode 0x", at: i), let (ino, _) = line.hex(at: i + 6) {
                e.structure = .inode
                e.inode = ino
            } else if let b = line.find(" block 0x", from: i), b - i <= 32, let (daddr, _) = line.hex(at: b + 7) {
                e.block = daddr
                e.blockUnit = .sector512
            }
            return e
        }
        if line.matches("Corruption detected. Unmount and run xfs_repair", at: m) {
            return FilesystemCorruptionEvent(structure: .other)
        }
        let structure: CorruptionStructure
        var i = m
        if line.matches("Corruption of in-memory data (", at: m) { structure = .inMemory; i += 30 }
        else if line.matches("Corruption of on-disk metadata (", at: m) { structure = .metadata; i += 32 }
        else { return nil }
        var function: String? = nil
        if let at = line.find(" detected at ", from: i) { function = symbol(line, at + 13) }
        return FilesystemCorruptionEvent(structure: structure, function: function,
                                         shutsDown: line.find("Shutting down filesystem", from: i) != nil)
    }

    /// The symbol of a `%pS` (`xfs_agf_read_verify+0x70/0x120 [xfs]`), nil for a bare address.
    static func symbol(_ line: LineBytes, _ at: Int) -> String? {
        let id = line.identifier(at: at)
        guard !id.isEmpty, id.count <= 64, line.matches("+0x", at: id.upperBound) else { return nil }
        return line.string(id)
    }

    static func event(_ ctx: MatchContext, _ device: String, _ k: FilesystemEventKind) -> MatchOutcome {
        .event(.filesystem(FilesystemEvent(filesystem: .xfs, device: device, kind: k, message: ctx.message,
                                           location: ctx.location)))
    }
}
