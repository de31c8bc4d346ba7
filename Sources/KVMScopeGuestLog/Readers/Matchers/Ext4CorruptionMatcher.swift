/// Tells the ext4 errors that report damaged metadata from the ones that report failed I/O or
/// journal state, and reads the numbers they carry. Quoted from 6.1 fs/ext4 (the lab's guest;
/// the words have been stable since ~4.4, where metadata checksums became common):
///
/// The prefix, fs/ext4/super.c:
///   __ext4_error              `EXT4-fs error (device %s): %s:%d: comm %s: %pV`
///   __ext4_error_inode        `EXT4-fs error (device %s): %s:%d: inode #%lu: [block %llu: ]comm %s: %pV`
///   __ext4_error_file         `EXT4-fs error (device %s): %s:%d: inode #%lu: [block %llu: ]comm %s: path %s: %pV`
///   __ext4_grp_locked_error   `EXT4-fs error (device %s): %s:%d: group %u, [inode %lu: ][block %llu:]%pV`
/// The message (`%pV`), by where it comes from:
///   inode.c __ext4_iget       `iget: checksum invalid`, `iget: bogus i_mode (%o)`, `iget: bad extra_isize %u ...`,
///                             `iget: bad i_size value: %lld`, `iget: root inode unallocated`, ...
///   namei.c ext4_lookup       `deleted inode referenced: %u`, `bad inode number: %u`
///   namei.c __ext4_read_dirblock `Directory block failed checksum`, `Directory index failed checksum`,
///                             `Directory hole found for htree %s block`
///   dir.c __ext4_check_dir_entry `bad entry in directory: %s - offset=%u, inode=%u, rec_len=%d, ...`
///   namei.c dx_probe          `Unrecognised inode hash code %u`, `Directory htree depth %d too big`, ...
///   balloc.c ext4_validate_block_bitmap `bg %u: bad block bitmap checksum`, `bg %u: block %llu: invalid block bitmap`
///   balloc.c ext4_read_block_bitmap_nowait `Invalid block bitmap block %llu in block_group %u`
///   ialloc.c ext4_validate_inode_bitmap `Corrupt inode bitmap - block_group = %u, inode_bitmap = %llu`
///                             (the inode bitmap's checksum check)
///   ialloc.c ext4_read_inode_bitmap `Invalid inode bitmap blk %llu in block_group %u`
///   ialloc.c ext4_free_inode  `bit already cleared for inode %lu`
///   extents.c __ext4_ext_check `pblk %llu bad header/extent: %s - magic %x, entries %u, ...`
///   mballoc.c mb_free_blocks  `freeing already freed block (bit %u); block bitmap corrupt.`
///   mballoc.c ext4_mb_generate_buddy `block bitmap and bg descriptor inconsistent: %u vs %u free clusters`
///   mballoc.c ext4_free_blocks `Freeing blocks not in datazone - block = %llu, count = %lu`,
///                             `Freeing blocks in system zone - Block = %llu, count = %lu`
/// Not corruption (the read failed, the bytes were never seen): `Cannot read block bitmap`,
/// `Cannot read inode bitmap`, `unable to read itable block` (inode.c __ext4_get_inode_loc),
/// `Detected aborted journal`, __ext4_std_error's `IO failure`.
///
/// Mount time, `EXT4-fs (%s): %pV` (ext4_msg, super.c):
///   `VFS: Found ext4 filesystem with invalid superblock checksum.  Run e2fsck?`
///   `ext4_check_descriptors: Checksum for group %u failed (%u!=%u)`
///   `ext4_check_descriptors: Block bitmap for group %u not in group (block %llu)!`
///   (also `Inode bitmap for group`, `Inode table for group`), `group descriptors corrupted!`
enum Ext4CorruptionMatcher {
    /// The fields of an `EXT4-fs error` line after `(device %s)`: from `at`, the `%s:%d: ...`
    /// part. Returns nil when the message is not a corruption report.
    static func corruption(_ line: LineBytes, function: String?, afterFunction at: Int) -> FilesystemCorruptionEvent? {
        var i = at
        var event = FilesystemCorruptionEvent(structure: .other, function: function)
        var comm: Range<Int>? = nil
        if line.matches(":", at: i), let (n, e) = line.decimal(at: i + 1) {
            if n <= UInt64(Int32.max) { event.sourceLine = Int(n) }   // a source line past that is not one
            i = e
        }
        guard line.matches(": ", at: i) else { return nil }
        i += 2
        // The optional fields, in the order the kernel prints them.
        if line.matches("group ", at: i), let (g, e) = line.decimal(at: i + 6), line.matches(", ", at: e) {
            event.group = g
            i = e + 2
            if line.matches("inode ", at: i), let (n, e2) = line.decimal(at: i + 6), line.matches(": ", at: e2) {
                event.inode = n; i = e2 + 2
            }
            if line.matches("block ", at: i), let (b, e2) = line.decimal(at: i + 6), line.matches(":", at: e2) {
                event.block = b; event.blockUnit = .filesystemBlock; i = e2 + 1
            }
        } else {
            if line.matches("inode #", at: i), let (n, e) = line.decimal(at: i + 7), line.matches(": ", at: e) {
                event.inode = n; i = e + 2
            }
            if line.matches("block ", at: i), let (b, e) = line.decimal(at: i + 6), line.matches(": ", at: e) {
                event.block = b; event.blockUnit = .filesystemBlock; i = e + 2
            }
            if line.matches("comm ", at: i) {
                // A comm is at most 15 bytes (TASK_COMM_LEN) and may itself contain ':'.
                let limit = min(line.count, i + 5 + 17)
                var j = i + 5
                while j + 1 < limit, !(line[j] == 0x3A && line[j + 1] == 0x20) { j += 1 }
                guard j + 1 < limit else { return nil }
                comm = (i + 5)..<j
                i = j + 2
            }
            if line.matches("path ", at: i), let colon = line.find(": ", from: i + 5) { i = colon + 2 }
        }
        // Strings only for the lines that are corruption reports.
        guard var found = classify(line, message: i, event) else { return nil }
        if let comm { found.process = line.string(comm) }
        return found
    }

