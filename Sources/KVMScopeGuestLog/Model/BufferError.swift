/// A buffer-head I/O error (fs/buffer.c, fs/ext4/page-io.c): a filesystem block whose read or
/// write failed. `logicalBlock` counts blocks of the filesystem's block size from the start of
/// `device` — on a partition or a device-mapper device it is not a disk sector.
///
/// Formats (quoted from the kernel):
///   fs/buffer.c ≤4.0, ext4 page-io (all versions)  `Buffer I/O error on device %s, logical block %Lu`
///   fs/buffer.c ≤4.0, after the line above          `lost page write due to I/O error on %s`
///   fs/buffer.c 4.1+  `Buffer I/O error on dev %pg, logical block %llu%s` where %s is
///                     `, lost sync page write` | `, async page read` | `, lost async page write` | ``
public struct BufferErrorEvent: Equatable, Sendable {
    public var device: String
    /// nil for `lost page write due to I/O error on %s`, which names no block.
    public var logicalBlock: UInt64?
    /// What the line says was lost; nil when it does not say.
    public var loss: BufferErrorLoss?
    public var shape: BufferErrorShape
    public var location: GuestLogLocation

    public init(device: String, logicalBlock: UInt64?, loss: BufferErrorLoss?, shape: BufferErrorShape,
                location: GuestLogLocation) {
        self.device = device; self.logicalBlock = logicalBlock; self.loss = loss
        self.shape = shape; self.location = location
    }
}

public enum BufferErrorLoss: String, CaseIterable, Sendable, Codable {
    /// `lost sync page write`: the writer waited (fsync, O_SYNC, journal) and got the error.
    case syncWrite = "sync-write"
    /// `lost async page write`: writeback of a dirty page failed after write() had returned;
    /// the program learns of it only if it calls fsync() (or close() on some filesystems).
    case asyncWrite = "async-write"
    /// `async page read`: a read (often readahead) failed; nothing was lost on disk.
    case asyncRead = "async-read"
    /// `lost page write` (≤4.0): a write was lost; the line does not say sync or async.
    case write = "write"
}

public enum BufferErrorShape: String, CaseIterable, Sendable, Codable {
    /// `Buffer I/O error on device %s, logical block %Lu`
    case onDevice = "on-device"
    /// `Buffer I/O error on dev %pg, logical block %llu%s`
    case onDev = "on-dev"
    /// `lost page write due to I/O error on %s`
    case lostPageWrite = "lost-page-write"
}
