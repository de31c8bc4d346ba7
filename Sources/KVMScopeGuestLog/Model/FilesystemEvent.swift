/// A filesystem or journal reporting trouble on `device`: ext2/3/4 and f2fs (`EXT4-fs ...`),
/// the jbd/jbd2 journal (`JBD2: ...`, `Aborting journal on device %s.`), XFS (`XFS (%s): ...`).
/// The exact formats each matcher reads are quoted in its source.
public struct FilesystemEvent: Equatable, Sendable {
    public var filesystem: FilesystemKind
    /// The block device the filesystem sits on; a jbd2 journal name such as `vda-8` (device and
    /// journal inode) or `sdb1:8` (older kernels) is reduced to the device.
    public var device: String
    public var kind: FilesystemEventKind
    /// The message text after the timestamp, verbatim, as evidence for reports.
    public var message: String
    public var location: GuestLogLocation

    public init(filesystem: FilesystemKind, device: String, kind: FilesystemEventKind, message: String,
                location: GuestLogLocation) {
        self.filesystem = filesystem; self.device = device; self.kind = kind
        self.message = message; self.location = location
    }
}

public enum FilesystemKind: String, CaseIterable, Sendable, Codable {
    case ext2, ext3, ext4, f2fs, xfs, btrfs
    /// Journal layers, reported under the filesystem on the same device when there is one.
    case jbd, jbd2

    public var isJournal: Bool { self == .jbd || self == .jbd2 }
}

public enum FilesystemEventKind: Equatable, Sendable {
    /// `EXT4-fs (%s): mounted filesystem ...`, `XFS (%s): Mounting V5 Filesystem`: no problem,
    /// but it says which filesystem a device holds.
    case mounted
    /// `EXT4-fs error (device %s): %s:%d: ...`, `EXT4-fs error (device %s) in %s:%d: %s`.
    /// `abortedJournal`: the message says `Detected aborted journal` or `Journal has aborted`.
    case error(function: String?, abortedJournal: Bool)
    /// The journal was aborted: `Aborting journal on device %s.`, `Detected aborted journal`,
    /// `Journal has aborted`.
    case journalAborted
    /// `EXT4-fs (%s): Remounting filesystem read-only` (ext3: `error: remounting filesystem read-only`).
    case remountedReadOnly
    /// `EXT4-fs (%s): I/O error while writing superblock`, `previous I/O error to superblock detected`.
    case superblockWriteError
    /// `JBD2: I/O error when updating journal superblock for %s.` (6.2+),
    /// `JBD2: Error %d detected when updating journal superblock for %s.` (3.x–6.1),
    /// `JBD2: I/O error detected when updating journal superblock for %s.` (≤2.6.3x).
    case journalSuperblockWriteError(code: Int?)
    /// `JBD2: Detected IO errors while flushing file data on %s`: ordered-mode file data
    /// failed to reach the disk before a commit.
    case journalDataFlushError
    /// ext4_end_bio: `I/O error %d writing to inode %lu starting block %llu)` — writeback of
    /// file data failed. `status` is a blk_status_t since 4.13 (10 = BLK_STS_IOERR), a negative
    /// errno before.
    case inodeWriteError(inode: UInt64, startingBlock: UInt64?, status: Int?)
    /// `This should not happen!! Data will be lost`, `... -- potential data loss!`
    case dataLoss
    /// XFS metadata buffer I/O failed. Three shapes (fs/xfs/xfs_buf.c):
    /// `metadata I/O error: block 0x%llx ("%s") error %d buf count %zd` (≤3.x),
    /// `metadata I/O error: block 0x%llx ("%s") error %d numblks %d` (3.x–4.15),
    /// `metadata I/O error in "%pS" at daddr 0x%llx len %d error %d` (4.16+).
    /// `daddr` is in 512-byte units on the filesystem's device; `errno` is positive.
    case metadataIOError(daddr: UInt64?, length: UInt64?, errno: Int?, function: String?)
    /// XFS `log I/O error %d`.
    case logIOError(errno: Int?)
    /// The filesystem stopped all writes: XFS `... Shutting down filesystem`,
    /// `Filesystem has been shut down due to log error (0x%x).`; ext4 `shut down requested`.
    case shutdown
    /// Damaged metadata or data found on read (FilesystemCorruption.swift).
    /// Boxed: it is large, and every filesystem event's kind is copied on its way to the analysis.
    indirect case corruption(FilesystemCorruptionEvent)
    /// btrfs `bdev %s errs: wr %u, rd %u, flush %u, corrupt %u, gen %u`.
    indirect case btrfsDeviceStats(BtrfsDeviceStatsEvent)
}

/// `sd H:C:T:L: [sdX] ...` lines from the SCSI disk driver (drivers/scsi/sd.c,
/// scsi_logging.c): the result and sense data behind a failed command.
public struct SCSIEvent: Equatable, Sendable {
    public var device: String
    /// `H:C:T:L` (host, channel, target, LUN).
    public var address: String
    public var kind: SCSIEventKind
    /// `tag#%d` after the disk name (scsi_logging.c sdev_format_header), when printed.
    public var tag: Int?
    /// For `.result`: the disposition word scsi_print_result prints before `Result:` (`FAILED`,
    /// `SUCCESS`, `UNKNOWN(0x2003)`) and the command's age (`cmd_age=%lus`, 4.x+).
    public var disposition: String?
    public var commandAgeSeconds: UInt64?
    /// For `.senseKey`: `[deferred]` rather than `[current]`.
    public var senseDeferred: Bool?
    public var location: GuestLogLocation

