import Foundation

/// Random access to a trace.dat. Both versions point into the file by absolute offsets (v6:
/// the per-CPU data after the header; v7: every section), so the reader needs `pread`, not a
/// stream. A regular file is read where it is; standard input, a pipe or a compressed copy
/// (`trace.dat.zst`, decompressed by FileByteSource) is first copied to an unlinked temporary
/// file — disk, not memory, holds it, and nothing is left behind.
///
/// Every read is checked against the file's size: an offset or size from the file that points
/// outside it is a `TraceDatError.outOfBounds`, never a short read taken as data.
public final class TraceDatInput {
    public let name: String
    public let size: UInt64
    /// The input was copied to a temporary file first (stdin, pipe, compressed).
    public let spooled: Bool
    private let fd: Int32

    /// Opens `stream`: reopens `path` when it is a regular, uncompressed file (no copy),
    /// otherwise copies the stream's remaining bytes (all of it, from where it stands) to a
    /// temporary file.
    public init(stream: ByteStream, regularFilePath: String?) throws {
        name = stream.name
        if let path = regularFilePath {
            let f = open(path, O_RDONLY | O_CLOEXEC)
            guard f >= 0 else { throw KVMScopeError.cannotOpen(path: path, reason: KVMScopeError.systemMessage(errno)) }
            fd = f
            spooled = false
        } else {
            fd = try Self.spool(stream)
            spooled = true
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw KVMScopeError.readFailed(path: name, reason: KVMScopeError.systemMessage(e))
        }
        size = UInt64(max(st.st_size, 0))
    }

    /// `stream` reads `source`: when that is a regular, uncompressed file named by a path it is
    /// reopened and read in place; anything else (stdin — even redirected from a file, whose
    /// first bytes detection has already consumed —, a pipe, a compressed file) is copied.
    public convenience init(stream: ByteStream, source: ByteStream?) throws {
        let file = (source ?? stream) as? FileByteSource
        let path = file.flatMap { $0.isRegularFile && $0.compression == nil && $0.path != "-" ? $0.path : nil }
        try self.init(stream: stream, regularFilePath: path)
    }

    deinit { close(fd) }

    private static func spool(_ stream: ByteStream) throws -> Int32 {
        let dir = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(dir)/kvmscope-tracedat-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw KVMScopeError.cannotWrite(path: dir, reason: KVMScopeError.systemMessage(errno)) }
        _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        do {
            while true {
                let n = try chunk.withUnsafeMutableBytes { try stream.read(into: $0) }
                if n == 0 { break }
                var done = 0
                while done < n {
                    let w = chunk.withUnsafeBytes { write(fd, $0.baseAddress! + done, n - done) }
                    if w < 0 {
                        if errno == EINTR { continue }
                        throw KVMScopeError.cannotWrite(path: dir, reason: KVMScopeError.systemMessage(errno))
                    }
                    done += w
                }
            }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Exactly `count` bytes at `offset`, or `outOfBounds` (what: the thing being read, for the message).
    public func read(at offset: UInt64, count: Int, what: @autoclosure () -> String) throws -> [UInt8] {
        guard count >= 0, offset <= size, UInt64(count) <= size - offset else {
            throw TraceDatError.outOfBounds(what: what(), offset: offset, count: UInt64(max(count, 0)), fileSize: size)
        }
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try read(into: $0, at: offset) }
        return out
    }

    /// Fills `buffer` from `offset` (already bounds-checked by the caller or here).
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        guard offset <= size, UInt64(buffer.count) <= size - offset else {
            throw TraceDatError.outOfBounds(what: "data", offset: offset, count: UInt64(buffer.count), fileSize: size)
        }
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw KVMScopeError.readFailed(path: name, reason: KVMScopeError.systemMessage(errno))
            }
            // The file shrank under us (it is being rewritten): a clear error, not a spin.
            if n == 0 { throw TraceDatError.truncated(what: "data", offset: offset + UInt64(done)) }
            done += n
        }
    }
}

/// Why a trace.dat cannot be read. One message each, naming what was being read and where.
public enum TraceDatError: Error, Equatable, CustomStringConvertible {
    case notTraceDat
    case unsupportedVersion(String)
    case outOfBounds(what: String, offset: UInt64, count: UInt64, fileSize: UInt64)
    case truncated(what: String, offset: UInt64)
    case malformed(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .notTraceDat:
            return "not a trace-cmd trace.dat file (no \\x17\\x08\\x44tracing magic)"
        case let .unsupportedVersion(v):
            return "trace.dat version '\(v)': kvmscope reads versions 6 and 7 (trace-cmd 2.x and 3.x)"
        case let .outOfBounds(what, offset, count, fileSize):
            return "trace.dat is truncated or corrupt: \(what) needs \(count) bytes at offset \(offset), but the file has \(fileSize) bytes"
        case let .truncated(what, offset):
            return "trace.dat ends inside \(what) (offset \(offset))"
        case let .malformed(detail):
            return "trace.dat is corrupt: \(detail)"
        case let .unsupported(detail):
            return "trace.dat: \(detail)"
        }
    }
}
