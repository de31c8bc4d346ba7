import KVMScope

/// A small in-memory disk for the NBD fuzz targets: no files, so each input starts clean and
/// runs fast. The NBD handler checks offsets against `size` before calling (BlockBackend's contract).
final class MemoryBackend: BlockBackend, @unchecked Sendable {
    private var bytes: [UInt8]
    let size: Int64
    let isReadOnly = false

    init(size: Int) {
        bytes = [UInt8](repeating: 0, count: size)
        self.size = Int64(size)
    }

    private func range(_ offset: Int64, _ length: Int) -> Range<Int> {
        FuzzNBDCheck.require(offset >= 0 && length >= 0 && offset <= size - Int64(length),
                             "NBD handler passed \(offset)+\(length) to a \(size)-byte backend")
        return Int(offset)..<(Int(offset) + length)
    }

    func read(offset: Int64, into buffer: UnsafeMutableRawBufferPointer) -> BlockCompletion {
        let r = range(offset, buffer.count)
        bytes[r].withUnsafeBytes { buffer.copyMemory(from: $0) }
        return .ok
    }

    func write(offset: Int64, from buffer: UnsafeRawBufferPointer, fua: Bool) -> BlockCompletion {
        let r = range(offset, buffer.count)
        bytes.replaceSubrange(r, with: buffer)
        return .ok
    }

    func writeZeroes(offset: Int64, length: Int64, mayUnmap: Bool, fua: Bool) -> BlockCompletion {
        FuzzNBDCheck.require(length <= size, "NBD handler passed a zero length beyond the backend")
        let r = range(offset, Int(length))
        for i in r { bytes[i] = 0 }
        return .ok
    }

    func discard(offset: Int64, length: Int64) -> BlockCompletion {
        FuzzNBDCheck.require(length <= size, "NBD handler passed a discard length beyond the backend")
        _ = range(offset, Int(length))
        return .ok
    }

    func flush() -> BlockCompletion { .ok }

    /// 4 KiB blocks that are all zeroes are holes, the others data. When the disk's first byte
    /// is 0xb5 the backend breaks the seam's promises instead (runs of length 0 and below, runs
    /// past the request), which the server must not turn into a protocol violation.
    func blockStatus(offset: Int64, length: Int64) -> BlockStatusResult {
        FuzzNBDCheck.require(length > 0 && length <= size, "NBD handler passed a block status length of \(length)")
        let r = range(offset, Int(length))
        if bytes[0] == 0xb5 {
            return BlockStatusResult(extents: [BlockExtent(length: 0), BlockExtent(length: -7, isHole: true),
                                               BlockExtent(length: 3), BlockExtent(length: Int64.max, isHole: true, readsAsZeroes: true)])
        }
        var extents: [BlockExtent] = []
        var i = r.lowerBound
        while i < r.upperBound {
            let end = min((i / 4096 + 1) * 4096, r.upperBound)
            let hole = bytes[(i / 4096 * 4096)..<min(i / 4096 * 4096 + 4096, bytes.count)].allSatisfy { $0 == 0 }
            extents.append(BlockExtent(length: Int64(end - i), isHole: hole, readsAsZeroes: hole))
            i = end
        }
        return BlockStatusResult(extents: extents)
    }
}
