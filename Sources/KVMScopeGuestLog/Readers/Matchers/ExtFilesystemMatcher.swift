/// ext2/ext3/ext4 and f2fs messages (fs/ext4/super.c, fs/ext4/page-io.c, fs/ext3/super.c,
/// fs/f2fs/super.c). Shapes:
///
///   `EXT4-fs error (device %s): %s:%d: comm %s: %pV`           __ext4_error
///   `EXT4-fs error (device %s): %s:%d: inode #%lu: comm %s: %pV` __ext4_error_inode
///   `EXT4-fs error (device %s) in %s:%d: %s`                    __ext4_std_error (`Journal has aborted`, `IO failure`)
///   `EXT4-fs error (device %s): %s: %pV`                        (≤3.x, no line number)
///   `EXT4-fs warning (device %s): %s:%d: %pV`                   __ext4_warning, e.g. ext4_end_bio:
///        `I/O error %d writing to inode %lu starting block %llu)` (4.13+; %d is a blk_status_t)
///        `I/O error %d writing to inode %lu (offset %llu size %ld starting block %llu)` (≤4.12; -errno)
///   `EXT4-fs (%s): %pV`                                         ext4_msg:
///        `Remounting filesystem read-only`, `I/O error while writing superblock`,
///        `previous I/O error to superblock detected`, `mounted filesystem ...`,
///        `shut down requested (%d)`, `This should not happen!! Data will be lost`,
///        `failed to convert unwritten extents to written extents -- potential data loss!  ...`
///   `EXT3-fs (%s): error: remounting filesystem read-only`      ext3_handle_error
///   `F2FS-fs (%s): Remounting filesystem read-only`             f2fs_handle_critical_error
///
/// ext4 errors and mount-time messages that report damaged metadata become corruption events
/// (Ext4CorruptionMatcher quotes those messages).
///
/// Detected aborted journal / Journal has aborted in an error line mark the journal aborted.
enum ExtFilesystemMatcher {
    public static func match(_ ctx: MatchContext) -> MatchOutcome {
        let line = ctx.line
        let s = ctx.start
        let kind: FilesystemKind
        if line.matches("EXT4-fs", at: s) { kind = .ext4 }
        else if line.matches("EXT3-fs", at: s) { kind = .ext3 }
        else if line.matches("EXT2-fs", at: s) { kind = .ext2 }
        else if line.matches("F2FS-fs", at: s) { kind = .f2fs }
        else { return .noMatch }
        var i = s + 7
        if line.matches(" error (device ", at: i) {
            i += 15
            guard let (device, devEnd) = line.deviceName(at: i, stop: UInt8(ascii: ")")),
                  line.matches(")", at: devEnd) else { return .malformed }
            var function: String? = nil
            var f = devEnd + 1
            var inForm = false
            if line.matches(": ", at: f) { f += 2 } else if line.matches(" in ", at: f) { f += 4; inForm = true } else { f = -1 }
            if f >= 0 {
                let id = line.identifier(at: f)
                if !id.isEmpty {
                    function = line.string(id)
                    // __ext4_std_error (` in %s:%d: %s`) reports an errno, never what it read.
                    if kind == .ext4, !inForm,
                       let c = Ext4CorruptionMatcher.corruption(line, function: function, afterFunction: id.upperBound) {
                        return event(ctx, kind, device, .corruption(c))
                    }
                }
            }
            let aborted = line.find("aborted journal", from: devEnd) != nil || line.find("Journal has aborted", from: devEnd) != nil
            return event(ctx, kind, device, .error(function: function, abortedJournal: aborted))
        }
        if line.matches(" warning (device ", at: i) {
            i += 17
            guard let (device, devEnd) = line.deviceName(at: i, stop: UInt8(ascii: ")")),
                  line.matches(")", at: devEnd) else { return .malformed }
            guard let hit = line.find("I/O error ", from: devEnd) else { return .noMatch }
            // "I/O error %d writing to inode %lu ..." (older kernels also "I/O error writing to inode").
            var j = hit + 10
            var status: Int? = nil
            if let (v, e) = line.signedDecimal(at: j), line.matches(" ", at: e) { status = Int(v); j = e + 1 }
            guard line.matches("writing to inode ", at: j), let (inode, ie) = line.decimal(at: j + 17) else { return .noMatch }
            var start: UInt64? = nil
            if let sb = line.find("starting block ", from: ie), let (b, _) = line.decimal(at: sb + 15) { start = b }
            return event(ctx, kind, device, .inodeWriteError(inode: inode, startingBlock: start, status: status))
        }
        if line.matches(" (", at: i) {
            guard let (device, devEnd) = line.deviceName(at: i + 2, stop: UInt8(ascii: ")")),
                  line.matches("): ", at: devEnd) else { return .malformed }
            let m = devEnd + 3
            if line.find("emounting filesystem read-only", from: m) != nil {
                return event(ctx, kind, device, .remountedReadOnly)
            }
            if line.matches("I/O error while writing superblock", at: m)
                || line.matches("previous I/O error to superblock detected", at: m) {
                return event(ctx, kind, device, .superblockWriteError)
            }
            if line.matches("mounted filesystem", at: m) { return event(ctx, kind, device, .mounted) }
            if line.matches("shut down requested", at: m) { return event(ctx, kind, device, .shutdown) }
            if line.find("Data will be lost", from: m) != nil || line.find("potential data loss", from: m) != nil {
                return event(ctx, kind, device, .dataLoss)
            }
            if line.find("aborted journal", from: m) != nil {
                return event(ctx, kind, device, .journalAborted)
            }
            if kind == .ext4, let c = Ext4CorruptionMatcher.mountTime(line, message: m) {
                return event(ctx, kind, device, .corruption(c))
            }
            return .noMatch
        }
        return .noMatch
    }

    static func event(_ ctx: MatchContext, _ kind: FilesystemKind, _ device: String, _ k: FilesystemEventKind) -> MatchOutcome {
        .event(.filesystem(FilesystemEvent(filesystem: kind, device: device, kind: k, message: ctx.message,
                                           location: ctx.location)))
    }
}
