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

    static func event(_ ctx: MatchContext, _ device: String, _ k: FilesystemEventKind) -> MatchOutcome {
        .event(.filesystem(FilesystemEvent(filesystem: .xfs, device: device, kind: k, message: ctx.message,
                                           location: ctx.location)))
    }
}
