import Foundation

/// A raw disk image opened for positioned I/O. Every call loops over short transfers and EINTR
/// and returns an errno (0 = ok) instead of throwing, because errors are data for a block device.
public final class RawImageFile: @unchecked Sendable {
    public let path: String
    /// The size QEMU holds for the file (bs->total_sectors, in bytes here): set at open and by
    /// `resize` (qemu-io's `truncate`), and grown by a write that completed past it
    /// (`coverCompletedWrite`). Not re-read from the file: QEMU's file driver has no
    /// has_variable_length, so bdrv_getlength does not fstat a regular file again.
    public var size: Int64 {
        sizeLock.lock(); defer { sizeLock.unlock() }
        return currentSize
    }
    private var currentSize: Int64
    private let sizeLock = NSLock()
    public let isReadOnly: Bool
    private let fd: Int32
    /// QEMU's restriction on probed raw images (below); guarded by `headerLock`.
    private let headerLock = NSLock()
    private var restrictsHeaderWrites = false

    public init(path: String, readOnly: Bool = false) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw KVMScopeError.cannotOpen(path: path, reason: KVMScopeError.systemMessage(errno))
        }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw KVMScopeError.isDirectory(path: path) }
        let fd = open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        guard fd >= 0 else { throw KVMScopeError.cannotOpen(path: path, reason: KVMScopeError.systemMessage(errno)) }
        let end = lseek(fd, 0, SEEK_END)
        guard end >= 0 else {
            let e = errno
            close(fd)
            throw KVMScopeError.cannotOpen(path: path, reason: KVMScopeError.systemMessage(e))
        }
        self.path = path
        self.fd = fd
        self.currentSize = Int64(end)
        self.isReadOnly = readOnly
    }

    deinit { close(fd) }

    /// The descriptor, for QEMU's image locks (`QemuImageLock`), which belong to this open file
    /// and so last exactly as long as it does.
    public var descriptor: Int32 { fd }

    /// The first `ImageFormatProbe.bufferSize` bytes, zero-padded past the end of the file.
    public func probeHeader() -> [UInt8] {
        var header = [UInt8](repeating: 0, count: ImageFormatProbe.bufferSize)
        let e = header.withUnsafeMutableBytes { read(offset: 0, into: $0) }
        return e == 0 ? header : []
    }

    /// The last `ImageFormatProbe.bufferSize` bytes (empty when the file is shorter or unreadable).
    public func probeTrailer() -> [UInt8] {
        let n = ImageFormatProbe.bufferSize
        guard size >= Int64(n) else { return [] }
        var trailer = [UInt8](repeating: 0, count: n)
        let e = trailer.withUnsafeMutableBytes { read(offset: size - Int64(n), into: $0) }
        return e == 0 ? trailer : []
    }

    /// From now on, refuse (EPERM) any change to the first 512 bytes after which they would no
    /// longer probe as raw, as QEMU does for an image whose raw format was guessed, not given
    /// (block/raw-format.c `raw_co_pwritev`: "bs->probed" → `bdrv_probe_all` on the new first
    /// sector; CVE-2008-2004: a guest writing a qcow2 header with a backing file name into a
    /// probed raw disk would make the next probing open read host files). kvmscope also checks
    /// zeroing and discarding there, which QEMU does not, because both change what reads return.
    public func restrictFormatHeaderWrites() {
        headerLock.lock(); restrictsHeaderWrites = true; headerLock.unlock()
    }

    /// Runs `change` on a range; if it touches the first sector of a probed raw image, only when
    /// the first sector as it would be afterwards (`overlay` applied to the current one) still
    /// probes as raw, all under a lock so that two such writes cannot interleave.
    private func guardingHeader(offset: Int64, length: Int, overlay: (UnsafeMutableRawBufferPointer) -> Void,
                                _ change: () -> Int32) -> Int32 {
        let size = Int64(ImageFormatProbe.bufferSize)
        guard offset >= 0, offset < size, length > 0 else { return change() }
        headerLock.lock(); defer { headerLock.unlock() }
        guard restrictsHeaderWrites else { return change() }
        var sector = [UInt8](repeating: 0, count: Int(size))
        let e = sector.withUnsafeMutableBytes { read(offset: 0, into: $0) }
        if e != 0 { return e }
        sector.withUnsafeMutableBytes { overlay($0) }
        let after = ImageFormatProbe.probe(header: sector, fileSize: size, filename: "")
        return after.isRaw ? change() : EPERM
    }

    /// Whether the first bytes are a qcow2 header ("QFI\xfb"), which kvmscope does not interpret.
    public func looksLikeQcow2() -> Bool {
        var magic = [UInt8](repeating: 0, count: 4)
        let n = magic.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 4, 0) }
        return n == 4 && magic == [0x51, 0x46, 0x49, 0xfb]
    }

    public func read(offset: Int64, into buffer: UnsafeMutableRawBufferPointer) -> Int32 {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            if n == 0 {   // beyond the end of a file that shrank: reads as zeroes, like QEMU's file driver
                memset(buffer.baseAddress! + done, 0, buffer.count - done)
                break
            }
            done += n
        }
        return 0
    }

    public func write(offset: Int64, from buffer: UnsafeRawBufferPointer) -> Int32 {
        guardingHeader(offset: offset, length: buffer.count, overlay: { sector in
            let n = min(buffer.count, sector.count - Int(offset))
            sector.baseAddress!.advanced(by: Int(offset)).copyMemory(from: buffer.baseAddress!, byteCount: n)
        }) { writeUnguarded(offset: offset, from: buffer) }
    }

    private func writeUnguarded(offset: Int64, from buffer: UnsafeRawBufferPointer) -> Int32 {
        var done = 0
        while done < buffer.count {
            let n = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            done += n
        }
        return 0
    }

    /// Zeroes a range: hole punching (when allowed) or Falloc.zeroRange, else written zeroes;
    /// `noFallback` (BDRV_REQ_NO_FALLBACK) never writes zeroes: EOPNOTSUPP when neither works.
    public func writeZeroes(offset: Int64, length: Int64, mayUnmap: Bool, noFallback: Bool = false) -> Int32 {
        guard length > 0 else { return 0 }
        return guardingHeader(offset: offset, length: Int(min(length, Int64(ImageFormatProbe.bufferSize))),
                              overlay: { zeroFirstSector($0, offset: offset, length: length) }) {
            writeZeroesUnguarded(offset: offset, length: length, mayUnmap: mayUnmap, noFallback: noFallback)
        }
    }

    private func zeroFirstSector(_ sector: UnsafeMutableRawBufferPointer, offset: Int64, length: Int64) {
        let n = Int(min(Int64(sector.count) - offset, length))
        memset(sector.baseAddress! + Int(offset), 0, n)
    }

    /// The order of block/file-posix.c: `handle_aiocb_write_zeroes_unmap` (with MAY_UNMAP, a
    /// punched hole first; ENOTSUP, EINVAL and EBUSY move on, any other error is the answer),
    /// then `handle_aiocb_write_zeroes` (ZERO_RANGE; where it is unsupported — tmpfs — or
    /// refuses the range with EINVAL, a punched hole re-allocated by fallocate(0), which reads
    /// as zeroes and keeps the blocks allocated as ZERO_RANGE would). Only an ENOTSUP from all of
    /// them falls back to written zeroes, as block/io.c `bdrv_co_do_pwrite_zeroes` does, and
    /// never with `noFallback`. QEMU's last resort, fallocate(0) past the end of the file, cannot
    /// apply: requests past the end are refused before they reach the file.
    private func writeZeroesUnguarded(offset: Int64, length: Int64, mayUnmap: Bool, noFallback: Bool) -> Int32 {
        if mayUnmap {
            switch fallocateError(Falloc.punchHole | Falloc.keepSize, offset, length) {
            case 0: return 0
            case EOPNOTSUPP, EINVAL, EBUSY: break
            case let e: return e
            }
        }
        switch fallocateError(Falloc.zeroRange, offset, length) {
        case 0: return 0
        case EOPNOTSUPP, EINVAL: break
        case let e: return e
        }
        switch fallocateError(Falloc.punchHole | Falloc.keepSize, offset, length) {
        case 0:
            let e = fallocateError(0, offset, length)
            if e != EOPNOTSUPP { return e }
        case EOPNOTSUPP, EINVAL: break
        case let e: return e
        }
        if noFallback { return EOPNOTSUPP }
        let chunk = Int(min(length, 1 << 20))
        let zeroes = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { zeroes.deallocate() }
        memset(zeroes.baseAddress!, 0, chunk)
        var done: Int64 = 0
        while done < length {
            let n = Int(min(Int64(chunk), length - done))
            let e = writeUnguarded(offset: offset + done, from: UnsafeRawBufferPointer(rebasing: zeroes[0..<n]))
            if e != 0 { return e }
            done += Int64(n)
        }
        return 0
    }

    /// fallocate(2)'s errno (0 on success), the "not supported" family folded into EOPNOTSUPP
    /// as file-posix.c `translate_err` folds ENODEV, ENOSYS, EOPNOTSUPP and ENOTTY into ENOTSUP
    /// (the same number on Linux).
    private func fallocateError(_ mode: Int32, _ offset: Int64, _ length: Int64) -> Int32 {
        while linuxFallocate(fd, mode, offset, length) != 0 {
            switch errno {
            case EINTR: continue
            case ENODEV, ENOSYS, EOPNOTSUPP, ENOTTY: return EOPNOTSUPP
            case let e: return e
            }
        }
        return 0
    }

    /// Discard is advisory: a file system without hole punching simply keeps the data.
    public func discard(offset: Int64, length: Int64) -> Int32 {
        guard length > 0 else { return 0 }
        return guardingHeader(offset: offset, length: Int(min(length, Int64(ImageFormatProbe.bufferSize))),
                              overlay: { zeroFirstSector($0, offset: offset, length: length) }) {
            discardUnguarded(offset: offset, length: length)
        }
    }

    private func discardUnguarded(offset: Int64, length: Int64) -> Int32 {
        let e = fallocateError(Falloc.punchHole | Falloc.keepSize, offset, length)
        return e == EOPNOTSUPP || e == EINVAL ? 0 : e
    }

    /// qemu-io's `truncate` on a raw file (block/file-posix.c `handle_aiocb_truncate`): `off`
    /// cuts or extends the file, `falloc` allocates the new part, `full` writes it with zeroes;
    /// shrinking with preallocation is refused. While it runs, QEMU's resize permission is taken
    /// as qemu-io takes it for this one command, so a process that does not share resizing (a
    /// running guest, qemu-img) keeps the size it relies on. Returns QEMU's message on failure.
    public func resize(to newSize: Int64, preallocation: Preallocation) -> String? {
        if isReadOnly { return "Block node is read-only" }
        guard newSize >= 0 else { return "Image size cannot be negative" }
        if preallocation == .metadata { return "Unsupported preallocation mode: metadata" }
        let lock: QemuImageLock.Temporary
        do {
            lock = try QemuImageLock.takeTemporarily(fd: fd, path: path, permission: .resize)
        } catch {
            return "\(error)"
        }
        defer { lock.release() }
        sizeLock.lock(); defer { sizeLock.unlock() }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return "Could not stat file: \(KVMScopeError.systemMessage(errno))" }
        let current = Int64(st.st_size)
        if current > newSize && preallocation != .off { return "Cannot use preallocation for shrinking files" }
        switch preallocation {
        case .falloc where newSize > current:
            let e = posix_fallocate(fd, off_t(current), off_t(newSize - current))
            if e != 0 { return "Could not preallocate new data: \(KVMScopeError.systemMessage(e))" }
        case .full where newSize > current:
            guard ftruncate(fd, off_t(newSize)) == 0 else { return "Could not resize file: \(KVMScopeError.systemMessage(errno))" }
            let chunk = [UInt8](repeating: 0, count: 1 << 20)
            var at = current
            while at < newSize {
                let n = Int(min(Int64(chunk.count), newSize - at))
                let e = chunk.withUnsafeBytes { writeUnguarded(offset: at, from: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                if e != 0 { return "Could not write zeros for preallocation: \(KVMScopeError.systemMessage(e))" }
                at += Int64(n)
            }
        default:
            guard ftruncate(fd, off_t(newSize)) == 0 else { return "Could not resize file: \(KVMScopeError.systemMessage(errno))" }
        }
        currentSize = newSize
        return nil
    }

    /// block/io.c bdrv_co_write_req_finish: a write that succeeded past the end grows the size
    /// QEMU holds (`total_sectors = end_sector`). It can only happen to a request that passed
    /// its range check before a `truncate` shrank the disk under it (a background request
    /// stopped at a breakpoint meanwhile); without this, length, map and the range checks
    /// would keep the truncated size while QEMU's grew back.
    public func coverCompletedWrite(end: Int64) {
        sizeLock.lock(); defer { sizeLock.unlock() }
        if end > currentSize { currentSize = end }
    }

    public func sync() -> Int32 {
        while fdatasync(fd) != 0 {
            if errno == EINTR { continue }
            return errno
        }
        return 0
    }
}

/// glibc's fallocate(2) is declared only under _GNU_SOURCE, which the Glibc module does not set.
@_silgen_name("fallocate64")
private func linuxFallocate(_ fd: Int32, _ mode: Int32, _ offset: Int64, _ length: Int64) -> Int32

/// <linux/falloc.h>
private enum Falloc {
    static let keepSize: Int32 = 0x01
    static let punchHole: Int32 = 0x02
    static let zeroRange: Int32 = 0x10
}
