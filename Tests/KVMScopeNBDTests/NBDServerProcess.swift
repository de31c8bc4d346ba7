import Foundation
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeFaults
@testable import KVMScopeNBD

/// `kvmscope nbd serve` as a separate process, as a user runs it, so that tests can measure what
/// the server costs (VmRSS/VmHWM of its own process) and what it logs. KVMSCOPE_NBD_TEST_BINARY
/// points the tests at another build (to check that they fail on an older server).
final class NBDServerProcess {
    let dir = TempDir()
    let image: String
    let process = Process()
    let port: Int
    /// The first URI the server printed on stdout.
    let uri: String
    /// Every URI it printed at start-up (TCP, then the UNIX socket), as read with the first.
    let uris: [String]
    private let stderrPath: String
    private var stopped = false

    static var binary: String {
        ProcessInfo.processInfo.environment["KVMSCOPE_NBD_TEST_BINARY"] ?? CLIRunner.binary.path
    }

    /// - fileLimit: RLIMIT_NOFILE for the server (`ulimit -n`), to reach EMFILE on purpose.
    /// - directory: the server's working directory (relative paths in `arguments` are its).
    init(size: Int = 64 << 20, arguments: [String] = [], fileLimit: Int? = nil, directory: String? = nil) throws {
        image = dir.image("disk.img", size: size, fill: true)
        stderrPath = dir.path + "/server.stderr"
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        let serve = [Self.binary, "nbd", "serve", image, "--port", "0"] + arguments
        if let fileLimit {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "ulimit -n \(fileLimit) && exec \"$0\" \"$@\""] + serve
        } else {
            process.executableURL = URL(fileURLWithPath: serve[0])
            process.arguments = Array(serve.dropFirst())
        }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // The first stdout line is the URI with the real port (nil if the server did not start).
        var line = Data()
        let reader = out.fileHandleForReading
        let deadline = Date().addingTimeInterval(20)
        while !line.contains(UInt8(ascii: "\n")) && Date() < deadline {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let uri = String(decoding: line, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
        // nbd://HOST:PORT, then /EXPORT when the default export has a name.
        let authority = uri.split(separator: "/", omittingEmptySubsequences: false).dropFirst(2).first ?? ""
        guard let p = authority.split(separator: ":").last.flatMap({ Int($0) }), uri.hasPrefix("nbd://") || uri.hasPrefix("nbds://") else {
            process.terminate()
            throw KVMScopeError.cannotOpen(path: "nbd server", reason: "server did not start: '\(uri)' \(String(decoding: FileManager.default.contents(atPath: stderrPath) ?? Data(), as: UTF8.self))")
        }
        port = p
        self.uri = uri
        uris = String(decoding: line, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    deinit { if !stopped { _ = stop() } }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var stderr: String { String(decoding: FileManager.default.contents(atPath: stderrPath) ?? Data(), as: UTF8.self) }
    func stderrLines(containing s: String) -> [Substring] { stderr.split(separator: "\n").filter { $0.contains(s) } }

    /// A field of /proc/PID/status in MiB (VmRSS: now, VmHWM: the peak so far).
    func memoryMiB(_ field: String = "VmHWM") -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }),
              let kB = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) else { return nil }
        return kB / 1024
    }

    /// utime + stime of the server so far, in clock ticks (/proc/PID/stat fields 14 and 15).
    var cpuTicks: Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); utime is field 14, stime 15.
        guard fields.count > 13, let u = Int(fields[11]), let s = Int(fields[12]) else { return nil }
        return u + s
    }

    /// SIGTERM, then waits up to `timeout` seconds; returns the seconds it took, nil if it did not exit.
    func stop(timeout: Double = 10) -> Double? {
        stopped = true
        guard process.isRunning else { return 0 }
        let t0 = Date()
        kill(pid, SIGTERM)
        while process.isRunning && Date().timeIntervalSince(t0) < timeout { usleep(10_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return Date().timeIntervalSince(t0)
    }
}

/// A client that sends without ever reading (non-blocking socket).
final class FloodClient {
    let fd: Int32
    /// Connects and (unless `negotiate` is false) picks the default export with NBD_OPT_GO.
    init(port: Int, negotiate: Bool = true) throws {
        let c = try NBDHostileClientTests.RawClient(port: port)
        if negotiate && !c.negotiate() { throw KVMScopeError.cannotOpen(path: "nbd server", reason: "negotiation failed") }
        // Keep the descriptor beyond the RawClient (its deinit closes it).
        fd = dup(c.fd)
    }

    static func request(_ type: NBD.Command, offset: UInt64, length: UInt32, cookie: UInt64) -> [UInt8] {
        typealias C = NBDHostileClientTests.RawClient
        return C.be(NBD.requestMagic) + C.be(UInt16(0)) + C.be(type.rawValue) + C.be(cookie) + C.be(offset) + C.be(length)
    }
    deinit { close(fd) }

    /// Sends `bytes` until all are out or `seconds` have passed; returns how many went out.
    @discardableResult
    func send(_ bytes: [UInt8], within seconds: Double) -> Int {
        var sent = 0
        let deadline = Date().addingTimeInterval(seconds)
        while sent < bytes.count && Date() < deadline {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            if n > 0 { sent += n; continue }
            if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR { break }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&p, 1, 50)
        }
        return sent
    }
}
