import Foundation

/// Buffered reads over one region of a perf.data (the whole pipe, or a file's data section)
/// with the region's end enforced: records are handed out as borrowed slices of a fixed
/// buffer (a record is at most 64 KiB: perf_event_header.size is a u16), so memory stays
/// fixed however large the input.
final class PerfChunkReader {
    /// Reads up to `count` bytes at the reader's current position; 0 at end of input.
    typealias Fill = (UnsafeMutableRawBufferPointer) throws -> Int

    private let fill: Fill
    private let buffer: UnsafeMutableRawBufferPointer
    private var start = 0, end = 0
    /// Bytes of the region not yet pulled into the buffer; nil = until end of input.
    private var unread: UInt64?
    /// Offset (in the file) of `buffer[start]`, for messages.
    private(set) var position: UInt64
    private(set) var sawEndOfInput = false

    static let capacity = 1 << 20

    init(startingAt offset: UInt64, length: UInt64?, fill: @escaping Fill) {
        self.fill = fill
        position = offset
        unread = length
        buffer = .allocate(byteCount: Self.capacity, alignment: 8)
    }

    deinit { buffer.deallocate() }

    var buffered: Int { end - start }

    /// Bytes of the region left (buffered + unread), when the region is bounded.
    var remaining: UInt64? { unread.map { $0 + UInt64(buffered) } }

    /// Makes at least `n` (≤ capacity) bytes available; returns how many are (less only at
    /// the end of the region or the input).
    @discardableResult
    func ensure(_ n: Int) throws -> Int {
        precondition(n <= Self.capacity)
        if buffered >= n { return buffered }
        if start > 0 {
            if buffered > 0 { memmove(buffer.baseAddress!, buffer.baseAddress! + start, buffered) }
            end = buffered
            start = 0
        }
        while end < n, !sawEndOfInput {
            var want = Self.capacity - end
            if let u = unread {
                if u == 0 { break }
                want = Int(min(UInt64(want), u))
            }
            let got = try fill(UnsafeMutableRawBufferPointer(rebasing: buffer[end..<(end + want)]))
            if got == 0 { sawEndOfInput = true; break }
            end += got
            if let u = unread { unread = u - UInt64(got) }
        }
        return buffered
    }

    /// Every buffered byte, valid until the next `ensure`: lets the records loop walk the
    /// records wholly in the buffer without a call into the reader per record.
    var window: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buffer[start..<end]) }

    /// The next `n` buffered bytes (call `ensure` first).
    func peek(_ n: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: buffer[start..<(start + n)])
    }

    func consume(_ n: Int) {
        start += n
        position += UInt64(n)
    }

    /// Reads `n` bytes into an array (tracing data following a pipe record, header areas).
    func readArray(_ n: Int) throws -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(min(n, 16 << 20))
        var left = n
        while left > 0 {
            let have = try ensure(min(left, Self.capacity))
            if have == 0 { return nil }
            let k = min(have, left)
            out.append(contentsOf: peek(k))
            consume(k)
            left -= k
        }
        return out
    }

    /// Skips `n` bytes; false when the input ends first.
    func skip(_ n: UInt64) throws -> Bool {
        var left = n
        while left > 0 {
            let have = try ensure(Int(min(left, UInt64(Self.capacity))))
            if have == 0 { return false }
            let k = Int(min(UInt64(have), left))
            consume(k)
            left -= UInt64(k)
        }
        return true
    }

    /// Hands `n` bytes to `sink` chunk by chunk; false when the input ends first.
    func copy(_ n: UInt64, to sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Bool {
        var left = n
        while left > 0 {
            let have = try ensure(Int(min(left, UInt64(Self.capacity))))
            if have == 0 { return false }
            let k = Int(min(UInt64(have), left))
            try sink(peek(k))
            consume(k)
            left -= UInt64(k)
        }
        return true
    }
}

/// A regular, uncompressed file opened for pread(2): how a perf.data's header, feature
/// sections and data section (which perf writes after the data) are reached without reading
/// the file twice or holding it.
final class PerfRandomAccessFile {
    let fd: Int32
    let size: UInt64
    private let owns: Bool

    /// The file behind `stream`, when it is one pread can serve: a path or a redirected
    /// stdin holding a regular file as it is (not decompressed on the way, not a pipe).
    static func open(behind stream: ByteStream) -> PerfRandomAccessFile? {
        var s: ByteStream = stream
        while let p = s as? PeekableByteStream { s = p.base }
        guard let file = s as? FileByteSource, file.isRegularFile, file.compression == nil else { return nil }
        let fd: Int32
        let owns: Bool
        if file.path == "-" { fd = STDIN_FILENO; owns = false } else {
            fd = Glibc.open(file.path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            owns = true
        }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size >= 0 else {
            if owns { close(fd) }
            return nil
        }
        // tracefs files claim to be regular but cannot be read at an offset.
        var probe: UInt8 = 0
        if st.st_size > 0, pread(fd, &probe, 1, 0) != 1 {
            if owns { close(fd) }
            return nil
        }
        return PerfRandomAccessFile(fd: fd, size: UInt64(st.st_size), owns: owns)
    }

    private init(fd: Int32, size: UInt64, owns: Bool) {
        self.fd = fd
        self.size = size
        self.owns = owns
    }

    deinit { if owns { close(fd) } }

    /// Up to `buffer.count` bytes at `offset` (fewer at end of file).
    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer, name: String) throws -> Int {
        var got = 0
        while got < buffer.count {
            let n = pread(fd, buffer.baseAddress! + got, buffer.count - got, off_t(offset + UInt64(got)))
            if n > 0 { got += n; continue }
            if n == 0 { break }
            if errno == EINTR { continue }
            throw KVMScopeError.readFailed(path: name, reason: KVMScopeError.systemMessage(errno))
        }
        return got
    }

    func bytes(at offset: UInt64, count: Int, name: String) throws -> [UInt8]? {
        guard offset <= size, UInt64(count) <= size - offset else { return nil }
        var out = [UInt8](repeating: 0, count: count)
        let n = try out.withUnsafeMutableBytes { try read(at: offset, into: $0, name: name) }
        return n == count ? out : nil
    }

    /// A chunk reader over `[offset, offset+length)`.
    func region(_ offset: UInt64, _ length: UInt64, name: String) -> PerfChunkReader {
        // Read front to back once: the kernel may read ahead further (advice only; an error
        // changes nothing).
        if offset <= UInt64(Int64.max), length <= UInt64(Int64.max) {
            _ = posix_fadvise(fd, off_t(offset), off_t(length), POSIX_FADV_SEQUENTIAL)
        }
        var pos = offset
        return PerfChunkReader(startingAt: offset, length: length) { [self] buf in
            let n = try read(at: pos, into: buf, name: name)
            pos += UInt64(n)
            return n
        }
    }
}
