import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeNBD

/// [rate] connection-rate over `nbd serve`: two qemu-io clients at once each get their own
/// pipe, where `rate` makes them share one (the fault lines give each request's wait).
@Suite(.serialized) struct NBDConnectionRateTests {
    static func delays(_ s: NBDServerProcess) -> [Substring] {
        s.stderrLines(containing: "(rate) delayed read 0+1048576 by ").map { $0.split(separator: " by ")[1].split(separator: " from ")[0] }
    }

    func twoClientsAtOnce(_ rule: String) throws -> NBDServerProcess? {
        guard let qemuIO = QemuTools.require("qemu-io") else { return nil }
        let dir = TempDir()
        let rules = dir.file("r.cfg", "[rate]\n\(rule)\n")
        let s = try NBDServerProcess(size: 4 << 20, arguments: ["-f", "raw", "--rules", rules])
        let group = DispatchGroup()
        for _ in 0..<2 {
            group.enter()
            DispatchQueue.global().async {
                _ = try? runProcess(qemuIO, ["-f", "raw", "nbd://127.0.0.1:\(s.port)", "-c", "read 0 1M"])
                group.leave()
            }
        }
        #expect(group.wait(timeout: .now() + 60) == .success)
        #expect(s.stop() != nil)
        return s
    }

    @Test func eachConnectionGetsItsOwnPipe() throws {
        // 8M = 8 Mi bits/s: 1 MiB takes exactly 1 s through an idle pipe, on each connection.
        guard let s = try twoClientsAtOnce("connection-rate = \"8M\"") else { return }
        #expect(Self.delays(s) == ["1000.000 ms", "1000.000 ms"], "\(s.stderr)")
    }

    @Test func theOverallRateIsShared() throws {
        // The same through one pipe for both: whichever comes second waits for the first.
        guard let s = try twoClientsAtOnce("rate = \"8M\"") else { return }
        let waits = Self.delays(s).compactMap { Double($0.split(separator: " ")[0]) }.sorted()
        #expect(waits.count == 2 && waits[0] == 1000 && waits[1] > 1000, "\(s.stderr)")
    }
}