    /// The message words → what is damaged. nil: not a corruption report.
    static func classify(_ line: LineBytes, message m: Int, _ base: FilesystemCorruptionEvent) -> FilesystemCorruptionEvent? {
        var e = base
        func set(_ s: CorruptionStructure, checksum: Bool = false) -> FilesystemCorruptionEvent {
            e.structure = s; e.checksum = checksum; return e
        }
        if line.matches("iget: ", at: m) {
            return set(.inode, checksum: line.matches("checksum invalid", at: m + 6))
        }
        if line.matches("deleted inode referenced", at: m) { return set(.inode) }
        if line.matches("bad inode number", at: m) { return set(.directory) }
        if line.matches("bad entry in directory", at: m) { return set(.directory) }
        if line.matches("Directory block failed checksum", at: m) || line.matches("Directory index failed checksum", at: m) {
            return set(.directory, checksum: true)
        }
        if line.matches("Directory hole found for htree", at: m) { return set(.directory) }
        if line.matches("bg ", at: m), let (g, e2) = line.decimal(at: m + 3), line.matches(": ", at: e2) {
            e.group = g
            var k = e2 + 2
            if line.matches("block ", at: k), let (b, e3) = line.decimal(at: k + 6), line.matches(": ", at: e3) {
                e.block = b; e.blockUnit = .filesystemBlock; k = e3 + 2
            }
            if line.matches("bad block bitmap checksum", at: k) { return set(.blockBitmap, checksum: true) }
            if line.matches("bad inode bitmap checksum", at: k) { return set(.inodeBitmap, checksum: true) }
            if line.find("block bitmap", from: k) != nil { return set(.blockBitmap) }
            if line.find("inode bitmap", from: k) != nil { return set(.inodeBitmap) }
            return nil
        }
        if line.matches("Invalid block bitmap block ", at: m), let (b, e2) = line.decimal(at: m + 27),
           line.matches(" in block_group ", at: e2), let (g, _) = line.decimal(at: e2 + 16) {
            e.block = b; e.blockUnit = .filesystemBlock; e.group = g
            return set(.blockBitmap)
        }
        if line.matches("Corrupt inode bitmap - block_group = ", at: m), let (g, e2) = line.decimal(at: m + 37) {
            e.group = g
            if line.matches(", inode_bitmap = ", at: e2), let (b, _) = line.decimal(at: e2 + 17) {
                e.block = b; e.blockUnit = .filesystemBlock
            }
            return set(.inodeBitmap, checksum: true)
        }
        if line.matches("Invalid inode bitmap blk ", at: m), let (b, e2) = line.decimal(at: m + 25),
           line.matches(" in block_group ", at: e2), let (g, _) = line.decimal(at: e2 + 16) {
            e.block = b; e.blockUnit = .filesystemBlock; e.group = g
            return set(.inodeBitmap)
        }
        if line.matches("bit already cleared for inode", at: m) { return set(.inodeBitmap) }
        if line.matches("pblk ", at: m), let (b, e2) = line.decimal(at: m + 5), line.matches(" bad header/extent", at: e2) {
            e.block = b; e.blockUnit = .filesystemBlock
            return set(.extentTree)
        }
        if line.matches("freeing already freed block", at: m) || line.matches("block bitmap and bg descriptor inconsistent", at: m) {
            return set(.blockBitmap)
        }
        if line.matches("Freeing blocks not in datazone", at: m) || line.matches("Freeing blocks in system zone", at: m) {
            return set(.freeSpace)
        }
        if e.function == "dx_probe" { return set(.directory) }
        return nil
    }

    /// `EXT4-fs (%s): ...` mount-time messages from `m` (the message start).
    static func mountTime(_ line: LineBytes, message m: Int) -> FilesystemCorruptionEvent? {
        if line.find("invalid superblock checksum", from: m) != nil {
            return FilesystemCorruptionEvent(structure: .superblock, checksum: true)
        }
        guard line.matches("ext4_check_descriptors: ", at: m) else {
            if line.matches("group descriptors corrupted!", at: m) { return FilesystemCorruptionEvent(structure: .groupDescriptor) }
            return nil
        }
        var e = FilesystemCorruptionEvent(structure: .groupDescriptor, function: "ext4_check_descriptors")
        let k = m + 24
        if line.matches("Checksum for group ", at: k), let (g, _) = line.decimal(at: k + 19) {
            e.group = g; e.checksum = true
            return e
        }
        // `Block bitmap for group %u not in group (block %llu)!`, likewise `Inode bitmap`, `Inode table`.
        if let hit = line.find(" for group ", from: k), let (g, e2) = line.decimal(at: hit + 11) {
            e.group = g
            if let b = line.find("(block ", from: e2), let (blk, _) = line.decimal(at: b + 7) {
                e.block = blk; e.blockUnit = .filesystemBlock
            }
            return e
        }
        return nil
    }
}
