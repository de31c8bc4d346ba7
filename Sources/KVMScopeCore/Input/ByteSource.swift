import Foundation

/// Anything bytes can be read from: a file, stdin, a pipe, a socket. Readers and line
/// splitters only see this, so they never know whether data came from a file or a live source.
public protocol ByteStream: AnyObject {
    /// A name for messages: the path, or `<stdin>`.
    var name: String { get }
    /// Total size when known (regular files), for progress display.
    var knownSize: Int64? { get }
    /// Reads up to `buffer.count` bytes; 0 means end of input.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

extension ByteStream {
    /// The whole input, for the small files read at once (rules, command lines, format
    /// definitions, mount tables); `tooLarge` is thrown as soon as it exceeds `limit` bytes,
    /// so a huge or endless input costs at most the limit.
    public func readAll(limit: Int, tooLarge: () -> Error) throws -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try read(into: $0) }
            if n == 0 { return bytes }
            bytes += chunk[0..<n]
            if bytes.count > limit { throw tooLarge() }
        }
    }
}

/// A file or standard input (`-`), opened for streaming reads. A gzip, xz or zstd input (told
/// by its magic bytes, not its name) is decompressed on the way, so every reader and format
/// detection sees the text it holds; an uncompressed input is read straight from its descriptor.
/// An empty input (after decompression) is refused unless `allowEmpty`: every command says
/// "FILE is empty" rather than reporting on nothing.
public final class FileByteSource: ByteStream {
    public let name: String
    /// The file's size when it is a regular file read as it is (progress display); nil for
    /// pipes and for compressed files (their decompressed size is unknown).
    public let knownSize: Int64?
    /// The compression detected by magic bytes; nil when the input is read as it is.
    public let compression: CompressionFormat?
    /// A regular file (which can be opened again by its path), not a pipe or a terminal.
    public let isRegularFile: Bool
    /// The path it was opened with (`-` for standard input).
    public let path: String
    private let raw: DescriptorByteStream
    private let decoded: ByteStream?

    /// Opens `path`, or standard input for `-`. Fails with one clear, user-facing message.
    public init(path: String, allowEmpty: Bool = false) throws {
        let opened = try OpenedInput(path: path)
        name = opened.name
        self.path = path
        isRegularFile = opened.isRegularFile
        #if os(Linux)
        if opened.isRegularFile { _ = posix_fadvise(opened.fd, 0, 0, Int32(POSIX_FADV_SEQUENTIAL)) }
        #endif
        raw = DescriptorByteStream(opened)
        let head = try raw.head()
        if head.isEmpty && !allowEmpty { throw KVMScopeError.emptyInput(path: opened.name, compression: nil) }
        if let (kind, tool) = CompressionFormat.unsupported(head) {
            throw KVMScopeError.unsupportedFormat(path: opened.name, detail:
                "\(kind)-compressed, which kvmscope does not decompress (it reads gzip, xz and zstd): decompress it first, e.g. \(tool) FILE | kvmscope ... -")
        }
        compression = CompressionFormat.detect(head)
        if let compression {
            let peekable = PeekableByteStream(try DecompressingByteStream(raw, format: compression))
            if !allowEmpty, try peekable.peek(1).isEmpty {
                throw KVMScopeError.emptyInput(path: opened.name, compression: compression.rawValue)
            }
            decoded = peekable
            knownSize = nil
        } else {
            decoded = nil
            knownSize = opened.isRegularFile ? opened.size : nil
        }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if let decoded { return try decoded.read(into: buffer) }
        return try raw.read(into: buffer)
    }
}

/// The bytes of an opened descriptor, with its first bytes looked at once (for magic numbers)
/// and handed out again: a regular file's with pread(2), which leaves the offset alone; a
/// pipe's are read and replayed.
final class DescriptorByteStream: ByteStream {
    let name: String
    var knownSize: Int64? { isRegularFile ? size : nil }
    private let fd: Int32
    private let ownsDescriptor: Bool
    private let isRegularFile: Bool
    private let size: Int64
    private var replay: [UInt8] = []
    private var replayOffset = 0

