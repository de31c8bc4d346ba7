import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope

@Suite struct ExplainCommandTests {
    @Test func exampleListAndRun() throws {
        let list = try CLIRunner.run(["explain", "--example", "list"])
        #expect(list.status == 0)
        #expect(list.stdout.contains("write-eio") && list.stdout.contains("enospc-pause"))
        let r = try CLIRunner.run(["explain", "--example", "write-eio"], environment: ["NO_COLOR": "1"])
        #expect(r.status == 1)   // errors were found and explained
        #expect(r.stdout.contains("VERDICT: the host's storage failed"))
        #expect(r.stdout.contains("failed 1 write request with EIO (Input/output error)"))
        #expect(!r.stdout.contains("\u{1B}["))   // NO_COLOR and not a terminal: no escapes
        #expect(r.stderr.isEmpty)
    }

    @Test func jsonHasTheDocumentedKeys() throws {
        let r = try CLIRunner.run(["explain", "--example", "enospc-pause", "--json"])
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        for k in ["inputs", "guest", "host", "qmp", "guestBlockErrors", "matches", "unmatched", "clockOffsetSeconds",
                  "clockOffsetSpreadSeconds", "verdict", "evidence", "timeline", "nextSteps", "missing", "disagreements"] {
            #expect(o.keys.contains(k), "missing key \(k)")
        }
        let verdict = try #require(o["verdict"] as? [String: Any])
        #expect(verdict["origin"] as? String == "host-storage")
        let qmp = try #require(o["qmp"] as? [String: Any])
        let pauses = try #require(qmp["pauses"] as? [[String: Any]])
        #expect(pauses.count == 1)
        for k in ["startTime", "seconds", "operation", "reason", "retrySucceeded"] { #expect(pauses[0].keys.contains(k)) }
        #expect(pauses[0]["retrySucceeded"] as? Bool == true)
        #expect((qmp["ioErrors"] as? [[String: Any]])?.first?["errnoName"] as? String == "ENOSPC")
        // host is kvmscope trace's JSON, guest is kvmscope guest's.
        #expect((o["host"] as? [String: Any])?["failures"] != nil)
        #expect((o["guest"] as? [String: Any])?["devices"] != nil)
    }

    @Test func filesAreRecognisedInAnyOrderAndDirectoriesWork() throws {
        let dir = LabFixtures.repoRoot.appendingPathComponent("lab/scenarios/read-once").path
        let byFiles = try CLIRunner.run(["explain", "--json", dir + "/qmp.jsonl", dir + "/trace.log", dir + "/console.log"])
        let byDir = try CLIRunner.run(["explain", "--json", dir])
        #expect(byFiles.status == 1 && byDir.status == 1)
        func matches(_ s: String) throws -> Int {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any])
            return (o["matches"] as? [Any])?.count ?? -1
        }
        #expect(try matches(byFiles.stdout) == 1)
        #expect(try matches(byDir.stdout) == 1)
        // run.txt holds QEMU's command line with its -trace options: not a trace.
        let withRunTxt = try CLIRunner.run(["explain", "--json", LabFixtures.repoRoot.appendingPathComponent("lab/scenarios/write-eio").path])
        #expect(withRunTxt.stderr.isEmpty)
        #expect(try matches(withRunTxt.stdout) == 1)
    }

    @Test func guestLogFromStdin() throws {
        let log = try String(contentsOfFile: LabFixtures.path("write-eio", "console.log"), encoding: .utf8)
        let r = try CLIRunner.run(["explain", "--guest", "-"], stdin: log, environment: ["NO_COLOR": "1"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("VERDICT: not covered"))
        #expect(r.stdout.contains("no QEMU trace given"))
        #expect(r.stdout.contains("NOT GIVEN, AND WHAT IT WOULD HAVE TOLD"))
    }

    @Test func badInputIsOneLineAndNonZero() throws {
        let missing = try CLIRunner.run(["explain", "/nonexistent/trace.log"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "kvmscope: cannot open '/nonexistent/trace.log': No such file or directory\n")
        let unknown = try CLIRunner.run(["explain", "--example", "nope"])
        #expect(unknown.status == 2 && unknown.stderr.hasPrefix("kvmscope: no example named 'nope'"))
        let junk = try CLIRunner.run(["explain", "-"], stdin: "\u{0}\u{1}\u{2} binary junk\n")
        #expect(junk.status == 2 && junk.stderr.split(separator: "\n").count == 1)
        for args in [["explain"], ["explain", "--example", "write-eio", "x.log"], ["explain", "--guest", "-", "--qmp", "-"]] {
            let u = try CLIRunner.run(args)
            #expect(u.status == 2, "\(args)")
        }
    }
}

/// A capture directory as the lab leaves it holds the VM's QMP socket; an admin's may hold a
/// FIFO. Neither is evidence: explain skips them. Before, a socket failed the whole run ("cannot
/// open …: No such device or address") and a FIFO blocked it forever (found by an admin's review).
@Suite struct ExplainDirectoryWithSpecialFilesTests {
    @Test func socketsAndFIFOsInACaptureDirectoryAreSkipped() throws {
        let dir = NSTemporaryDirectory() + "kvmscope-special-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for f in ["console.log", "trace.log", "qmp.jsonl"] {
            try FileManager.default.copyItem(atPath: LabFixtures.path("write-eio", f), toPath: dir + "/" + f)
        }
        #expect(mkfifo(dir + "/x.fifo", 0o600) == 0)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let path = dir + "/qmp.sock"
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.prefix(raw.count - 1).enumerated() { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        let r = try CLIRunner.run(["explain", dir], environment: ["NO_COLOR": "1"], timeout: 60)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stdout.contains("VERDICT: the host's storage failed"))
    }
}
