/// A filesystem saying that what it read is damaged: a checksum that does not match, a bitmap,
/// inode, directory or tree block whose fields cannot be right, or a btrfs data checksum
/// mismatch. Unlike an I/O error, the read itself succeeded: the bytes were wrong, which the
/// host's block layer cannot see (it completed the request). The exact formats each matcher
/// reads are quoted in its source (ExtFilesystemMatcher, XFSMatcher, BtrfsMatcher).
public struct FilesystemCorruptionEvent: Equatable, Sendable {
    public var structure: CorruptionStructure
    /// The message says a checksum did not match (`checksum invalid`, `bad block bitmap
    /// checksum`, `Directory block failed checksum`, XFS `Metadata CRC error`, btrfs `csum failed`).
    public var checksum: Bool
    /// The kernel function that found it: ext4's `%s` (`ext4_lookup`, `ext4_validate_block_bitmap`),
    /// XFS's verifier (`xfs_agf_read_verify`, from `%pS` without the offset); nil when not printed.
    public var function: String?
    /// ext4's `:%d` after the function: the source line in that kernel's fs/ext4 (identifies the
    /// exact check together with the kernel version).
    public var sourceLine: Int?
    public var inode: UInt64?
    /// ext4: a filesystem block number; XFS: a daddr (512-byte units on the device); btrfs: a
    /// logical byte address in the filesystem's address space. `blockUnit` says which.
    public var block: UInt64?
    public var blockUnit: CorruptionBlockUnit?
    /// ext4 block group (`bg %u`, `group %u`, `block_group = %u`).
    public var group: UInt64?
    /// btrfs: the file offset (`off %llu`) of a data checksum failure and the subvolume (`root %llu`).
    public var fileOffset: UInt64?
    public var root: UInt64?
    /// btrfs: which copy was read (`mirror %d`); 0 or 1 is the first.
    public var mirror: Int?
    /// ext4's `comm %s`: the process that ran into it.
    public var process: String?
    /// The same line also stopped the filesystem (XFS `... Shutting down filesystem.`).
    public var shutsDown: Bool

    public init(structure: CorruptionStructure, checksum: Bool = false, function: String? = nil, sourceLine: Int? = nil,
                inode: UInt64? = nil, block: UInt64? = nil, blockUnit: CorruptionBlockUnit? = nil, group: UInt64? = nil,
                fileOffset: UInt64? = nil, root: UInt64? = nil, mirror: Int? = nil, process: String? = nil,
                shutsDown: Bool = false) {
        self.structure = structure; self.checksum = checksum; self.function = function; self.sourceLine = sourceLine
        self.inode = inode; self.block = block; self.blockUnit = blockUnit; self.group = group
        self.fileOffset = fileOffset; self.root = root; self.mirror = mirror; self.process = process
        self.shutsDown = shutsDown
    }
}

/// What is damaged.
public enum CorruptionStructure: String, CaseIterable, Sendable, Codable {
    /// An inode (ext4 `iget: checksum invalid`, `iget: bogus i_mode`, `deleted inode referenced`,
    /// `bad inode number`; XFS `xfs_dinode_verify`).
    case inode
    /// ext4 `bg %u: bad block bitmap checksum`, `bg %u: block %llu: invalid block bitmap`,
    /// `freeing already freed block`.
    case blockBitmap = "block-bitmap"
    /// ext4 `Corrupt inode bitmap`, `bad inode bitmap checksum`.
    case inodeBitmap = "inode-bitmap"
    /// ext4 `bad entry in directory`, `Directory block failed checksum`, htree (`dx_probe`) errors.
    case directory
    /// ext4 extent tree (`bad header/extent`, `pblk %llu bad header/extent`).
    case extentTree = "extent-tree"
    /// ext4 group descriptors (`ext4_check_descriptors: Checksum for group %u failed`).
    case groupDescriptor = "group-descriptor"
    /// The superblock (`invalid superblock checksum`).
    case superblock
    /// Free-space accounting (ext4 `free clusters count`, mballoc `freeing already freed block`).
    case freeSpace = "free-space"
    /// Other on-disk metadata found bad by a verifier (XFS `Metadata corruption detected at
    /// %pS, %s block 0x%llx`, `Metadata CRC error detected at ...`; btrfs tree block checks).
    case metadata
    /// btrfs: a tree block older than its parent says (`parent transid verify failed`): a
    /// lost or misdirected write, or a device that returned stale data.
    case transid
    /// btrfs: file data whose checksum does not match (`csum failed root ... ino ... off ...`).
    case data
    /// XFS `Corruption of in-memory data`: the kernel's own structures, not the disk.
    case inMemory = "in-memory"
    /// A corruption message this table does not classify (`Corruption detected. Unmount and
    /// run xfs_repair`, `Corruption of on-disk metadata`).
    case other
}

