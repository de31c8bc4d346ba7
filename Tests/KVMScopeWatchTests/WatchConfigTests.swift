import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeWatch

@Suite struct WatchConfigTests {
    func write(_ dir: TempDir, _ text: String, _ name: String = "watch.toml") -> String {
        let path = dir.path + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    @Test func readsEveryKey() throws {
        let dir = TempDir()
        let path = write(dir, """
            # kvmscope watch
            qmp = ["/run/kvmscope/qmp/*.sock", "tcp:127.0.0.1:4444"]
            listen = "[::1]:9177"
            interval = 5
            events = "-"
            host-kernel = true
            block-tracepoint = false
            drops = true
            """)
        let c = try WatchConfig.load(path: path)
        #expect(c == WatchConfig(qmp: ["/run/kvmscope/qmp/*.sock", "tcp:127.0.0.1:4444"], listen: "[::1]:9177", interval: 5,
                                 events: "-", hostKernel: true, blockTracepoint: false, drops: true))
        let o = try c.resolved()
        #expect(o.listen.port == 9177 && o.intervalSeconds == 5 && o.hostKernel && !o.blockTracepoint && o.drops)
        #expect(try WatchConfig.parse("interval = 0.5\nqmp = \"/run/a.qmp\"").interval == 0.5)
        #expect(try WatchConfig.parse("qmp = \"/run/a.qmp\"").qmp == ["/run/a.qmp"])
    }

    /// `libvirt`, `libvirt-read-only`, `libvirt-passthrough`: the --libvirt options, in the
    /// file; a file with only libvirt needs no QMP pattern; the flags' rules hold there too.
    @Test func libvirtKeys() throws {
        let c = try WatchConfig.parse("libvirt = \"qemu:///system\"\nlibvirt-read-only = true")
        #expect(c.libvirt == ["qemu:///system"] && c.libvirtReadOnly == true)
        let o = try c.resolved()
        #expect(o.libvirt == ["qemu:///system"] && o.libvirtReadOnly && !o.libvirtPassthrough && o.qmp.isEmpty)
        let two = try WatchConfig.parse("libvirt = [\"qemu:///system\", \"qemu+ssh://h2/system\"]\nlibvirt-passthrough = true").resolved()
        #expect(two.libvirt.count == 2 && two.libvirtPassthrough)
        // The command line's --libvirt wins over the file's.
        #expect(WatchConfig(libvirt: ["qemu:///session"]).merged(over: c).libvirt == ["qemu:///session"])
        #expect(throws: WatchError.self) { try WatchConfig.parse("libvirt-passthrough = true\nqmp = \"/a.qmp\"").resolved() }
        #expect(throws: WatchError.self) {
            try WatchConfig.parse("libvirt = \"qemu:///system\"\nlibvirt-passthrough = true\nlibvirt-read-only = true").resolved()
        }
        #expect(throws: WatchConfig.ConfigProblem.self) { try WatchConfig.parse("libvirt = 3") }
        #expect(throws: WatchConfig.ConfigProblem.self) { try WatchConfig.parse("libvirt = [\"qemu:///system\", 1]") }
    }

    @Test func theCommandLineWinsFieldByField() throws {
        let file = WatchConfig(qmp: ["/a/*.qmp"], listen: "127.0.0.1:1", interval: 5, hostKernel: true, drops: true)
        let cli = WatchConfig(qmp: ["/b.qmp"], interval: 2, hostKernel: false)
        let m = cli.merged(over: file)
        #expect(m == WatchConfig(qmp: ["/b.qmp"], listen: "127.0.0.1:1", interval: 2, hostKernel: false, drops: true))
        // Defaults: loopback, 15 s, host-wide sources off, the tracepoint on when the host kernel is.
        let d = try WatchConfig(qmp: ["/x.qmp"]).resolved()
        #expect(d.listen.description == "127.0.0.1:9177" && d.intervalSeconds == 15 && !d.hostKernel && d.blockTracepoint && !d.drops)
    }

    @Test func badFilesAreOneLineEach() throws {
        let dir = TempDir()
        for (text, words) in [
            ("qmp = [\"/a.qmp\"\nlisten = 1", "line "),
            ("host_kernel = true\nqmp = [\"/a.qmp\"]", "unknown key 'host_kernel'"),
            ("qmp = [1, 2]", "qmp: every entry must be a string"),
            ("qmp = [\"/a.qmp\"]\ninterval = \"fast\"", "interval: want seconds"),
            ("qmp = [\"/a.qmp\"]\ndrops = \"yes\"", "drops: want true or false"),
            ("qmp = [\"/a.qmp\"]\nlisten = 9177", "listen: want a string"),
        ] {
            let path = write(dir, text)
            #expect { try WatchConfig.load(path: path) } throws: { e in
                let s = "\(e)"
                return s.contains(path) && s.contains(words) && !s.contains("\n")
            }
        }
        #expect { try WatchConfig.load(path: dir.path + "/none.toml") } throws: { "\($0)".contains("No such file") }
        #expect { try WatchConfig.load(path: dir.path) } throws: { "\($0)".contains("not a regular file") }
        let binary = dir.path + "/bin.toml"
        FileManager.default.createFile(atPath: binary, contents: Data([0x71, 0x6d, 0x70, 0x20, 0x3d, 0xff, 0xfe]))
        #expect { try WatchConfig.load(path: binary) } throws: { "\($0)".contains("not UTF-8") }
        let big = write(dir, String(repeating: "# padding\n", count: WatchConfig.maxFileBytes / 10 + 10), "big.toml")
        #expect { try WatchConfig.load(path: big) } throws: { "\($0)".contains("larger than") }
        // Values that parse but do not check out.
        #expect { try WatchConfig(qmp: ["/a.qmp"], interval: 0).resolved() } throws: { "\($0)".contains("--interval") }
        #expect { try WatchConfig(qmp: []).resolved() } throws: { "\($0)".contains("give at least one --qmp") }
    }
}

