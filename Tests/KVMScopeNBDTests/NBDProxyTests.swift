import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeNBD

/// A server run in the background for a test (qemu-nbd, nbdkit, `kvmscope nbd serve`), ready
/// once its UNIX socket exists; SIGTERM and a wait when the test ends.
final class BackgroundPeer {
    let process = Process()
    let stderrPath: String
    let socket: String
    /// nbdkit run from the test runner ignores SIGTERM (the runner's blocked signals are
    /// inherited, and nbdkit's handler never runs), so its peers are stopped with SIGKILL.
    var stopSignal = SIGTERM

    init(_ executable: String, _ args: [String], socket: String, stderrPath: String) throws {
        self.socket = socket
        self.stderrPath = stderrPath
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = args
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: socket) && process.isRunning && Date() < deadline { usleep(20_000) }
        guard FileManager.default.fileExists(atPath: socket) else {
            stop()
            throw NBDClientError("\(executable) did not start: \(stderr)")
        }
    }

    var stderr: String { String(decoding: FileManager.default.contents(atPath: stderrPath) ?? Data(), as: UTF8.self) }
    var uri: String { "nbd+unix:///?socket=\(socket)" }

    func stop(signal: Int32? = nil) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, signal ?? stopSignal)
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// `kvmscope nbd serve --upstream` and `kvmscope io nbd://…` with real upstreams: qemu-nbd
/// serving a qcow2, nbdkit's memory plugin (with its log, error, delay and nozero filters).
@Suite(.serialized) struct NBDProxyTests {
    let dir = TempDir()

    func nbdkit(_ args: [String], name: String = "up") throws -> BackgroundPeer? {
        guard let nbdkit = QemuTools.path("nbdkit") else {
            Issue.record("nbdkit not found: apt-get install -y nbdkit")
            return nil
        }
        let sock = dir.path + "/\(name).sock"
        let peer = try BackgroundPeer(nbdkit, ["-f", "-U", sock] + args, socket: sock, stderrPath: dir.path + "/\(name).stderr")
        peer.stopSignal = SIGKILL
        return peer
    }

    func kvmscopeProxy(_ upstream: String, _ extra: [String] = [], name: String = "k") throws -> BackgroundPeer {
        let sock = dir.path + "/\(name).sock"
        return try BackgroundPeer(CLIRunner.binary.path, ["nbd", "serve", "--upstream", upstream, "--socket", sock] + extra,
                                  socket: sock, stderrPath: dir.path + "/\(name).stderr")
    }

    func rules(_ text: String) -> String { dir.file("rules.cfg", text) }

    static func withoutRates(_ s: String) -> [Substring] { s.split(separator: "\n").filter { !$0.contains(" ops; ") } }

