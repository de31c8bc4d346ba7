import Foundation
import KVMScopeCore

/// QEMU's log (where the log trace backend writes) pointed at files kvmscope owns, and read
/// as QEMU writes them.
///
/// QEMU writes a regular file, so it never waits for kvmscope. Two staging files take turns:
/// when the one QEMU writes passes `switchBytes`, HMP `logfile` points QEMU at the other
/// (util/log.c closes the old FILE — flushing it — before opening the new one, in append mode
/// after the first open), the old one is read to its end and emptied for its next turn. So the
/// staging space is bounded however long the recording runs.
final class QEMULogTail {
    let directory: String
    private let paths: [String]
    private var current = 0
    private var readFD: Int32 = -1
    private var partial: [UInt8] = []
    let switchBytes: Int
    private(set) var bytesRead: Int64 = 0

    /// Creates the staging files in `directory`, owned by QEMU's user and group (QEMU opens
    /// them itself, as that user).
    init(directory: String, owner: UInt32?, group: UInt32? = nil, switchBytes: Int = 4 << 20) throws {
        self.directory = directory
        self.switchBytes = switchBytes
        paths = ["a", "b"].map { (directory as NSString).appendingPathComponent("qemu-log-\($0)") }
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw KVMScopeError.cannotWrite(path: directory, reason: KVMScopeError.systemMessage(errno))
        }
        for p in paths {
            let fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw KVMScopeError.cannotWrite(path: p, reason: KVMScopeError.systemMessage(errno)) }
            if let owner, owner != getuid() { _ = fchown(fd, owner, group ?? gid_t(UInt32.max)) }
            close(fd)
        }
        if let owner, owner != getuid() { _ = chown(directory, owner, group ?? gid_t(UInt32.max)) }
    }

    deinit { if readFD >= 0 { close(readFD) } }

    /// Points QEMU's log at the first staging file.
    func start(_ monitor: QMPMonitor) throws {
        try Self.pointLog(monitor, at: paths[0])
        readFD = open(paths[0], O_RDONLY | O_CLOEXEC)
        guard readFD >= 0 else { throw KVMScopeError.cannotOpen(path: paths[0], reason: KVMScopeError.systemMessage(errno)) }
    }

    /// HMP `logfile PATH`; HMP prints an error instead of failing the QMP command.
    static func pointLog(_ monitor: QMPMonitor, at path: String) throws {
        let said = try monitor.humanMonitorCommand("logfile \(path)").trimmingCharacters(in: .whitespacesAndNewlines)
        guard said.isEmpty else {
            throw QMPError.commandFailed(command: "logfile \(path)", errorClass: "HMP",
                                         desc: said + (said.contains("ermission") ? " (QEMU runs as another user, or AppArmor/SELinux confines it: give -o a directory QEMU may write)" : ""))
        }
    }

    /// The staging file QEMU writes first (for the access check before anything changes).
    var firstFile: String { paths[0] }

    /// Complete lines QEMU wrote since the last call (each without its newline), switching
    /// staging files when the current one is full.
    func poll(_ monitor: QMPMonitor?, lines deliver: ([UInt8]) throws -> Void) throws {
        let end = try drain(deliver)
        guard let monitor, end >= switchBytes else { return }
        let next = 1 - current
        try Self.pointLog(monitor, at: paths[next])
        // QEMU has closed (and flushed) the old file: read it to its end, then empty it.
        _ = try drain(deliver)
        if !partial.isEmpty { try deliver(partial); partial = [] }
        close(readFD)
        truncate(paths[current], 0)
        current = next
        readFD = open(paths[current], O_RDONLY | O_CLOEXEC)
        guard readFD >= 0 else { throw KVMScopeError.cannotOpen(path: paths[current], reason: KVMScopeError.systemMessage(errno)) }
    }

    /// The rest, at the end of recording (after QEMU's log was pointed back).
    func finish(lines deliver: ([UInt8]) throws -> Void) throws {
        guard readFD >= 0 else { return }
        _ = try drain(deliver)
        if !partial.isEmpty { try deliver(partial); partial = [] }
    }

    /// Removes the staging files.
    func remove() {
        for p in paths { unlink(p) }
        rmdir(directory)
    }

    private func drain(_ deliver: ([UInt8]) throws -> Void) throws -> Int {
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw KVMScopeError.readFailed(path: paths[current], reason: KVMScopeError.systemMessage(errno)) }
            if n == 0 { break }
            bytesRead += Int64(n)
            var start = 0
            for i in 0..<n where chunk[i] == 0x0A {
                if partial.isEmpty { try deliver(Array(chunk[start..<i])) } else { partial += chunk[start..<i]; try deliver(partial); partial = [] }
                start = i + 1
            }
            partial += chunk[start..<n]
            if partial.count > 1 << 20 { try deliver(partial); partial = [] }   // no newline in 1 MiB: not a log line
        }
        return Int(lseek(readFD, 0, SEEK_CUR))
    }
}