public enum CorruptionBlockUnit: String, CaseIterable, Sendable, Codable {
    /// A filesystem block (ext4; its size is the filesystem's block size).
    case filesystemBlock = "filesystem-block"
    /// A 512-byte unit from the start of the device (XFS daddr).
    case sector512 = "sector-512"
    /// A byte address in the filesystem's logical address space (btrfs), not a device offset.
    case logicalByte = "logical-byte"
}

/// btrfs's per-device error counters, `bdev %s errs: wr %u, rd %u, flush %u, corrupt %u, gen %u`
/// (fs/btrfs/volumes.c btrfs_dev_stat_print_on_error): cumulative since they were last reset,
/// printed each time one of them grows.
public struct BtrfsDeviceStatsEvent: Equatable, Sendable {
    /// The device the counters belong to (`/dev/vdb`), which in a multi-device filesystem need
    /// not be the one in the line's prefix.
    public var bdev: String
    public var writeErrors: UInt64
    public var readErrors: UInt64
    public var flushErrors: UInt64
    /// Checksum failures (data or metadata) the filesystem found on what this device returned.
    public var corruptionErrors: UInt64
    /// Blocks with the wrong generation (transid) on this device.
    public var generationErrors: UInt64

    public init(bdev: String, writeErrors: UInt64, readErrors: UInt64, flushErrors: UInt64, corruptionErrors: UInt64,
                generationErrors: UInt64) {
        self.bdev = bdev; self.writeErrors = writeErrors; self.readErrors = readErrors
        self.flushErrors = flushErrors; self.corruptionErrors = corruptionErrors; self.generationErrors = generationErrors
    }
}

/// Corruption reports of one kind on one filesystem, folded together: which structure, found
/// by which function, how often, the inodes/blocks/groups named (the first few distinct ones),
/// and where in the log. Built by the analysis; bounded whatever the log's size.
public struct CorruptionFinding: Sendable, Equatable, Encodable {
    public static let valueLimit = 8

    public var structure: CorruptionStructure
    public var checksum: Bool
    public var function: String?
    public var count = 0
    /// Distinct values in order of first appearance, at most `valueLimit` each.
    public var inodes: [UInt64] = []
    public var blocks: [UInt64] = []
    public var blockUnit: CorruptionBlockUnit?
    public var groups: [UInt64] = []
    /// Reports whose inode, block or group was not added to the lists above (lists full).
    public var valuesNotListed = 0
    /// Processes that ran into it (`comm %s`), first few distinct.
    public var processes: [String] = []
    public var first: EvidenceLine
    public var last: GuestLogLocation

    public init(structure: CorruptionStructure, checksum: Bool, function: String?, first: EvidenceLine) {
        self.structure = structure; self.checksum = checksum; self.function = function
        self.first = first; self.last = first.location
    }

    enum CodingKeys: String, CodingKey {
        case structure, checksum, function, count, inodes, blocks, blockUnit, groups, valuesNotListed, processes
        case first, last
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(structure.rawValue, forKey: .structure)
        try c.encode(checksum, forKey: .checksum)
        try c.encode(function, forKey: .function)
        try c.encode(count, forKey: .count)
        try c.encode(inodes, forKey: .inodes)
        try c.encode(blocks, forKey: .blocks)
        try c.encode(blockUnit?.rawValue, forKey: .blockUnit)
        try c.encode(groups, forKey: .groups)
        try c.encode(valuesNotListed, forKey: .valuesNotListed)
        try c.encode(processes, forKey: .processes)
        try c.encode(first, forKey: .first)
        try c.encode(last, forKey: .last)
    }
}

/// The latest btrfs error counters of one device, as the JSON reports them.
public struct BtrfsDeviceStatsRecord: Sendable, Equatable, Encodable {
    public var stats: BtrfsDeviceStatsEvent
    public var at: GuestLogLocation

    public init(stats: BtrfsDeviceStatsEvent, at: GuestLogLocation) { self.stats = stats; self.at = at }

    enum CodingKeys: String, CodingKey {
        case bdev, writeErrors, readErrors, flushErrors, corruptionErrors, generationErrors, at
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(stats.bdev, forKey: .bdev)
        try c.encode(stats.writeErrors, forKey: .writeErrors)
        try c.encode(stats.readErrors, forKey: .readErrors)
        try c.encode(stats.flushErrors, forKey: .flushErrors)
        try c.encode(stats.corruptionErrors, forKey: .corruptionErrors)
        try c.encode(stats.generationErrors, forKey: .generationErrors)
        try c.encode(at, forKey: .at)
    }
}

extension BtrfsDeviceStatsEvent {
    public var hasErrors: Bool {
        writeErrors > 0 || readErrors > 0 || flushErrors > 0 || corruptionErrors > 0 || generationErrors > 0
    }
}
