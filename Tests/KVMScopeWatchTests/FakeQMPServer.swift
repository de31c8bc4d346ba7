import Foundation

/// A QMP peer on a real Unix socket, one client at a time as QEMU serves a monitor
/// (chardev/char-socket.c): a well-behaved QEMU with scripted replies, a peer that sends
/// garbage, or one that accepts and never greets. Every wait is a bounded poll(2).
final class FakeQMPServer: @unchecked Sendable {
    /// `hung`: greets and negotiates, then answers nothing (a QEMU whose main loop is stuck).
    enum Behaviour { case qemu, garbage, stall, hung }

    static let greeting = #"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}"#

    let path: String
    let behaviour: Behaviour
    private let lock = NSLock()
    private var replies: [String: String]          // command → JSON of its `return`
    private var pendingEvents: [String] = []
    private var stopRequested = false
    private var dropClient = false
    private var listenFD: Int32 = -1
    private let finished = DispatchSemaphore(value: 0)
    private(set) var connections = 0
    /// Every command received with its arguments (JSON text), in order.
    private var received: [(command: String, arguments: String)] = []
    var commands: [(command: String, arguments: String)] { lock.withLock { received } }

    init(path: String, behaviour: Behaviour, replies: [String: String] = [:]) throws {
        self.path = path
        self.behaviour = behaviour
        self.replies = replies
        unlink(path)
        listenFD = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var sa = sockaddr_un()
        sa.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &sa.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let r = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listenFD, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard r == 0, listen(listenFD, 8) == 0 else { throw POSIXError(.EADDRINUSE) }
        let t = Thread { [self] in serve(); finished.signal() }
        t.start()
    }

    func setReply(_ command: String, _ json: String) { lock.withLock { replies[command] = json } }
    /// Sends an event to the connected client (`{"event": NAME, "data": DATA, "timestamp": now}`).
    func sendEvent(_ name: String, data: String = "{}") {
        let now = Date().timeIntervalSince1970
        let line = #"{"timestamp": {"seconds": \#(Int(now)), "microseconds": \#(Int((now - now.rounded(.down)) * 1e6))}, "event": "\#(name)", "data": \#(data)}"#
        lock.withLock { pendingEvents.append(line) }
    }
    /// QEMU exiting: SHUTDOWN, then the monitor closes and the socket file is removed.
    func shutDownVM() {
        sendEvent("SHUTDOWN", data: #"{"guest": true, "reason": "guest-shutdown"}"#)
        Thread.sleep(forTimeInterval: 0.3)
        stop()
    }

    /// Closes the monitor and removes the socket file; a second call does nothing.
    func stop() {
        let first = lock.withLock { () -> Bool in defer { stopRequested = true }; return !stopRequested }
        guard first else { return }
        _ = finished.wait(timeout: .now() + 5)
        unlink(path)
    }

    private var stopping: Bool { lock.withLock { stopRequested } }

    private func serve() {
        defer { close(listenFD) }
        var held: [Int32] = []
        defer { for fd in held { close(fd) } }
        while !stopping {
            var p = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) == 1 else { continue }
            let fd = accept(listenFD, nil, nil)
            guard fd >= 0 else { continue }
            lock.withLock { connections += 1 }
            switch behaviour {
            case .stall:
                held.append(fd)                                    // accepted, never a byte
            case .garbage:
                write(fd, "\u{1b}[2J this is not QMP, it is a serial console\r\nlogin: ")
                close(fd)
            case .qemu, .hung:
                session(fd)
                close(fd)
            }
        }
    }

    private func session(_ fd: Int32) {
        write(fd, Self.greeting + "\r\n")
        var buffer: [UInt8] = []
        while !stopping {
            for line in lock.withLock({ () -> [String] in defer { pendingEvents = [] }; return pendingEvents }) { write(fd, line + "\r\n") }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 20) == 1 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { return }
            buffer += chunk[..<n]
            while let nl = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<nl]); buffer.removeSubrange(...nl)
                guard let obj = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                      let command = obj["execute"] as? String else { continue }
                let id = (obj["id"] as? String).map { #", "id": "\#($0)""# } ?? ""
                let args = (obj["arguments"]).flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]) }
                lock.withLock { received.append((command, args.map { String(decoding: $0, as: UTF8.self) } ?? "")) }
                if behaviour == .hung && command != "qmp_capabilities" { continue }
                if let r = lock.withLock({ command == "qmp_capabilities" ? "{}" : replies[command] }) {
                    write(fd, #"{"return": \#(r)\#(id)}"# + "\r\n")
                } else {
                    write(fd, #"{"error": {"class": "CommandNotFound", "desc": "The command \#(command) has not been found"}\#(id)}"# + "\r\n")
                }
            }
        }
    }

    private func write(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }
}

/// Replies of a lab-like VM: one virtio-blk disk `drive0` (werror=stop), QEMU 7.2's field names.
enum FakeVM {
    static func replies(name: String?, status: String = "running", ioStatus: String = "ok",
                        readOps: Int = 120, writeOps: Int = 40, failedWrites: Int = 0, readNs: Int = 2_500_000_000) -> [String: String] {
        [
            "query-name": name.map { #"{"name": "\#($0)"}"# } ?? "{}",
            "query-status": #"{"running": \#(status == "running"), "singlestep": false, "status": "\#(status)"}"#,
            "query-block": ##"[{"device": "drive0", "qdev": "/machine/peripheral-anon/device[0]/virtio-backend", "locked": false, "removable": false, "io-status": "\##(ioStatus)", "inserted": {"node-name": "#block123", "drv": "raw"}}]"##,
            "query-blockstats": ##"[{"device": "drive0", "node-name": "#block123", "qdev": "/machine/peripheral-anon/device[0]/virtio-backend", "stats": {"rd_bytes": \##(readOps * 4096), "wr_bytes": \##(writeOps * 4096), "zone_append_bytes": 0, "unmap_bytes": 0, "rd_operations": \##(readOps), "wr_operations": \##(writeOps), "zone_append_operations": 0, "flush_operations": 3, "unmap_operations": 0, "rd_total_time_ns": \##(readNs), "wr_total_time_ns": 800000000, "zone_append_total_time_ns": 0, "flush_total_time_ns": 1000, "unmap_total_time_ns": 0, "failed_rd_operations": 0, "failed_wr_operations": \##(failedWrites), "failed_zone_append_operations": 0, "failed_flush_operations": 0, "failed_unmap_operations": 0, "invalid_rd_operations": 0, "invalid_wr_operations": 0, "invalid_zone_append_operations": 0, "invalid_flush_operations": 0, "invalid_unmap_operations": 0, "rd_merged": 0, "wr_merged": 0, "account_invalid": true, "account_failed": true, "idle_time_ns": 1000, "timed_stats": []}}]"##,
        ]
    }
}