extension WatchConfigTests {
    /// Hostile files are refused in a line, never a crash: deep nesting (toml++ stops at its
    /// own limit), a NUL (toml++ would end the input there), random bytes.
    @Test func hostileFilesAreRefused() {
        var texts = [
            "qmp = " + String(repeating: "[", count: 100_000),
            "qmp = [\"/a.qmp\"]\u{0}drops = true",
            "x = {" + String(repeating: "a.", count: 50_000) + "b = 1}",
        ]
        // Seeded: the same files every run. (Unseeded, one CI run in many drew a file starting
        // `[?`, on which toml++ aborts; TOMLTableHeaderCheck refuses those first.)
        var rng = SplitMix64(seed: 0x746f6d6c)
        for _ in 0..<2_000 {
            texts.append(String(decoding: (0..<Int.random(in: 1...300, using: &rng)).map { _ in UInt8.random(in: 0...127, using: &rng) }, as: UTF8.self))
        }
        for t in texts {
            do { _ = try WatchConfig.parse(t).resolved() } catch {
                #expect(!"\(error)".isEmpty)
            }
        }
        // Table headers that do not begin with a key: refused in a line, never handed to toml++.
        for (t, line) in [("[?", 1), ("[?]", 1), ("[ ?]", 1), ("[[ é]]", 1), ("[\u{1}", 1), ("qmp = [\"/a.qmp\"]\n[a]\n  [é]", 3)] {
            #expect { try WatchConfig.parse(t) } throws: {
                ($0 as? WatchConfig.ConfigProblem)?.text == "line \(line): a table header must begin with a key (a letter, digit, '_', '-' or a quoted name)"
            }
        }
        // What is not a header is left to toml++: arrays over several lines, brackets in strings.
        let fine = "qmp = [\n  \"/a.qmp\",\n  \"/[b].qmp\", # [?\n]\ninterval = 5\n[\"quoted\"]\n"
        #expect(TOMLTableHeaderCheck.firstHeaderWithoutKey(in: fine) == nil)
        #expect(TOMLTableHeaderCheck.firstHeaderWithoutKey(in: "x = \"\"\"\n[?\n\"\"\"\n") == nil)
        #expect(throws: (any Error).self) { try WatchConfig.parse("qmp = [\"/a.qmp\"]\u{0}drops = true") }
    }
}

