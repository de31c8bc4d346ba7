import Foundation
import Testing
import KVMScopeTestSupport

/// `kvmscope watch --config FILE` run as a service runs it: a bad file at start is a usage
/// error in one line; SIGHUP (systemctl reload) applies a changed file and refuses a bad one.
@Suite(.serialized) struct WatchReloadCLITests {
    @Test func aBadConfigFileAtStartIsOneLineAndExit2() throws {
        let dir = TempDir()
        let path = dir.path + "/watch.toml"
        FileManager.default.createFile(atPath: path, contents: Data("qmp = [\"/run/x.qmp\"]\nhost_kernel = true\n".utf8))
        let r = try CLIRunner.run(["watch", "--config", path, "--listen", "127.0.0.1:0"], timeout: 30)
        #expect(r.status == 2)
        #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains("--config \(path): unknown key 'host_kernel'"), "\(r.stderr)")
        let none = try CLIRunner.run(["watch", "--config", dir.path + "/none.toml"], timeout: 30)
        #expect(none.status == 2 && none.stderr.contains("No such file"), "\(none.stderr)")
    }

    @Test func sighupAppliesAChangedFileAndRefusesABadOne() throws {
        let dir = TempDir()
        let a = try FakeQMPServer(path: dir.path + "/a.qmp", behaviour: .qemu, replies: FakeVM.replies(name: "vm-a"))
        let b = try FakeQMPServer(path: dir.path + "/b.qmp", behaviour: .qemu, replies: FakeVM.replies(name: "vm-b"))
        defer { a.stop(); b.stop() }
        let config = dir.path + "/watch.toml"
        func setConfig(_ text: String) { FileManager.default.createFile(atPath: config, contents: Data(text.utf8)) }
        setConfig("qmp = [\"\(dir.path)/a.qmp\"]\ninterval = 0.2\n")

        let p = Process()
        p.executableURL = CLIRunner.binary
        p.arguments = ["watch", "--config", config, "--listen", "127.0.0.1:0"]
        let errPath = dir.path + "/stderr"
        FileManager.default.createFile(atPath: errPath, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { p.terminate() } }
        func stderr() -> String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }
        var port = 0
        #expect(eventually(30) {
            guard let r = stderr().range(of: #"http://127\.0\.0\.1:[0-9]+"#, options: .regularExpression) else { return false }
            port = Int(stderr()[r].split(separator: ":").last ?? "") ?? 0
            return port > 0
        })
        func metrics() -> String { (try? HTTPProbe.get(port, "/metrics"))?.body ?? "" }
        #expect(eventually(30) { metrics().contains(#"kvmscope_vm_qmp_up{domain="vm-a"} 1.0"#) })

        setConfig("qmp = [\"\(dir.path)/a.qmp\", \"\(dir.path)/b.qmp\"]\ninterval = 0.2\n")
        kill(p.processIdentifier, SIGHUP)
        #expect(eventually(30) { metrics().contains(#"kvmscope_vm_qmp_up{domain="vm-b"} 1.0"#) }, "\(stderr())")
        #expect(metrics().contains(#"kvmscope_watch_config_reloads_total{result="ok"} 1"#))

        setConfig("qmp = [\"\(dir.path)/b.qmp\"\n")          // cut off: not TOML
        kill(p.processIdentifier, SIGHUP)
        #expect(eventually(30) { metrics().contains(#"kvmscope_watch_config_reloads_total{result="failed"} 1"#) })
        #expect(metrics().contains(#"kvmscope_vm_qmp_up{domain="vm-a"} 1.0"#), "the old configuration stays")
        let failures = stderr().split(separator: "\n").filter { $0.contains("reload failed") }
        #expect(failures.count == 1 && failures[0].contains("keeping the configuration in use") && failures[0].contains(config), "\(stderr())")

        kill(p.processIdentifier, SIGTERM)
        #expect(eventually(15) { !p.isRunning }, "SIGTERM ends watch")
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
    }
}