    @Test func qcow2ServedByQemuNbdBehindKvmscopeFailsWhereTheRuleSaysAndStaysValid() throws {
        guard let qemuNbd = QemuTools.require("qemu-nbd"), let qemuIO = QemuTools.require("qemu-io"),
              let qemuImg = QemuTools.require("qemu-img") else { return }
        let image = dir.path + "/d.qcow2"
        #expect(try runProcess(qemuImg, ["create", "-q", "-f", "qcow2", image, "64M"]).status == 0)
        let upSock = dir.path + "/qemu-nbd.sock"
        let upstream = try BackgroundPeer(qemuNbd, ["-f", "qcow2", "-k", upSock, image], socket: upSock,
                                          stderrPath: dir.path + "/qemu-nbd.stderr")
        // EIO for writes that touch 1 MiB (sector 2048), nothing else.
        let proxy = try kvmscopeProxy(upstream.uri, ["--rules", rules("""
        [inject-error]
        event = "none"
        iotype = "write"
        sector = "2048"
        errno = "5"
        """)])
        let r = try runProcess(qemuIO, ["-f", "raw", proxy.uri, "-c", "write -P 0xab 0 4k", "-c", "write -P 0xcd 1M 4k",
                                        "-c", "write -P 0x5a 2M 64k", "-c", "read -P 0xab 0 4k", "-c", "read -P 0 1M 4k",
                                        "-c", "read -P 0x5a 2M 64k", "-c", "flush"])
        #expect(Self.withoutRates(r.stdout) == ["wrote 4096/4096 bytes at offset 0", "write failed: Input/output error",
                                                "wrote 65536/65536 bytes at offset 2097152", "read 4096/4096 bytes at offset 0",
                                                "read 4096/4096 bytes at offset 1048576", "read 65536/65536 bytes at offset 2097152"])
        #expect(r.status == 1)
        #expect(proxy.stderr.contains("failed write 1048576+4096 with EIO"))
        proxy.stop()
        upstream.stop()
        // The qcow2 is intact and holds what was acknowledged, read by QEMU's own qcow2 driver.
        let check = try runProcess(qemuImg, ["check", image])
        #expect(check.status == 0 && check.stdout.contains("No errors were found"), "\(check.stdout) \(check.stderr)")
        let back = try runProcess(qemuIO, ["-f", "qcow2", "-r", image, "-c", "read -P 0xab 0 4k", "-c", "read -P 0x5a 2M 64k",
                                           "-c", "read -P 0 1M 4k"])
        #expect(Self.withoutRates(back.stdout) == ["read 4096/4096 bytes at offset 0", "read 65536/65536 bytes at offset 2097152",
                                                   "read 4096/4096 bytes at offset 1048576"], "\(back.stderr)")
    }

    @Test func kvmscopeIoOnAnNbdUriPrintsWhatQemuIoPrints() throws {
        guard let qemuIO = QemuTools.require("qemu-io"), let upstream = try nbdkit(["memory", "size=16M"]) else { return }
        let commands = ["write -P 0x11 0 64k", "read -P 0x11 0 64k", "read -P 0x22 0 4k", "read -v 0 48",
                        "write -z 1M 64k", "read -P 0 1M 64k", "write -P 0x33 3M 4k", "read -P 0x33 3M 4k",
                        "discard 2M 4k", "flush", "read -P 0x11 512 1k", "write -P 0x44 16383k 1k", "read 16M 4k",
                        // QEMU's NBD client: a smaller size is taken as done and the export keeps
                        // its own, a larger one is refused; info has only the format.
                        "length", "map", "alloc 0 32M", "truncate 1M", "length", "truncate 32M", "info",
                        "writev -P 0x55 5M 4k 4k", "aio_read -P 0x55 5M 8k", "aio_flush", "readv -P 0x55 5M 2k 6k"]
        let args = commands.flatMap { ["-c", $0] }
        let qemu = try runProcess(qemuIO, ["-f", "raw", upstream.uri] + args)
        let ours = try CLIRunner.run(["io", "-f", "raw", upstream.uri] + args)
        #expect(Self.withoutRates(ours.stdout) == Self.withoutRates(qemu.stdout), "kvmscope:\n\(ours.stdout)\(ours.stderr)\nqemu-io:\n\(qemu.stdout)")
        #expect(ours.status == qemu.status)
        #expect(Self.withoutRates(qemu.stdout).contains("Pattern verification failed at offset 0, 4096 bytes"))
        // Without -f the export's content is probed (zeroes and patterns: raw) and used.
        let probed = try CLIRunner.run(["io", upstream.uri, "-c", "read -P 0x33 3M 4k"])
        #expect(probed.status == 0 && Self.withoutRates(probed.stdout) == ["read 4096/4096 bytes at offset 3145728"], "\(probed.stderr)")
        upstream.stop()
    }

    @Test func nbdkitMemoryUpstreamWithRulesAndFlagsPassedThrough() throws {
        guard let qemuIO = QemuTools.require("qemu-io"), let nbdinfo = QemuTools.require("nbdinfo"),
              let upstream = try nbdkit(["--filter=nozero", "memory", "size=8M"]) else { return }
        let proxy = try kvmscopeProxy(upstream.uri, ["--rules", rules("""
        [inject-error]
        event = "read_aio"
        iotype = "read"
        sector = "16"
        errno = "5"
        """)])
        let info = try runProcess(nbdinfo, ["--json", proxy.uri])
        let json = try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any]
        let export = (json?["exports"] as? [[String: Any]])?.first
        #expect(export?["export-size"] as? Int == 8 << 20)
        #expect(export?["can_zero"] as? Bool == false)   // nbdkit's nozero filter: no WRITE_ZEROES upstream, none here
        #expect(export?["can_trim"] as? Bool == true && export?["can_flush"] as? Bool == true)
        let r = try runProcess(qemuIO, ["-f", "raw", proxy.uri, "-c", "write -P 0x77 0 64k", "-c", "read -P 0x77 0 8k",
                                        "-c", "read 8k 4k", "-c", "read -P 0x77 12k 4k", "-c", "write -z 32k 4k", "-c", "read -P 0 32k 4k"])
        #expect(Self.withoutRates(r.stdout) == ["wrote 65536/65536 bytes at offset 0", "read 8192/8192 bytes at offset 0",
                                                "read failed: Input/output error", "read 4096/4096 bytes at offset 12288",
                                                "wrote 4096/4096 bytes at offset 32768", "read 4096/4096 bytes at offset 32768"], "\(r.stderr)")
        // nbdkit waits for its clients on SIGTERM: the proxy goes first.
        proxy.stop()
        upstream.stop()
    }

    @Test func aReadOnlyUpstreamIsAReadOnlyExport() throws {
        guard let qemuIO = QemuTools.require("qemu-io"), let nbdinfo = QemuTools.require("nbdinfo"),
              let upstream = try nbdkit(["-r", "memory", "size=1M"]) else { return }
        let proxy = try kvmscopeProxy(upstream.uri)
        let info = try runProcess(nbdinfo, ["--json", proxy.uri])
        let export = ((try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])?["exports"] as? [[String: Any]])?.first
        #expect(export?["is_read_only"] as? Bool == true)
        #expect(export?["can_trim"] as? Bool == false && export?["can_zero"] as? Bool == false)
        let r = try runProcess(qemuIO, ["-f", "raw", "-r", proxy.uri, "-c", "read -P 0 0 4k"])
        #expect(Self.withoutRates(r.stdout) == ["read 4096/4096 bytes at offset 0"])
        // Like qemu-io: a read-only export is not opened for writing, and with -r writes are refused.
        let w = try CLIRunner.run(["io", "-f", "raw", upstream.uri, "-c", "write 0 4k"])
        #expect(w.status == 1 && w.stderr.contains("the export is read-only (open it with -r)"), "\(w.stderr)")
        let r2 = try CLIRunner.run(["io", "-f", "raw", "-r", upstream.uri, "-c", "write 0 4k"])
        #expect(r2.stderr == "kvmscope io: Block node is read-only\n" && r2.status == 1, "\(r2.stderr)")
        proxy.stop()
        upstream.stop()
    }

    @Test func flushIsForwardedAndItsReplyWaitsForTheUpstreams() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        // nbdkit's log filter records every request the upstream gets.
        let logFile = dir.path + "/nbdkit.log"
        guard let logged = try nbdkit(["--filter=log", "memory", "size=4M", "logfile=\(logFile)"], name: "logged") else { return }
        let proxy = try kvmscopeProxy(logged.uri, name: "k1")
        let r = try runProcess(qemuIO, ["-f", "raw", "-t", "writeback", proxy.uri, "-c", "write -P 1 0 4k", "-c", "flush"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let log = String(decoding: FileManager.default.contents(atPath: logFile) ?? Data(), as: UTF8.self)
        // Requests as the log filter logs them when they arrive ("connection=1 Write id=1 ... ..."),
        // and their returns ("...Write id=1 return=0").
        let events = log.split(separator: "\n").compactMap { line -> String? in
            for op in ["Write", "Flush"] {
                if line.contains(" \(op) id=") { return op.lowercased() }
                if line.contains("...\(op) id=") && line.contains("return=0") { return op.lowercased() + " done" }
            }
            return nil
        }
        #expect(events == ["write", "write done", "flush", "flush done"], "\(log)")
        proxy.stop()
        logged.stop()
        // An upstream whose flushes fail (nbdkit's eval plugin: a flush script that says EIO):
        // the client's flush fails too, so its reply waited for the upstream's answer.
        guard let failing = try nbdkit(["eval", "get_size=echo 4194304", "can_write=exit 0", "can_flush=exit 0",
                                        "pwrite=cat >/dev/null", "pread=dd if=/dev/zero count=$3 iflag=count_bytes status=none",
                                        "flush=echo EIO flush refused >&2; exit 1"], name: "failing") else { return }
        let proxy2 = try kvmscopeProxy(failing.uri, name: "k2")
        let f = try runProcess(qemuIO, ["-f", "raw", "-t", "writeback", proxy2.uri, "-c", "write -P 1 0 4k", "-c", "flush"])
        // qemu-io prints nothing for a failed flush (qemu-io-cmds.c flush_f): its exit status says it.
        #expect(Self.withoutRates(f.stdout) == ["wrote 4096/4096 bytes at offset 0"] && f.status == 1, "\(f.stdout) \(f.stderr)")
        // The same through kvmscope io on the proxy, which says it on stderr.
        let ours = try CLIRunner.run(["io", "-f", "raw", "-t", "writeback", proxy2.uri, "-c", "write -P 1 0 4k", "-c", "flush"])
        #expect(ours.stderr.contains("flush failed: Input/output error") && ours.status == 1, "\(ours.stderr)")
        proxy2.stop()
    }

    @Test func anUpstreamKilledMidRunGivesErrorsNotAHang() throws {
        guard let qemuIO = QemuTools.require("qemu-io"), let upstream = try nbdkit(["memory", "size=4M"]) else { return }
        let proxy = try kvmscopeProxy(upstream.uri)
        let before = try runProcess(qemuIO, ["-f", "raw", proxy.uri, "-c", "write -P 9 0 4k"])
        #expect(Self.withoutRates(before.stdout) == ["wrote 4096/4096 bytes at offset 0"])
        upstream.stop(signal: SIGKILL)
        let after = try runProcess(qemuIO, ["-f", "raw", proxy.uri, "-c", "read 0 4k", "-c", "write 0 4k"], timeout: 60)
        #expect(Self.withoutRates(after.stdout) == ["read failed: Input/output error", "write failed: Input/output error"], "\(after.stderr)")
        #expect(proxy.process.isRunning)
        #expect(proxy.stderr.contains("upstream \(upstream.uri): closed the connection; every request to it now fails with EIO"), "\(proxy.stderr)")
    }

    @Test func anUpstreamThatStopsAnsweringTimesOutIntoEIO() throws {
        guard let qemuIO = QemuTools.require("qemu-io"),
              let upstream = try nbdkit(["--filter=delay", "memory", "size=4M", "rdelay=300"]) else { return }
        let proxy = try kvmscopeProxy(upstream.uri, ["--upstream-timeout", "2"])
        let r = try runProcess(qemuIO, ["-f", "raw", proxy.uri, "-c", "read 0 4k"], timeout: 60)
        #expect(Self.withoutRates(r.stdout) == ["read failed: Input/output error"], "\(r.stderr)")
        #expect(proxy.stderr.contains("sent no reply for 2 s; every request to it now fails with EIO"), "\(proxy.stderr)")
        proxy.stop()
        upstream.stop(signal: SIGKILL)
    }

    @Test func refusesUnsupportedUpstreamURIsWithOneLineAndExit2() throws {
        for uri in ["nbds://127.0.0.1/?tls-type=psk", "nbd+unix:///", "nbd://h/?tls-type=x509"] {
            let r = try CLIRunner.run(["nbd", "serve", "--upstream", uri])
            #expect(r.status == 2, "\(uri)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(uri): \(r.stderr)")
            let io = try CLIRunner.run(["io", uri, "-c", "read 0 1"])
            #expect(io.status == 2 && io.stderr.split(separator: "\n").count == 1, "\(uri): \(io.stderr)")
        }
        let both = try CLIRunner.run(["nbd", "serve", "disk.img", "--upstream", "nbd://h/"])
        #expect(both.status == 2)
    }
}