/// SIGHUP's reload, without the signal: WatchService.reload() against fake QEMUs.
@Suite(.serialized) struct WatchReloadTests {
    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var all: [String] = []
        func add(_ s: String) { lock.withLock { all.append(s) } }
        var lines: [String] { lock.withLock { all } }
    }

    @Test func reloadChangesMonitorsIntervalAndSwitchesAndKeepsTheOldConfigOnABadFile() throws {
        let dir = TempDir()
        let a = try FakeQMPServer(path: dir.path + "/a.qmp", behaviour: .qemu, replies: FakeVM.replies(name: "vm-a"))
        let b = try FakeQMPServer(path: dir.path + "/b.qmp", behaviour: .qemu, replies: FakeVM.replies(name: "vm-b"))
        defer { a.stop(); b.stop() }
        let config = dir.path + "/watch.toml"
        func setConfig(_ text: String) { FileManager.default.createFile(atPath: config, contents: Data(text.utf8)) }
        setConfig("qmp = [\"\(dir.path)/a.qmp\"]\ninterval = 0.2\n")

        let options = try WatchService.options(commandLine: WatchConfig(), configPath: config)
        let watcher = Watcher(discoveries: [options.discovery], settings: options.settings)
        let said = Lines()
        let service = WatchService(options: options, configPath: config, commandLine: WatchConfig(), watcher: watcher, log: { said.add($0) })
        let log = FakeKernelLog()
        service.openHostKernel = { _, series, _, _ in HostKernelWatch(kernelLog: log, blockTrace: nil, series: series, stopCheckSeconds: 0.05) }
        try service.startSources()
        watcher.start()
        defer { service.stop(); watcher.stop(waiting: 5) }
        func text() -> String { String(decoding: watcher.metrics.render(), as: UTF8.self) }
        #expect(eventually(30) { Exposition.value(text(), "kvmscope_vm_qmp_up", [("domain", "vm-a")]) == 1 })
        let connectionsOfA = a.connections

        // A second VM, a longer interval, the host kernel log on.
        setConfig("qmp = [\"\(dir.path)/a.qmp\", \"\(dir.path)/b.qmp\"]\ninterval = 0.3\nhost-kernel = true\n")
        #expect(service.reload())
        #expect(watcher.settings.intervalSeconds == 0.3)
        #expect(eventually(30) { Exposition.value(text(), "kvmscope_vm_qmp_up", [("domain", "vm-b")]) == 1 })
        #expect(service.hostSourcesRunning.hostKernel)
        log.queued = [HostLines.ioError("sdb", 2048)]
        #expect(eventually(10) { Exposition.value(text(), "kvmscope_host_block_errors_total", [("device", "sdb"), ("kind", "block-error")]) == 1 })
        #expect(a.connections == connectionsOfA, "the VM still found kept its connection")
        #expect(Exposition.value(text(), "kvmscope_watch_config_reloads_total", [("result", "ok")]) == 1)

        // A bad file: nothing changes, one line says why, the failure is counted.
        setConfig("qmp = [\"\(dir.path)/b.qmp\"]\ninterval = \"soon\"\n")
        let before = said.lines.count
        #expect(!service.reload())
        #expect(said.lines.count == before + 1 && said.lines.last!.contains("keeping the configuration in use") && said.lines.last!.contains("interval"))
        #expect(Exposition.value(text(), "kvmscope_watch_config_reloads_total", [("result", "failed")]) == 1)
        #expect(watcher.watched.count == 2 && watcher.settings.intervalSeconds == 0.3 && service.hostSourcesRunning.hostKernel)

        // VM a removed, the host kernel log off; a listen change waits for a restart.
        setConfig("qmp = [\"\(dir.path)/b.qmp\"]\ninterval = 0.3\nlisten = \"127.0.0.1:9999\"\n")
        #expect(service.reload())
        #expect(Set(watcher.watched.values) == ["vm-b"])
        #expect(!service.hostSourcesRunning.hostKernel)
        #expect(said.lines.contains { $0.contains("listen 127.0.0.1:9999 takes effect at the next restart") })
        #expect(Exposition.value(text(), "kvmscope_watch_source_up", [("source", "host-kernel-log")]) == 0)
    }

    @Test func withoutAConfigFileThereIsNothingToReload() throws {
        let options = try WatchConfig(qmp: ["/nonexistent/x.qmp"]).resolved()
        let watcher = Watcher(discoveries: [options.discovery], settings: options.settings)
        let said = Lines()
        let service = WatchService(options: options, configPath: nil, commandLine: WatchConfig(), watcher: watcher, log: { said.add($0) })
        #expect(!service.reload())
        #expect(said.lines == ["watch: SIGHUP: no --config file, nothing to reload"])
    }
}