    init(_ opened: OpenedInput) {
        name = opened.name
        fd = opened.fd
        ownsDescriptor = opened.ownsDescriptor
        isRegularFile = opened.isRegularFile
        size = opened.size
    }

    deinit { if ownsDescriptor { close(fd) } }

    /// Up to `CompressionFormat.magicLength` first bytes. A pipe is read only until the bytes
    /// can start no known magic, so a slow writer's first line is not waited for needlessly.
    func head() throws -> [UInt8] {
        var head = [UInt8](repeating: 0, count: CompressionFormat.magicLength)
        if isRegularFile {
            while true {
                let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
                if n >= 0 { return Array(head[0..<n]) }
                if errno == EINTR { continue }
                // tracefs's trace_pipe is a "regular file" that cannot be read at an offset
                // (no_llseek: ESPIPE): read and replay its first bytes as for a pipe.
                if errno == ESPIPE || errno == EINVAL { break }
                throw KVMScopeError.readFailed(path: name, reason: KVMScopeError.systemMessage(errno))
            }
        }
        var got = 0
        while got < head.count {
            let n = try head.withUnsafeMutableBytes { try readDescriptor(UnsafeMutableRawBufferPointer(rebasing: $0[got...])) }
            if n == 0 { break }
            got += n
            if !CompressionFormat.couldStartMagic(Array(head[0..<got])) { break }
        }
        replay = Array(head[0..<got])
        return replay
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if replayOffset < replay.count {
            let n = min(buffer.count, replay.count - replayOffset)
            replay.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + replayOffset, byteCount: n) }
            replayOffset += n
            return n
        }
        return try readDescriptor(buffer)
    }

    private func readDescriptor(_ buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw KVMScopeError.readFailed(path: name, reason: KVMScopeError.systemMessage(errno))
        }
    }
}

/// In-memory bytes as a stream: for tests and for inputs bundled into the binary.
public final class MemoryByteSource: ByteStream {
    public let name: String
    public var knownSize: Int64? { Int64(bytes.count) }
    private let bytes: [UInt8]
    private var offset = 0
    private let maxChunk: Int

    /// `maxChunk` lets tests force lines to straddle read boundaries.
    public init(_ bytes: [UInt8], name: String = "<memory>", maxChunk: Int = .max) {
        self.bytes = bytes
        self.name = name
        self.maxChunk = max(1, maxChunk)
    }

    public convenience init(_ text: String, name: String = "<memory>", maxChunk: Int = .max) {
        self.init(Array(text.utf8), name: name, maxChunk: maxChunk)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, bytes.count - offset, maxChunk)
        guard n > 0 else { return 0 }
        bytes.withUnsafeBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + offset, byteCount: n)
        }
        offset += n
        return n
    }
}

/// A path opened for reading the way every kvmscope input is: `-` is standard input; a
/// missing file, a directory or a permission problem is one clear, user-facing error.
struct OpenedInput {
    let name: String
    let fd: Int32
    let ownsDescriptor: Bool
    let isRegularFile: Bool
    let size: Int64

    init(path: String) throws {
        if path == "-" {
            name = "<stdin>"
            fd = STDIN_FILENO
            ownsDescriptor = false
        } else {
            var st = stat()
            guard stat(path, &st) == 0 else {
                throw KVMScopeError.cannotOpen(path: path, reason: KVMScopeError.systemMessage(errno))
            }
            if (st.st_mode & S_IFMT) == S_IFDIR { throw KVMScopeError.isDirectory(path: path) }
            let opened = open(path, O_RDONLY | O_CLOEXEC)
            guard opened >= 0 else {
                throw KVMScopeError.cannotOpen(path: path, reason: KVMScopeError.systemMessage(errno))
            }
            name = path
            fd = opened
            ownsDescriptor = true
        }
        var st = stat()
        let ok = fstat(fd, &st) == 0
        isRegularFile = ok && (st.st_mode & S_IFMT) == S_IFREG
        size = ok ? Int64(st.st_size) : 0
    }
}
