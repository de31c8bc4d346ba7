import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeNBD

/// `nbd serve IMAGE --export NAME=IMAGE ...`: several named exports on one server, as
/// NBD_OPT_LIST, INFO and GO see them (nbdinfo --list, qemu-io and qemu-img on nbd://HOST/NAME).
@Suite(.serialized) struct NBDExportsTests {
    static func withoutRates(_ s: String) -> [Substring] { s.split(separator: "\n").filter { !$0.contains("ops/sec") } }

    @Test func namedExportsAreListedChosenByNameAndKeptApart() throws {
        guard let qemuIO = QemuTools.require("qemu-io"), let nbdinfo = QemuTools.require("nbdinfo"),
              let qemuImg = QemuTools.require("qemu-img") else { return }
        let dir = TempDir()
        let second = dir.file("second.img", "")
        #expect(truncate(second, 8 << 20) == 0)                          // sparse: block status has holes to show
        let rules = dir.file("r.cfg", "[inject-error]\nevent = \"none\"\niotype = \"write\"\nsector = \"2048\"\nerrno = \"28\"\n")
        let s = try NBDServerProcess(size: 16 << 20, arguments: ["-f", "raw", "--export-name", "main", "--export", "second=\(second)",
                                                                 "--rules", rules])
        let list = try runProcess(nbdinfo, ["--list", "--json", "nbd://127.0.0.1:\(s.port)"])
        let exports = ((try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any])?["exports"] as? [[String: Any]]) ?? []
        #expect(exports.map { $0["export-name"] as? String } == ["main", "second"], "\(list.stdout)\(list.stderr)")
        #expect(exports.map { $0["export-size"] as? Int } == [16 << 20, 8 << 20])
        let before = try #require(FileManager.default.contents(atPath: s.image))
        let w = try runProcess(qemuIO, ["-f", "raw", "nbd://127.0.0.1:\(s.port)/second", "-c", "write -P 0x5b 0 4k", "-c", "write 1M 4k", "-c", "length"])
        #expect(Self.withoutRates(w.stdout) == ["wrote 4096/4096 bytes at offset 0", "write failed: No space left on device", "8 MiB"], "\(w.stderr)")
        #expect(try #require(FileManager.default.contents(atPath: second)).prefix(4096).allSatisfy { $0 == 0x5b })
        #expect(FileManager.default.contents(atPath: s.image) == before)          // the other export is untouched
        // The default export ("") is the main image; block status works per export.
        let main = try runProcess(qemuIO, ["-f", "raw", "nbd://127.0.0.1:\(s.port)", "-c", "length", "-c", "write 1M 4k"])
        #expect(Self.withoutRates(main.stdout) == ["16 MiB", "write failed: No space left on device"])
        let map = try runProcess(qemuImg, ["map", "--output=json", "nbd://127.0.0.1:\(s.port)/second"])
        #expect(map.stdout.contains("\"start\": 0, \"length\": 4096") && map.stdout.contains("\"data\": false"), "\(map.stdout)")
        let unknown = try runProcess(qemuIO, ["-f", "raw", "nbd://127.0.0.1:\(s.port)/nope", "-c", "length"])
        #expect(unknown.status == 1 && unknown.stderr.contains("server reported: no export named 'nope'"), "\(unknown.stderr)")
        #expect(s.stop() != nil)
        #expect(s.stderrLines(containing: "from export 'second': ").count == 2 && s.stderrLines(containing: "from export 'main': ").count == 1,
                "\(s.stderr)")
        #expect(s.stderrLines(containing: "export 'second': \(second) (8 MiB)").count == 1)
    }

    /// uri.md "NBD URI export name": the printed URIs carry --export-name (percent-encoded), so
    /// a client given one of them opens the export the server was told to serve.
    @Test func theStartupURIsNameTheExport() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let dir = TempDir()
        let socket = dir.path + "/nbd.sock"
        let s = try NBDServerProcess(size: 1 << 20, arguments: ["-f", "raw", "--export-name", "my disk", "--socket", socket])
        #expect(s.uris == ["nbd://127.0.0.1:\(s.port)/my%20disk", "nbd+unix:///my%20disk?socket=\(socket)"], "\(s.uris)")
        for uri in s.uris {
            let r = try runProcess(qemuIO, ["-f", "raw", uri, "-c", "length"])
            #expect(r.status == 0 && r.stdout == "1 MiB\n", "\(uri): \(r.stdout)\(r.stderr)")
        }
        #expect(s.stop() != nil, "no exit within 10 s of SIGTERM: \(s.stderr)")
        let unnamed = try NBDServerProcess(size: 1 << 20, arguments: ["-f", "raw", "--socket", dir.path + "/plain.sock"])
        #expect(unnamed.uris == ["nbd://127.0.0.1:\(unnamed.port)", "nbd+unix:///?socket=\(dir.path)/plain.sock"], "\(unnamed.uris)")
        let r = try runProcess(qemuIO, ["-f", "raw", unnamed.uri, "-c", "length"])
        #expect(r.stdout == "1 MiB\n", "\(r.stdout)\(r.stderr)")
        #expect(unnamed.stop() != nil, "no exit within 10 s of SIGTERM: \(unnamed.stderr)")
    }

    /// The socket path in the printed URI is percent-encoded as a query value (uri.md), so a
    /// path with a space, `+`, `&` or `%` in it still names the socket: qemu-io and nbdinfo open
    /// the URI, and kvmscope's own parser reads the path back.
    @Test func theSocketPathInTheURIIsPercentEncoded() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let dir = TempDir()
        let socket = dir.path + "/a b+c&d%e.sock"
        let s = try NBDServerProcess(size: 1 << 20, arguments: ["-f", "raw", "--export-name", "my disk", "--socket", socket])
        let encoded = dir.path + "/a%20b%2Bc%26d%25e.sock"
        #expect(s.uris.last == "nbd+unix:///my%20disk?socket=\(encoded)", "\(s.uris)")
        let unix = s.uris.last ?? ""
        #expect(try NBDURI.parse(unix).transport == .unix(path: socket))
        let r = try runProcess(qemuIO, ["-f", "raw", unix, "-c", "length"])
        #expect(r.status == 0 && r.stdout == "1 MiB\n", "\(unix): \(r.stdout)\(r.stderr)")
        if let nbdinfo = QemuTools.require("nbdinfo") {
            let info = try runProcess(nbdinfo, ["--size", unix])
            #expect(info.status == 0 && info.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1048576", "\(unix): \(info.stdout)\(info.stderr)")
        }
        #expect(s.stop() != nil)
    }

    /// A script that starts the server, reads its URI and stops it at once finds SIGTERM
    /// handled: the server stops cleanly (status 0, its last line), every time. The signals
    /// used to be taken after the URI was printed: a SIGTERM in between killed it (143) or was
    /// lost, and the server then never stopped.
    @Test func aSigtermRightAfterTheURIStopsTheServer() throws {
        for round in 0..<20 {
            let s = try NBDServerProcess(size: 1 << 20, arguments: ["-f", "raw"])
            let seconds = s.stop(timeout: 5)
            #expect(seconds != nil, "round \(round): no exit within 5 s of SIGTERM")
            #expect(s.process.terminationStatus == 0 && s.process.terminationReason == .exit,
                    "round \(round): status \(s.process.terminationStatus) \(s.stderr)")
            #expect(s.stderr.contains("stopped; 0 faults injected"), "round \(round): \(s.stderr)")
        }
    }

    @Test func anImageServedTwiceOrABadExportIsRefused() throws {
        let dir = TempDir()
        let img = dir.image("a.img", size: 1 << 20)
        let twice = try CLIRunner.run(["nbd", "serve", "-f", "raw", img, "--port", "0", "--export", "again=\(img)"])
        #expect(twice.status == 1 && twice.stderr.contains("Failed to get \"write\" lock"), "\(twice.stderr)")
        let dup = try CLIRunner.run(["nbd", "serve", "-f", "raw", img, "--export", "x=\(img)", "--export", "x=\(img)"])
        #expect(dup.status == 2 && dup.stderr.contains("--export x: two exports with that name"))
        let shape = try CLIRunner.run(["nbd", "serve", "-f", "raw", img, "--export", img])
        #expect(shape.status == 2 && shape.stderr.contains("--export takes NAME=IMAGE"))
        let proxy = try CLIRunner.run(["nbd", "serve", "--upstream", "nbd://127.0.0.1:1/x", "--export", "x=\(img)"])
        #expect(proxy.status == 2 && proxy.stderr.contains("cannot be combined with --upstream"))
    }
}
