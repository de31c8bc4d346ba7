import Foundation
import Testing
import KVMScopeTestSupport

/// `kvmscope watch` run as a user runs it: usage errors in one line with exit 2, /metrics over
/// real HTTP beside a client that never finishes its request, SIGTERM ends it with 0.
@Suite(.serialized) struct WatchCLITests {
    @Test func usageErrorsAreOneLineAndExit2() throws {
        // A port someone already listens on.
        let taken = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(taken) }
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(taken, $0, len) } }
        listen(taken, 1)
        _ = withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(taken, $0, &len) } }
        let port = Int(UInt16(bigEndian: sa.sin_port))

        for (args, words) in [
            (["watch"], "give at least one --qmp PATH|GLOB (e.g. --qmp '/run/kvmscope/*.qmp') or --libvirt URI"),
            (["watch", "--qmp", "/run/x.qmp", "--libvirt-passthrough"], "--libvirt-passthrough goes with --libvirt URI"),
            (["watch", "--libvirt-read-only", "--qmp", "/run/x.qmp"], "--libvirt-read-only goes with --libvirt URI"),
            (["watch", "--libvirt", "test:///default", "--libvirt-read-only", "--libvirt-passthrough"], "--libvirt-passthrough needs a read-write"),
            (["watch", "--qmp", "/run/x.qmp", "--listen", "nonsense"], "--listen 'nonsense': no port"),
            (["watch", "--qmp", "/run/x.qmp", "--listen", "127.0.0.1:99999"], "the port must be 0-65535"),
            (["watch", "--qmp", "/run/x.qmp", "--listen", "127.0.0.1:\(port)"], "already in use"),
            (["watch", "--qmp", "/run/x.qmp", "--interval", "0"], "--interval '0'"),
            (["watch", "--qmp", "tcp:host", "--listen", "127.0.0.1:0"], "not a QMP address"),
            (["watch", "--qmp", "/run/x.qmp", "--events", "/nonexistent-dir/e.jsonl", "--listen", "127.0.0.1:0"], "cannot open the event log"),
        ] {
            let r = try CLIRunner.run(args, timeout: 30)
            #expect(r.status == 2, "\(args): exit \(r.status)")
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(words), "\(args): \(r.stderr)")
        }
    }

    /// The binary against libvirt's own test driver (in-process: no daemon): its running
    /// domain `test` is watched, and the driver's lack of QMP events is said once.
    @Test func watchesTheDomainsOfARealLibvirtConnection() throws {
        let dir = TempDir()
        let p = Process()
        p.executableURL = CLIRunner.binary
        p.arguments = ["watch", "--libvirt", "test:///default", "--listen", "127.0.0.1:0", "--interval", "0.2", "--events", dir.path + "/events.jsonl"]
        let errPath = dir.path + "/stderr"
        FileManager.default.createFile(atPath: errPath, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { p.terminate() } }
        var port = 0
        #expect(eventually(30) {
            let text = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            guard let r = text.range(of: #"http://127\.0\.0\.1:[0-9]+"#, options: .regularExpression) else { return false }
            port = Int(text[r].split(separator: ":").last ?? "") ?? 0
            return port > 0
        })
        #expect(eventually(30) { (try? HTTPProbe.get(port, "/metrics"))?.body.contains(#"kvmscope_vm_running{domain="test"} 1.0"#) == true })
        let body = try HTTPProbe.get(port, "/metrics").body
        #expect(body.contains(#"kvmscope_watch_libvirt_up{uri="test:///default"} 1.0"#))
        #expect(body.contains(#"kvmscope_watch_libvirt_qmp_events{uri="test:///default"} 0.0"#))
        #expect(body.contains(#"kvmscope_vm_qmp_up{domain="test"} 1.0"#))
        kill(p.processIdentifier, SIGTERM)
        #expect(eventually(15) { !p.isRunning }, "SIGTERM ends watch")
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let stderr = try String(contentsOfFile: errPath, encoding: .utf8)
        #expect(stderr.components(separatedBy: "this libvirt driver has no QMP events").count == 2, "said once: \(stderr)")
        let events = try String(contentsOfFile: dir.path + "/events.jsonl", encoding: .utf8)
        #expect(events.contains(#""event":"connected""#) && events.contains(#""qmp":"libvirt:test?connect=test:///default""#), "\(events)")
    }

    @Test func helpShowsRealExamples() throws {
        let r = try CLIRunner.run(["watch", "--help"], timeout: 30)
        #expect(r.status == 0)
        #expect(r.stdout.contains("kvmscope watch --qmp '/run/kvmscope/*.qmp'"))
        #expect(r.stdout.contains("kvmscope_vm_paused{domain,reason=\"io-error\"}"))
        #expect(r.stdout.contains("-mon chardev=kvmscope,mode=control"))
        #expect(r.stdout.contains("kvmscope watch --libvirt qemu:///system --events -"))
        // ArgumentParser wraps option help to the terminal's width: compare with the breaks taken out.
        let flat = r.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(flat.contains("--libvirt-passthrough") && flat.contains("libvirt marks each tainted (custom-monitor) until it shuts down"))
        #expect(try CLIRunner.run(["--help"], timeout: 30).stdout.contains("watch"))
    }

    @Test func servesMetricsOverHTTPAndStopsOnSIGTERM() throws {
        let dir = TempDir()
        let vm = try FakeQMPServer(path: dir.path + "/vm1.qmp", behaviour: .qemu, replies: FakeVM.replies(name: "web1"))
        defer { vm.stop() }
        let p = Process()
        p.executableURL = CLIRunner.binary
        p.arguments = ["watch", "--qmp", dir.path + "/*.qmp", "--listen", "127.0.0.1:0", "--interval", "0.2", "--events", dir.path + "/events.jsonl"]
        let errPath = dir.path + "/stderr"
        FileManager.default.createFile(atPath: errPath, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { p.terminate() } }
        var port = 0
        #expect(eventually(30) {
            let text = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            guard let r = text.range(of: #"http://127\.0\.0\.1:[0-9]+"#, options: .regularExpression) else { return false }
            port = Int(text[r].split(separator: ":").last ?? "") ?? 0
            return port > 0
        })
        // A client that opens a connection and never finishes its request holds nothing up.
        let stuck = try HTTPProbe.connect(port)
        defer { close(stuck) }
        _ = "GET /metr".withCString { send(stuck, $0, strlen($0), 0) }

        #expect(eventually(30) { (try? HTTPProbe.get(port, "/metrics"))?.body.contains(#"kvmscope_vm_qmp_up{domain="web1"} 1.0"#) == true })
        let metrics = try HTTPProbe.get(port, "/metrics")
        #expect(metrics.head.hasPrefix("HTTP/1.1 200"))
        #expect(metrics.head.lowercased().contains("content-type: text/plain; version=0.0.4; charset=utf-8"))
        #expect(metrics.body.contains(#"kvmscope_block_operations_total{domain="web1",device="drive0",operation="read"} 120"#))
        let openMetrics = try HTTPProbe.get(port, "/metrics", extraHeaders: "Accept: application/openmetrics-text; version=1.0.0\r\n")
        #expect(openMetrics.head.hasPrefix("HTTP/1.1 200") && openMetrics.body.contains("kvmscope_watch_vms 1.0"))
        #expect(openMetrics.head.lowercased().contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8")
                && openMetrics.body.hasSuffix("# EOF\n"), "an OpenMetrics scraper gets OpenMetrics")
        if let problems = try OpenMetricsTests.parserProblems(openMetrics.body) { Issue.record("OpenMetrics parser: \(problems)") }
        #expect(try HTTPProbe.get(port, "/nothing").head.hasPrefix("HTTP/1.1 404"))
        #expect(try HTTPProbe.get(port, "/metrics", method: "POST").head.hasPrefix("HTTP/1.1 405"))
        let head = try HTTPProbe.get(port, "/metrics", method: "HEAD")
        #expect(head.head.hasPrefix("HTTP/1.1 200") && head.body.isEmpty)

        kill(p.processIdentifier, SIGTERM)
        #expect(eventually(15) { !p.isRunning }, "SIGTERM ends watch")
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let events = try String(contentsOfFile: dir.path + "/events.jsonl", encoding: .utf8)
        #expect(events.contains(#""event":"connected""#) && events.contains(#""domain":"web1""#))
    }
}

/// A plain HTTP/1.1 client on a socket, reading to the server's close (`Connection: close`).
enum HTTPProbe {
    static func connect(_ port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = UInt16(port).bigEndian
        sa.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func get(_ port: Int, _ path: String, method: String = "GET", extraHeaders: String = "") throws -> (head: String, body: String) {
        let fd = try connect(port)
        defer { close(fd) }
        let request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(extraHeaders)Connection: close\r\nContent-Length: 0\r\n\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var data = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            data += chunk[..<n]
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { return (text, "") }
        return (String(text[..<split.lowerBound]), String(text[split.upperBound...]))
    }
}