    public init(device: String, address: String, kind: SCSIEventKind, tag: Int? = nil, disposition: String? = nil,
                commandAgeSeconds: UInt64? = nil, senseDeferred: Bool? = nil, location: GuestLogLocation) {
        self.device = device; self.address = address; self.kind = kind; self.tag = tag
        self.disposition = disposition; self.commandAgeSeconds = commandAgeSeconds; self.senseDeferred = senseDeferred
        self.location = location
    }
}

public enum SCSIEventKind: Equatable, Sendable {
    /// `[tag#%d] FAILED Result: hostbyte=%s driverbyte=%s cmd_age=%lus` (4.x+), or the older
    /// `Result: hostbyte=%s driverbyte=%s` (also after `Synchronize Cache(10) failed: `).
    case result(hostbyte: String, driverbyte: String)
    /// `Sense Key : %s [current]` / `[deferred]`, optionally `[descriptor]`.
    case senseKey(String)
    /// `CDB: %s %02x ...` (scsi_print_command).
    case cdb(SCSICommandDescriptor)
    /// `Add. Sense: %s`, or `ASC=0x%x ASCQ=0x%x` when the kernel has no words for it.
    case additionalSense(String)
    /// `Unhandled error code`, `Unhandled sense code` (≤3.x).
    case unhandled
    /// `rejecting I/O to offline device`
    case offline
}

/// A disk announcing its size: `virtio_blk virtio%d: [%s] %s%llu %d-byte logical blocks (%s/%s)`
/// (drivers/block/virtio_blk.c; `%s` is empty or `new size: ` after a resize) or
/// `sd %s: [%s] %llu %d-byte logical blocks: (%s/%s)` (drivers/scsi/sd.c).
public struct DiskCapacityEvent: Equatable, Sendable {
    public var device: String
    public var driver: String
    public var logicalBlocks: UInt64
    public var logicalBlockSize: UInt32
    public var resized: Bool
    public var location: GuestLogLocation

    public init(device: String, driver: String, logicalBlocks: UInt64, logicalBlockSize: UInt32, resized: Bool,
                location: GuestLogLocation) {
        self.device = device; self.driver = driver; self.logicalBlocks = logicalBlocks
        self.logicalBlockSize = logicalBlockSize; self.resized = resized; self.location = location
    }

    /// Size in bytes (nil if it would overflow 64 bits, which only a corrupt line can claim).
    public var bytes: UInt64? {
        let (b, o) = logicalBlocks.multipliedReportingOverflow(by: UInt64(logicalBlockSize))
        return o ? nil : b
    }

    /// Size in the 512-byte sectors that block error lines count in.
    public var sectors: UInt64? { bytes.map { $0 / 512 } }
}

/// `%s: %d callbacks suppressed` (lib/ratelimit.c): the rate limiter of function `function`
/// dropped `count` messages. The line names the function, never the device.
public struct SuppressedMessagesEvent: Equatable, Sendable {
    public var function: String
    public var count: UInt64
    public var location: GuestLogLocation

    public init(function: String, count: UInt64, location: GuestLogLocation) {
        self.function = function; self.count = count; self.location = location
    }

    /// Which messages were dropped, from the rate-limited function's name.
    public var family: SuppressedFamily {
        switch function {
        case "blk_update_request", "print_req_error", "blk_print_req_error", "end_request", "__blk_update_request":
            return .blockErrors
        case "buffer_io_error":
            return .bufferErrors
        default:
            return .other
        }
    }
}

public enum SuppressedFamily: String, CaseIterable, Sendable, Codable {
    case blockErrors = "block-errors"
    case bufferErrors = "buffer-errors"
    case other
}

/// Everything the guest-log reader recognises, in input order. Indirect: the payloads are
/// boxed, so the reader's per-line verdict stays one word for the 95+% of lines that match
/// nothing instead of carrying (and copying) the largest event's bytes.
public indirect enum GuestLogEvent: Equatable, Sendable {
    case blockError(BlockErrorEvent)
    case bufferError(BufferErrorEvent)
    case filesystem(FilesystemEvent)
    case scsi(SCSIEvent)
    case capacity(DiskCapacityEvent)
    case suppressed(SuppressedMessagesEvent)
    case hungTask(HungTaskEvent)
    case deviceTimeout(DeviceTimeoutEvent)

    public var location: GuestLogLocation {
        switch self {
        case .blockError(let e): return e.location
        case .bufferError(let e): return e.location
        case .filesystem(let e): return e.location
        case .scsi(let e): return e.location
        case .capacity(let e): return e.location
        case .suppressed(let e): return e.location
        case .hungTask(let e): return e.location
        case .deviceTimeout(let e): return e.location
        }
    }
}
