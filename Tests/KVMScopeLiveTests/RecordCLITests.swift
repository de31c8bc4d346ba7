import XCTest
import KVMScopeTestSupport
@testable import KVMScopeLive

final class RecordCLITests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "kvmscope-rcli-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// A capture laid out as record writes it, from the lab's write-eio run: explain takes each
    /// file in the role capture.json gives — the block-stats and query-block snapshots (QMP
    /// returns, which content detection would take for QMP) are not read as events, and the
    /// trace is read across its segments.
    func testExplainReadsACaptureByItsManifest() throws {
        let trace = try String(contentsOfFile: LabFixtures.path("write-eio", "trace.log"))
        let lines = trace.split(separator: "\n", omittingEmptySubsequences: false)
        let half = lines.count / 2
        try (lines[..<half].joined(separator: "\n") + "\n").write(toFile: dir + "/trace-0000.log", atomically: true, encoding: .utf8)
        try lines[half...].joined(separator: "\n").write(toFile: dir + "/trace-0001.log", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: LabFixtures.path("write-eio", "qmp.jsonl"), toPath: dir + "/qmp.jsonl")
        try #"{"return":[{"device":"drive0","stats":{"failed_wr_operations":1}}],"timestamp":{"microseconds":1,"seconds":1796140000}}"#
            .appending("\n").write(toFile: dir + "/blockstats.jsonl", atomically: true, encoding: .utf8)
        try "".write(toFile: dir + "/query-block.jsonl", atomically: true, encoding: .utf8)
        try "".write(toFile: dir + "/host-dmesg.log", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: LabFixtures.path("write-eio", "run.txt"), toPath: dir + "/qemu-cmdline")
        let m = CaptureManifest(
            kvmscopeVersion: "test", qmp: "unix:/x", qemuVersion: "7.2.22", qemuPid: 1, startTime: 0, endTime: 0,
            stopReason: "duration", stopDetail: "", files: .init(trace: ["trace-0000.log", "trace-0001.log"], qmpEvents: "qmp.jsonl",
                                                                 hostKernelLog: "host-dmesg.log", blockStats: "blockstats.jsonl",
                                                                 queryBlock: "query-block.jsonl", qemuCommandLine: "qemu-cmdline"),
            traceEvents: .init(turnedOn: [], alreadyOn: [], notInThisQEMU: []), traceTimestamps: "qemu",
            arrivalResolutionSeconds: 0, counts: .init(), missing: [], restored: true)
        try m.save(directory: dir)
        let r = try CLIRunner.run(["explain", dir], environment: ["NO_COLOR": "1"])
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("VERDICT: the host's storage failed"), r.stdout)
        XCTAssertTrue(r.stdout.contains("trace-0000.log (+1 segments)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("\(dir!)/qmp.jsonl"), r.stdout)
        XCTAssertFalse(r.stdout.contains("blockstats"), r.stdout)
        // Every input's role is said, the command line's too; its werror=report is used.
        XCTAssertTrue(r.stdout.contains("QEMU command line \(dir!)/qemu-cmdline"), r.stdout)
        XCTAssertTrue(r.stdout.contains("(werror=report)"), r.stdout)
        // Every trace line of both segments was read.
        XCTAssertTrue(r.stdout.contains("70 lines, 70 recognised"), r.stdout)
    }

    func testACaptureOfANewerSchemaIsRefused() throws {
        try #"{"schemaVersion": 9, "tool": "kvmscope record"}"#.write(toFile: dir + "/capture.json", atomically: true, encoding: .utf8)
        let r = try CLIRunner.run(["explain", dir])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("capture schema 9 is newer than this kvmscope reads"), r.stderr)
    }

    func testUsageErrors() throws {
        let c: String = dir + "/c"
        let cases: [([String], String)] = [(["record", "-o", c], "--qmp"),
                             (["record", "--qmp", "/x", "-o", c, "--after", "5s"], "--after is for --flight-recorder"),
                             (["record", "--qmp", "/x", "-o", c, "--rotate", "10M"], "rotate"),
                             (["record", "--qmp", "/x", "-o", c, "--rotate", "1M,2", "--flight-recorder", "1M"], "give one"),
                             (["record", "--qmp", "vm1", "-o", c], "not a QMP address"),
                             (["record", "--restore", "-o", dir], "no record state")]
        for (args, text) in cases {
            let r = try CLIRunner.run(args)
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(text), "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.split(separator: "\n").first?.contains(text) == true, "said on the first line: \(r.stderr)")
        }
    }

    /// Peers that are not a free QMP monitor: a silent one (a monitor another client holds —
    /// QEMU accepts into the backlog and never greets) and one that speaks something else.
    func testTakenMonitorAndNonQMPPeer() throws {
        for (greeting, expect, status) in [(nil as String?, "another client", Int32(1)), ("QEMU 7.2.22 monitor - type 'help'\r\n", "not a QMP monitor", 2)] {
            let path = dir + "/peer-\(status).sock"
            let server = try UnixListener(path: path)
            let t = Thread { server.acceptOnce(sending: greeting) }
            t.start()
            let r = try CLIRunner.run(["record", "--qmp", "unix:" + path, "-o", dir + "/cap-\(status)"], timeout: 30)
            XCTAssertEqual(r.status, status, r.stderr)
            XCTAssertTrue(r.stderr.contains(expect), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/cap-\(status)"), "nothing written when nothing was attached")
            server.close()
        }
    }
}

/// A one-connection Unix socket server for the peer tests.
final class UnixListener: @unchecked Sendable {
    let fd: Int32
    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var sa = sockaddr_un()
        sa.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &sa.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let r = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard r == 0, listen(fd, 4) == 0 else { throw NSError(domain: "listen", code: Int(errno)) }
    }
    func acceptOnce(sending greeting: String?) {
        let c = accept(fd, nil, nil)
        guard c >= 0 else { return }
        if let greeting { _ = greeting.withCString { send(c, $0, strlen($0), 0) } }
        var buf = [UInt8](repeating: 0, count: 256)
        _ = recv(c, &buf, buf.count, 0)   // hold the connection until the client gives up
        Glibc.close(c)
    }
    func close() { Glibc.close(fd) }
}
