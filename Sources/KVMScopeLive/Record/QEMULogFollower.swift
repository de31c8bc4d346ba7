import Foundation
import KVMScopeCore

/// Where record reads QEMU's trace lines from. Two ways, chosen before anything changes
/// (TraceLogSource.choose): point QEMU's log at staging files and back (QEMULogTail), or read
/// the regular file QEMU already logs to (this), which needs nothing restored.
protocol TraceLogSource: AnyObject {
    func start(_ monitor: QMPMonitor) throws
    func poll(_ monitor: QMPMonitor?, lines deliver: ([UInt8]) throws -> Void) throws
    func finish(lines deliver: ([UInt8]) throws -> Void) throws
    func remove()
}

extension QEMULogTail: TraceLogSource {}

/// QEMU's own log file read from its end as it grows: its `-D` file, the file behind its
/// stderr, or libvirt's per-domain log that virtlogd writes from QEMU's stderr pipe. virtlogd
/// rotates that file (NAME.log → NAME.log.0 at max_size, src/logging/log_handler.c): a new
/// inode at the path is followed from its start after the old one is read to its end; a file
/// that shrank was truncated and is read again from its start.
final class QEMULogFollower: TraceLogSource {
    let path: String
    private var fd: Int32 = -1
    private var inode: UInt64 = 0
    private var partial: [UInt8] = []

    init(path: String) { self.path = path }
    deinit { if fd >= 0 { close(fd) } }

    func start(_ monitor: QMPMonitor) throws {
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw KVMScopeError.cannotOpen(path: path, reason: KVMScopeError.systemMessage(errno)) }
        var st = stat(); fstat(fd, &st)
        inode = UInt64(st.st_ino)
        lseek(fd, 0, SEEK_END)
    }

    func poll(_ monitor: QMPMonitor?, lines deliver: ([UInt8]) throws -> Void) throws {
        guard fd >= 0 else { return }
        try drain(deliver)
        var now = stat()
        if stat(path, &now) == 0, UInt64(now.st_ino) != inode {
            // Rotated: the old file is complete; continue with the new one from its start.
            if !partial.isEmpty { try deliver(partial); partial = [] }
            let next = open(path, O_RDONLY | O_CLOEXEC)
            if next >= 0 { close(fd); fd = next; inode = UInt64(now.st_ino); try drain(deliver) }
            return
        }
        var st = stat(); fstat(fd, &st)
        if st.st_size < lseek(fd, 0, SEEK_CUR) { lseek(fd, 0, SEEK_SET); partial = [] }   // truncated
    }

    func finish(lines deliver: ([UInt8]) throws -> Void) throws {
        try poll(nil, lines: deliver)
        if !partial.isEmpty { try deliver(partial); partial = [] }
    }

    func remove() { if fd >= 0 { close(fd); fd = -1 } }

    private func drain(_ deliver: ([UInt8]) throws -> Void) throws {
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw KVMScopeError.readFailed(path: path, reason: KVMScopeError.systemMessage(errno)) }
            if n == 0 { return }
            var start = 0
            for i in 0..<n where chunk[i] == 0x0A {
                if partial.isEmpty { try deliver(Array(chunk[start..<i])) } else { partial += chunk[start..<i]; try deliver(partial); partial = [] }
                start = i + 1
            }
            partial += chunk[start..<n]
            if partial.count > 1 << 20 { try deliver(partial); partial = [] }
        }
    }
}
