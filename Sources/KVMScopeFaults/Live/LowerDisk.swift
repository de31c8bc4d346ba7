import Foundation

/// What a disk (or a backend in front of one) can do, as NBD's transmission flags and
/// NBD_INFO_BLOCK_SIZE say it (proto.md "Transmission flags", "Block size constraints").
public struct DiskCapabilities: Sendable, Equatable {
    /// NBD_FLAG_SEND_FLUSH: the disk has a cache that a flush empties.
    public var flush: Bool
    /// NBD_FLAG_SEND_FUA. For a `LowerDisk`: the disk does FUA itself (a `FaultInjectingBackend`
    /// otherwise emulates it as write + flush, as QEMU's block layer does for drivers without
    /// BDRV_REQ_FUA); for a `BlockBackend`: FUA requests are honoured, natively or emulated.
    public var fua: Bool
    /// NBD_FLAG_SEND_TRIM.
    public var trim: Bool
    /// NBD_FLAG_SEND_WRITE_ZEROES (done by the disk, not by writing a buffer of zeroes).
    public var writeZeroes: Bool
    /// NBD_FLAG_CAN_MULTI_CONN: a flush on one connection covers writes completed on all.
    public var multiConn: Bool
    /// NBD_INFO_BLOCK_SIZE minimum and preferred sizes (the maximum payload is the server's own:
    /// a disk with a smaller one splits requests itself).
    public var minimumBlockSize: UInt32
    public var preferredBlockSize: UInt32
    /// Its calls wait on a peer (a network round trip to another server), not on the page
    /// cache: the NBD server must run all of them off its event loops (see `NBDUpstreamDisk`).
    public var callsWaitOnPeer: Bool

    public init(flush: Bool = true, fua: Bool = true, trim: Bool = true, writeZeroes: Bool = true, multiConn: Bool = true,
                minimumBlockSize: UInt32 = 1, preferredBlockSize: UInt32 = 4096, callsWaitOnPeer: Bool = false) {
        self.flush = flush
        self.fua = fua
        self.trim = trim
        self.writeZeroes = writeZeroes
        self.multiConn = multiConn
        self.minimumBlockSize = minimumBlockSize
        self.preferredBlockSize = preferredBlockSize
        self.callsWaitOnPeer = callsWaitOnPeer
    }

    /// A local file: everything, FUA by fdatasync (so not natively), page-cache speed.
    public static let localFile = DiskCapabilities(fua: false)
}

extension BlockBackend {
    /// A backend that does not say otherwise does everything, on the page cache.
    public var capabilities: DiskCapabilities { DiskCapabilities() }
}

/// The disk under a `FaultInjectingBackend`: a raw image file, or an upstream NBD export. Calls
/// are synchronous and thread-safe, return an errno (0 = ok) and are given ranges inside `size`;
/// the rule engine in front decides which of them happen at all.
public protocol LowerDisk: AnyObject, Sendable {
    var size: Int64 { get }
    var isReadOnly: Bool { get }
    var capabilities: DiskCapabilities { get }
    func read(offset: Int64, into buffer: UnsafeMutableRawBufferPointer) -> Int32
    /// `fua` is only set when `capabilities.fua` says the disk does it itself.
    func write(offset: Int64, from buffer: UnsafeRawBufferPointer, fua: Bool) -> Int32
    func writeZeroes(offset: Int64, length: Int64, mayUnmap: Bool, fua: Bool) -> Int32
    /// Zeroes without writing a buffer of zeroes (BDRV_REQ_NO_FALLBACK): EOPNOTSUPP when the
    /// disk cannot.
    func writeZeroesWithoutFallback(offset: Int64, length: Int64, mayUnmap: Bool, fua: Bool) -> Int32
    /// Advisory: a disk that cannot discard keeps the data and returns 0.
    func discard(offset: Int64, length: Int64) -> Int32
    /// Makes every completed write durable (0 at once when the disk has no cache).
    func sync() -> Int32
    /// The allocation of a range (`BlockBackend.blockStatus` rules: runs in order from `offset`,
    /// never past `length`, at least one on success).
    func blockAllocation(offset: Int64, length: Int64) -> (errno: Int32, extents: [BlockExtent])
    /// qemu-io's `truncate`: nil when done, else QEMU's message for why not.
    func resize(to size: Int64, preallocation: Preallocation) -> String?
}

/// QEMU's PreallocMode (qapi/block-core.json), as `truncate -m` takes it.
public enum Preallocation: String, Sendable, CaseIterable {
    case off, metadata, falloc, full
}

extension LowerDisk {
    /// A disk that does not say otherwise cannot promise it, as QEMU refuses NO_FALLBACK to a
    /// driver whose supported_zero_flags lack it (block/io.c bdrv_co_do_pwrite_zeroes).
    public func writeZeroesWithoutFallback(offset: Int64, length: Int64, mayUnmap: Bool, fua: Bool) -> Int32 { EOPNOTSUPP }
    public func resize(to size: Int64, preallocation: Preallocation) -> String? { "Cannot resize this disk" }
}

extension RawImageFile: LowerDisk {
    public var capabilities: DiskCapabilities { .localFile }

    public func write(offset: Int64, from buffer: UnsafeRawBufferPointer, fua: Bool) -> Int32 {
        let e = write(offset: offset, from: buffer)
        return e == 0 && fua ? sync() : e
    }

    public func writeZeroes(offset: Int64, length: Int64, mayUnmap: Bool, fua: Bool) -> Int32 {
        let e = writeZeroes(offset: offset, length: length, mayUnmap: mayUnmap)
        return e == 0 && fua ? sync() : e
    }

    public func writeZeroesWithoutFallback(offset: Int64, length: Int64, mayUnmap: Bool, fua: Bool) -> Int32 {
        let e = writeZeroes(offset: offset, length: length, mayUnmap: mayUnmap, noFallback: true)
        return e == 0 && fua ? sync() : e
    }

    /// The file's SEEK_DATA/SEEK_HOLE map (`allocation`).
    public func blockAllocation(offset: Int64, length: Int64) -> (errno: Int32, extents: [BlockExtent]) {
        allocation(offset: offset, length: length)
    }
}
