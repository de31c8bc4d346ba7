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

/// A file or standard input (`-`), opened for streaming reads.
public final class FileByteSource: ByteStream {
    public let name: String
    public let knownSize: Int64?
    private let fd: Int32
    private let ownsDescriptor: Bool

    /// Opens `path`, or standard input for `-`. Fails with one clear, user-facing message.
    public init(path: String) throws {
        let opened = try OpenedInput(path: path)
        name = opened.name
        fd = opened.fd
        ownsDescriptor = opened.ownsDescriptor
        knownSize = opened.isRegularFile ? opened.size : nil
        #if os(Linux)
        if opened.isRegularFile { _ = posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_SEQUENTIAL)) }
        #endif
    }

    deinit { if ownsDescriptor { close(fd) } }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
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
