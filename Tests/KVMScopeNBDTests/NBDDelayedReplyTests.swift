import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeNBD

/// Replies held back by [delay] and [rate] over `nbd serve`, with the real qemu-io as the
/// client: how their waits are logged, how the connection's end line counts them, and what a
/// change of rules (`nbd control`) does to requests already waiting.
@Suite(.serialized) struct NBDDelayedReplyTests {
    /// The amounts of the "delayed ... by X from" lines, in order.
    static func delays(_ s: NBDServerProcess) -> [String] {
        s.stderrLines(containing: " delayed ").map { String($0.split(separator: " by ")[1].split(separator: " from ")[0]) }
    }

    /// qemu-io running `commands` in the background; `wait` returns its result, nil if it did
    /// not finish within the seconds given.
    final class BackgroundClient: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private var result: ProcessResult?
        let started = Date()
        private(set) var seconds: Double?

        init(_ qemuIO: String, _ uri: String, _ commands: [String]) {
            DispatchQueue.global().async { [self] in
                result = try? runProcess(qemuIO, ["-f", "raw", uri] + commands.flatMap { ["-c", $0] }, timeout: 120)
                seconds = Date().timeIntervalSince(started)
                done.signal()
            }
        }

        func wait(_ seconds: Double) -> ProcessResult? {
            guard done.wait(timeout: .now() + seconds) == .success else { return nil }
            done.signal()
            return result
        }
    }

    /// Waits until the server has logged `text` (the request reached its rule).
    static func waitFor(_ s: NBDServerProcess, _ text: String, seconds: Double = 20) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if !s.stderrLines(containing: text).isEmpty { return true }
            usleep(20_000)
        }
        return false
    }

    /// "20.000 ms": milliseconds with three decimals.
    static func isMilliseconds(_ text: String) -> Bool {
        guard text.hasSuffix(" ms") else { return false }
        let parts = text.dropLast(3).split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && parts[0].allSatisfy(\.isASCII) && parts[0].allSatisfy(\.isNumber)
            && parts[1].count == 3 && parts[1].allSatisfy(\.isASCII) && parts[1].allSatisfy(\.isNumber)
    }

    static func control(_ socket: String, _ words: [String]) throws -> ProcessResult {
        try CLIRunner.run(["nbd", "control", socket] + words)
    }

    @Test func everyDelayIsLoggedInMillisecondsWithThreeDecimals() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let dir = TempDir()
        // 8M = 8 Mi bits/s: 4 KiB pass in 3.90625 ms, 1 MiB in 1 s.
        let rules = dir.file("r.cfg", "[delay]\nread = \"1.5ms\"\nwrite = \"20ms\"\n\n[rate]\nrate = \"8M\"\n")
        let s = try NBDServerProcess(size: 4 << 20, arguments: ["-f", "raw", "--rules", rules])
        let r = try runProcess(qemuIO, ["-f", "raw", s.uri, "-c", "read 0 4k", "-c", "write 0 1M"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(s.stop() != nil)
        let amounts = Self.delays(s)
        #expect(amounts.count == 4, "\(s.stderr)")
        #expect(amounts.allSatisfy(Self.isMilliseconds), "\(amounts)")
        #expect(amounts.first == "3.906 ms" && amounts.contains("1.500 ms") && amounts.contains("20.000 ms"), "\(amounts)")
    }

    /// The connection's end line counts replies written: a read whose reply a delay still holds
    /// when the server stops was not answered, and the line says so.
    @Test func aReplyStillHeldAtTheEndIsNotCountedAsAnswered() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let dir = TempDir()
        let rules = dir.file("r.cfg", "[delay]\nread = \"60s\"\n")
        let s = try NBDServerProcess(size: 1 << 20, arguments: ["-f", "raw", "--rules", rules])
        let client = BackgroundClient(qemuIO, s.uri, ["write 0 4k", "read 0 4k"])
        #expect(Self.waitFor(s, "delayed read 0+4096"), "\(s.stderr)")
        #expect(s.stop() != nil)
        _ = client.wait(30)
        let end = s.stderrLines(containing: " disconnected after ")
        #expect(end.count == 1 && end[0].contains("(0 reads 0 bytes, 1 write 4 KiB, 0 error replies); 1 reply not sent (held back or being written when the connection closed)"),
                "\(s.stderr)")
    }

    /// A change of rules reaches replies already waiting: removing the [delay] or the [rate]
    /// lets them go at once, a shorter delay shortens their wait, and a rule left as it was
    /// keeps it.
    @Test func aChangeOfRulesReachesRepliesAlreadyWaiting() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let dir = TempDir()
        let socket = dir.path + "/ctl.sock"
        // 8k = 8 Ki bits/s: a 1 MiB read would wait 1024 s.
        let cases: [(rules: String, change: (String) throws -> [String], within: Double)] = [
            ("[delay]\nread = \"60s\"\n", { _ in ["clear"] }, 5),
            ("[rate]\nrate = \"8k\"\n", { _ in ["clear"] }, 5),
            ("[delay]\nread = \"60s\"\n", { file in
                FileManager.default.createFile(atPath: file, contents: Data("[delay]\nread = \"200ms\"\n".utf8))
                return ["reload"]
            }, 5),
        ]
        for (rules, change, within) in cases {
            let file = dir.file("r.cfg", rules)
            let s = try NBDServerProcess(size: 1 << 20, arguments: ["-f", "raw", "--rules", file, "--control", socket])
            let client = BackgroundClient(qemuIO, s.uri, ["read 0 1M"])
            #expect(Self.waitFor(s, "delayed read 0+1048576"), "\(s.stderr)")
            let changed = Date()
            let reply = try Self.control(socket, try change(file))
            #expect(reply.status == 0, "\(reply.stdout)")
            let r = client.wait(within)
            #expect(r?.stdout.contains("read 1048576/1048576 bytes at offset 0") == true, "\(rules): \(r?.stdout ?? "still waiting")\(s.stderr)")
            #expect(Date().timeIntervalSince(changed) < within)
            _ = s.stop()
        }
        // A rule the change leaves alone keeps its waiters waiting.
        let file = dir.file("r.cfg", "[delay]\nread = \"3s\"\n")
        let other = dir.file("other.cfg", "[delay]\nwrite = \"1ms\"\n")
        let s = try NBDServerProcess(size: 1 << 20, arguments: ["-f", "raw", "--rules", file, "--control", socket])
        let client = BackgroundClient(qemuIO, s.uri, ["read 0 4k"])
        #expect(Self.waitFor(s, "delayed read 0+4096"), "\(s.stderr)")
        #expect(try Self.control(socket, ["add", other]).status == 0)
        let r = client.wait(20)
        #expect(r?.status == 0 && (client.seconds ?? 0) >= 2.9, "\(client.seconds ?? -1) s")
        _ = s.stop()
    }
    /// A change that lets waiting replies go, or shortens their wait, says so: one line on
    /// stderr naming the change, and a `rules-change` record in the --log file. A change that
    /// leaves them waiting as they were adds neither.
    @Test func aChangeThatReleasesOrShortensWaitingRepliesSaysSo() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let dir = TempDir()
        let socket = dir.path + "/ctl.sock"
        let log = dir.path + "/faults.jsonl"
        let file = dir.file("r.cfg", "[delay]\nread = \"60s\"\n")
        let other = dir.file("other.cfg", "[delay]\nwrite = \"1ms\"\n")
        let s = try NBDServerProcess(size: 1 << 20, arguments: ["-f", "raw", "--rules", file, "--control", socket, "--log", log])
        let client = BackgroundClient(qemuIO, s.uri, ["read 0 4k"])
        #expect(Self.waitFor(s, "delayed read 0+4096"), "\(s.stderr)")
        #expect(try Self.control(socket, ["add", other]).status == 0)           // the read's [delay] stays as it was
        FileManager.default.createFile(atPath: file, contents: Data("[delay]\nread = \"30s\"\n".utf8))
        #expect(try Self.control(socket, ["reload"]).status == 0)               // 60 s to 30 s: it waits, less
        #expect(try Self.control(socket, ["clear"]).status == 0)                // no [delay]: it goes
        let r = client.wait(10)
        #expect(r?.stdout.contains("read 4096/4096 bytes at offset 0") == true, "\(r?.stdout ?? "still waiting")")
        #expect(s.stop() != nil)
        let lines = s.stderrLines(containing: " waiting repl")
        #expect(lines.count == 2, "\(s.stderr)")
        #expect(lines.first?.hasSuffix("control: reloaded \(file) (1 rule); kept 1 added rule (\(other):1): 0 waiting replies released, 1 shortened") == true,
                "\(lines)")
        #expect(lines.last?.hasSuffix("control: cleared: 1 waiting reply released, 0 shortened") == true, "\(lines)")
        let records = (try String(contentsOfFile: log, encoding: .utf8)).split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["type"] as? String == "rules-change" }
        #expect(records.map { "\($0["via"] ?? "") \($0["change"] ?? "") \($0["released"] ?? "") \($0["shortened"] ?? "")" }
                == ["control reloaded \(file) (1 rule); kept 1 added rule (\(other):1) 0 1", "control cleared 1 0"], "\(records)")
    }

    /// SIGHUP is a change like the control socket's: a re-read file without the [delay] lets
    /// the waiting read go, and says so on stderr and in the --log file (via "SIGHUP").
    @Test func aSighupThatReleasesAWaitingReplySaysSo() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let dir = TempDir()
        let log = dir.path + "/faults.jsonl"
        let file = dir.file("r.cfg", "[delay]\nread = \"60s\"\n")
        let s = try NBDServerProcess(size: 1 << 20, arguments: ["-f", "raw", "--rules", file, "--log", log])
        let client = BackgroundClient(qemuIO, s.uri, ["read 0 4k"])
        #expect(Self.waitFor(s, "delayed read 0+4096"), "\(s.stderr)")
        FileManager.default.createFile(atPath: file, contents: Data("[delay]\nwrite = \"1ms\"\n".utf8))
        kill(s.pid, SIGHUP)
        let r = client.wait(10)
        #expect(r?.stdout.contains("read 4096/4096 bytes at offset 0") == true, "\(r?.stdout ?? "still waiting")")
        #expect(s.stop() != nil)
        let lines = s.stderrLines(containing: " waiting repl")
        #expect(lines.count == 1 && lines[0].hasSuffix("SIGHUP: reloaded \(file) (1 rule); kept no added rules: 1 waiting reply released, 0 shortened"),
                "\(s.stderr)")
        let records = (try String(contentsOfFile: log, encoding: .utf8)).split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["type"] as? String == "rules-change" }
        #expect(records.map { "\($0["via"] ?? "") \($0["change"] ?? "") \($0["released"] ?? "") \($0["shortened"] ?? "")" }
                == ["SIGHUP reloaded \(file) (1 rule); kept no added rules 1 0"], "\(records)")
    }
}
