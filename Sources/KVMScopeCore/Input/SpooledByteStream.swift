import Foundation

/// Bytes written once to an unlinked temporary file and then read back as a stream: how one
/// pass over a pipe (which cannot be read twice) hands several readers their own part of it
/// in memory bounded by one write buffer. The file has no name once created, so nothing is
/// left behind whatever happens to the process; it is freed when the stream goes away.
public final class SpooledByteStream: ByteStream {
    /// Set by the splitter once it knows what the part holds (`<stdin> (QEMU trace lines)`).
    public var name: String
    /// The input this stream's bytes were taken from (`<stdin>`), for reports; nil once the
    /// splitter found the whole input to be one part.
    public var splitFrom: String?
    /// The format its content is known to be in (set by whoever split it), so that readers
    /// need not detect it.
    public var formatName: String?
    public var knownSize: Int64? { reading ? size : nil }
    private let fd: Int32
    private var pending: [UInt8] = []
    private var size: Int64 = 0
    private var readOffset: Int64 = 0
    private var reading = false
    static let flushThreshold = 256 << 10

    public init(name: String, splitFrom: String?) throws {
        self.name = name
        self.splitFrom = splitFrom
        let dir = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(dir)/kvmscope-split-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw KVMScopeError.cannotWrite(path: dir, reason: KVMScopeError.systemMessage(errno))
        }
        _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
        self.fd = fd
        pending.reserveCapacity(Self.flushThreshold)
    }

    deinit { close(fd) }

    /// Appends bytes (only before the first read).
    public func append(_ bytes: UnsafeBufferPointer<UInt8>) throws {
        precondition(!reading, "SpooledByteStream: append after reading started")
        pending.append(contentsOf: bytes)
        if pending.count >= Self.flushThreshold { try flush() }
    }

    /// Empty lines standing for `count` lines that went elsewhere (so line numbers are kept).
    public func appendPlaceholders(_ count: Int) throws {
        guard count > 0 else { return }
        placeholderLines += count
        var left = count
        while left > 0 {
            let n = min(left, Self.flushThreshold)
            pending.append(contentsOf: repeatElement(0x0A, count: n))
            left -= n
            if pending.count >= Self.flushThreshold { try flush() }
        }
    }

    /// Empty lines appended by `appendPlaceholders` (readers count them as lines).
    public private(set) var placeholderLines = 0

    public func append(byte: UInt8) throws {
        pending.append(byte)
        if pending.count >= Self.flushThreshold { try flush() }
    }

    private func flush() throws {
        try pending.withUnsafeBytes { buf in
            var off = 0
            while off < buf.count {
                let n = pwrite(fd, buf.baseAddress! + off, buf.count - off, off_t(size) + off_t(off))
                if n > 0 { off += n; continue }
                if n < 0 && errno == EINTR { continue }
                throw KVMScopeError.cannotWrite(path: "temporary file for \(name)", reason: KVMScopeError.systemMessage(errno))
            }
        }
        size += Int64(pending.count)
        pending.removeAll(keepingCapacity: true)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if !reading {
            try flush()
            pending = []
            reading = true
        }
        while true {
            let n = pread(fd, buffer.baseAddress, buffer.count, off_t(readOffset))
            if n >= 0 { readOffset += Int64(n); return n }
            if errno == EINTR { continue }
            throw KVMScopeError.readFailed(path: name, reason: KVMScopeError.systemMessage(errno))
        }
    }
}
