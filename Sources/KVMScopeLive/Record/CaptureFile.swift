import Foundation
import KVMScopeCore

/// One stream of a capture written to disk: a single file, or segments of `segmentBytes`
/// keeping the last `keep` (SystemTap's `-S SIZE,COUNT`). `pin()` stops deleting old segments
/// (the flight recorder, once a failure is seen, keeps what led to it). A write error (the
/// output filesystem full, an I/O error) is thrown, and the recorder stops on it: the VM is
/// never made to wait for kvmscope's disk.
final class CaptureFile {
    let directory: String
    let base: String
    let ext: String
    let segmentBytes: Int?
    let keep: Int?
    private var fd: Int32 = -1
    private var written = 0
    private var segment = 0
    private(set) var names: [String] = []
    private(set) var droppedSegments = 0
    private(set) var droppedBytes: Int64 = 0
    private var sizes: [Int] = []
    private var pinned = false
    private var pending: [UInt8] = []

    init(directory: String, base: String, ext: String, segmentBytes: Int? = nil, keep: Int? = nil) {
        self.directory = directory; self.base = base; self.ext = ext
        self.segmentBytes = segmentBytes; self.keep = keep
    }

    deinit { if fd >= 0 { close(fd) } }

    var totalBytesKept: Int { sizes.reduce(0, +) }

    func pin() { pinned = true }

    /// The name of the first file (before anything is written).
    var firstName: String { name(for: 0) }

    private func name(for segment: Int) -> String {
        segmentBytes == nil ? "\(base).\(ext)" : String(format: "%@-%04d.%@", base, segment, ext)
    }

    private func open() throws {
        let n = name(for: segment)
        let path = (directory as NSString).appendingPathComponent(n)
        fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw KVMScopeError.cannotWrite(path: path, reason: KVMScopeError.systemMessage(errno)) }
        names.append(n); sizes.append(0); written = 0
    }

    /// Buffers; `flush` writes. Segments break only between whole writes (lines).
    func append(_ bytes: [UInt8]) throws {
        pending += bytes
        if pending.count >= 1 << 16 { try flush() }
    }

    func append(_ text: String) throws { try append(Array(text.utf8)) }

    func flush() throws {
        guard !pending.isEmpty else { if fd < 0 { try open() }; return }
        if fd < 0 { try open() }
        if let limit = segmentBytes, written > 0, written + pending.count > limit { try rotate() }
        var off = 0
        while off < pending.count {
            let n = pending[off...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let path = (directory as NSString).appendingPathComponent(names.last ?? base)
                throw KVMScopeError.cannotWrite(path: path, reason: KVMScopeError.systemMessage(errno))
            }
            off += n
        }
        written += pending.count
        sizes[sizes.count - 1] = written
        pending.removeAll(keepingCapacity: true)
    }

    private func rotate() throws {
        close(fd); fd = -1
        segment += 1
        try open()
        if let keep, !pinned {
            while names.count > keep {
                let old = names.removeFirst()
                droppedBytes += Int64(sizes.removeFirst())
                droppedSegments += 1
                unlink((directory as NSString).appendingPathComponent(old))
            }
        }
    }

    func finish() throws {
        try flush()
        if fd >= 0 { fsync(fd); close(fd); fd = -1 }
    }
}
