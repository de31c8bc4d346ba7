/// btrfs messages (fs/btrfs/messages.c btrfs_printk, 6.1): `BTRFS %s (device %s%s): %pV` where
/// the first %s is the level word (`error`, `warning`, `info`, `critical`, ...) and the third
/// is empty or `: state %s` (btrfs_state_to_string: the fs_info state letters, e.g. `: state EA`).
/// Read here (6.1 wording):
///   `csum failed root %llu ino %llu off %llu csum 0x%*phN expected csum 0x%*phN mirror %d`
///        fs/btrfs/inode.c btrfs_print_data_csum_error (root printed %lld for relocation trees)
///   `bdev %s errs: wr %u, rd %u, flush %u, corrupt %u, gen %u`   volumes.c btrfs_dev_stat_print_on_error
///   `parent transid verify failed on logical %llu mirror %u wanted %llu found %llu`
///        disk-io.c (≤5.x: `parent transid verify failed on %llu wanted %llu found %llu`)
///   `checksum verify failed on logical %llu mirror %u wanted 0x%*phN found 0x%*phN level %d`
///        disk-io.c validate_extent_buffer (≤5.x: `checksum verify failed on %llu wanted %x found %x level %d`)
///   `bad tree block start, mirror %u want %llu have %llu`       disk-io.c validate_extent_buffer
enum BtrfsMatcher {
    public static func match(_ ctx: MatchContext) -> MatchOutcome {
        let line = ctx.line
        let s = ctx.start
        guard line.matches("BTRFS ", at: s) else { return .noMatch }
        // The level word, then ` (device `.
        let level = line.identifier(at: s + 6)
        guard !level.isEmpty, level.count <= 12, line.matches(" (device ", at: level.upperBound) else { return .noMatch }
        let d = level.upperBound + 9
        guard let close = line.find(byte: UInt8(ascii: ")"), in: d..<min(line.count, d + 64)) else { return .malformed }
        var end = close
        if let state = line.find(": state ", from: d), state < close { end = state }
        guard end > d, let (device, devEnd) = line.deviceName(at: d, stop: UInt8(ascii: ")")), devEnd >= end
        else { return .malformed }
        let name = devEnd == end ? device : line.string(d..<end)
        guard line.matches("): ", at: close) else { return .malformed }
        let m = close + 3
        if line.matches("csum failed root ", at: m) { return dataChecksum(ctx, name, m + 17) }
        if line.matches("bdev ", at: m) { return deviceStats(ctx, name, m + 5) }
        if line.matches("parent transid verify failed on ", at: m) {
            var i = m + 32
            if line.matches("logical ", at: i) { i += 8 }
            guard let (logical, e) = line.decimal(at: i) else { return .malformed }
            var c = FilesystemCorruptionEvent(structure: .transid, block: logical, blockUnit: .logicalByte)
            if line.matches(" mirror ", at: e), let (mirror, _) = line.decimal(at: e + 8), mirror <= 255 { c.mirror = Int(mirror) }
            return event(ctx, name, .corruption(c))
        }
        if line.matches("checksum verify failed on ", at: m) {
            var i = m + 26
            if line.matches("logical ", at: i) { i += 8 }
            guard let (logical, e) = line.decimal(at: i) else { return .malformed }
            var c = FilesystemCorruptionEvent(structure: .metadata, checksum: true, block: logical, blockUnit: .logicalByte)
            if line.matches(" mirror ", at: e), let (mirror, _) = line.decimal(at: e + 8), mirror <= 255 { c.mirror = Int(mirror) }
            return event(ctx, name, .corruption(c))
        }
        if line.matches("bad tree block start, ", at: m) {
            var c = FilesystemCorruptionEvent(structure: .metadata)
            if let want = line.find(" want ", from: m), let (b, _) = line.decimal(at: want + 6) {
                c.block = b; c.blockUnit = .logicalByte
            }
            return event(ctx, name, .corruption(c))
        }
        return .noMatch
    }

    static func dataChecksum(_ ctx: MatchContext, _ device: String, _ at: Int) -> MatchOutcome {
        let line = ctx.line
        // The root is %lld for relocation and other internal trees (negative object ids).
        guard let (root, re) = line.signedDecimal(at: at), line.matches(" ino ", at: re) else { return .malformed }
        guard let (ino, ie) = line.signedDecimal(at: re + 5), line.matches(" off ", at: ie),
              let (off, oe) = line.decimal(at: ie + 5) else { return .malformed }
        var c = FilesystemCorruptionEvent(structure: .data, checksum: true, fileOffset: off)
        if root >= 0 { c.root = UInt64(root) }
        if ino >= 0 { c.inode = UInt64(ino) }
        if let mirror = line.find(" mirror ", from: oe), let (mv, _) = line.decimal(at: mirror + 8), mv <= 255 {
            c.mirror = Int(mv)
        }
        return event(ctx, device, .corruption(c))
    }

    static func deviceStats(_ ctx: MatchContext, _ device: String, _ at: Int) -> MatchOutcome {
        let line = ctx.line
        let bdev = line.token(at: at)
        guard !bdev.isEmpty, bdev.count <= 256, line.matches(" errs: wr ", at: bdev.upperBound),
              let (wr, e1) = line.decimal(at: bdev.upperBound + 10), line.matches(", rd ", at: e1),
              let (rd, e2) = line.decimal(at: e1 + 5), line.matches(", flush ", at: e2),
              let (fl, e3) = line.decimal(at: e2 + 8), line.matches(", corrupt ", at: e3),
              let (co, e4) = line.decimal(at: e3 + 10), line.matches(", gen ", at: e4),
              let (gen, _) = line.decimal(at: e4 + 6),
              // The counters are u32 in the kernel (btrfs_dev_stat_read): larger is not this line.
              [wr, rd, fl, co, gen].allSatisfy({ $0 <= UInt64(UInt32.max) })
        else { return .malformed }
        let stats = BtrfsDeviceStatsEvent(bdev: line.string(bdev), writeErrors: wr, readErrors: rd, flushErrors: fl,
                                          corruptionErrors: co, generationErrors: gen)
        return event(ctx, device, .btrfsDeviceStats(stats))
    }

    static func event(_ ctx: MatchContext, _ device: String, _ k: FilesystemEventKind) -> MatchOutcome {
        .event(.filesystem(FilesystemEvent(filesystem: .btrfs, device: device, kind: k, message: ctx.message,
                                           location: ctx.location)))
    }
}
