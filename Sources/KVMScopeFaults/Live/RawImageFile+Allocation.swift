import Foundation

extension RawImageFile {
    /// Runs one allocation query returns at most: each run costs two lseek(2) calls, and the NBD
    /// reply 8 bytes, so one query is bounded in time and memory whatever the file's layout (a
    /// client asks again from where the runs end; proto.md allows a shorter answer).
    public static let maximumExtentsPerQuery = 16384

    /// The allocation of `offset ..< offset+length` from SEEK_DATA/SEEK_HOLE, the way QEMU's file
    /// driver finds it (block/file-posix.c `find_allocation`, `raw_co_block_status`):
    /// - a hole is HOLE|ZERO (it reads as zeroes and has no storage);
    /// - data is neither flag (allocated; read it to know what it holds);
    /// - ENXIO from SEEK_DATA means no data from here to the end of the file — a trailing hole,
    ///   or past the end of a file that shrank, which `read` returns as zeroes: HOLE|ZERO;
    /// - any other failure (a file system without SEEK_DATA: EINVAL, EOPNOTSUPP) means nothing is
    ///   known: the rest is data, the one answer that is always true.
    /// At most `maximumExtentsPerQuery` runs; they never go past `length`. Returns errno 0 (the
    /// query itself never fails: not knowing is "data"), and no runs only when `length` is 0.
    public func allocation(offset: Int64, length: Int64, maximumExtents: Int = RawImageFile.maximumExtentsPerQuery)
        -> (errno: Int32, extents: [BlockExtent]) {
        guard offset >= 0, length > 0, maximumExtents > 0 else { return (0, []) }
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard !overflow else { return (EINVAL, []) }
        var extents: [BlockExtent] = []
        var position = offset
        func append(_ run: Int64, hole: Bool) {
            if let last = extents.last, last.isHole == hole {
                extents[extents.count - 1].length += run
            } else {
                extents.append(BlockExtent(length: run, isHole: hole, readsAsZeroes: hole))
            }
            position += run
        }
        while position < end && extents.count < maximumExtents {
            let data = lseek(descriptor, off_t(position), Whence.data)
            if data < 0 {
                append(end - position, hole: errno == ENXIO)
                break
            }
            if Int64(data) > position {
                append(min(Int64(data), end) - position, hole: true)
                continue
            }
            // data == position (lseek never answers below it; if it did, "data" is still true).
            let hole = lseek(descriptor, off_t(position), Whence.hole)
            guard hole > position else {
                append(end - position, hole: false)
                break
            }
            append(min(Int64(hole), end) - position, hole: false)
        }
        return (0, extents)
    }
}

/// lseek(2) whences that glibc declares only under _GNU_SOURCE (Linux <linux/fs.h>: SEEK_DATA 3,
/// SEEK_HOLE 4), which the Glibc module does not set.
private enum Whence {
    static let data: Int32 = 3
    static let hole: Int32 = 4
}
