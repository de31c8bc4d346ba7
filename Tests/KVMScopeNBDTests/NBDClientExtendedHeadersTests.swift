import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
import KVMScopeFaults
@testable import KVMScopeNBD

/// kvmscope's NBD client with NBD_OPT_EXTENDED_HEADERS against real servers: QEMU 10's qemu-nbd
/// (bookworm-backports, lab/setup-qemu-backports) and kvmscope's own server, which speak them,
/// and nbdkit 1.32, which answers NBD_REP_ERR_UNSUP (the fallback to compact headers). On a
/// sparse 8 GiB export, so that a block status query above 32 bits shows which headers carried
/// it; and `nbd serve --upstream` in front of both kinds, mapped by QEMU 10's qemu-img.
@Suite(.serialized) struct NBDClientExtendedHeadersTests {
    static let gib: Int64 = 1 << 30
    let dir = TempDir()

    /// Where the data is: (offset, length) of the runs that are not holes, adjacent ones merged.
    static func dataRuns(_ extents: [BlockExtent], from start: Int64 = 0) -> [[Int64]] {
        var out: [[Int64]] = []
        var at = start
        for e in extents {
            if !e.isHole {
                if let last = out.last, last[0] + last[1] == at { out[out.count - 1][1] += e.length } else { out.append([at, e.length]) }
            }
            at += e.length
        }
        return out
    }

    /// The whole export's allocation, asking again from where each answer ends; the answers' sizes.
    static func map(_ disk: NBDUpstreamDisk) -> (extents: [BlockExtent], answers: [Int64]) {
        var all: [BlockExtent] = [], answers: [Int64] = []
        var at: Int64 = 0
        while at < disk.size && answers.count < 100 {
            let r = disk.blockAllocation(offset: at, length: disk.size - at)
            guard r.errno == 0, !r.extents.isEmpty else { break }
            let covered = r.extents.reduce(0) { $0 + $1.length }
            answers.append(covered)
            all += r.extents
            at += covered
        }
        return (all, answers)
    }

    func qemuNbd10(_ image: String, name: String = "qemu-nbd") throws -> BackgroundPeer? {
        guard let qemuNbd = QemuBackportsTools.require("qemu-nbd") else { return nil }
        let sock = dir.path + "/\(name).sock"
        // -e 2: the proxy and a direct client at once (qemu-nbd serves one client by default).
        return try BackgroundPeer(qemuNbd, ["-f", "raw", "-e", "2", "-k", sock, image], socket: sock, stderrPath: dir.path + "/\(name).stderr")
    }

    func nbdkit(_ args: [String], name: String = "nbdkit") throws -> BackgroundPeer? {
        guard let nbdkit = QemuTools.require("nbdkit") else { return nil }
        let sock = dir.path + "/\(name).sock"
        let p = try BackgroundPeer(nbdkit, ["-f", "-U", sock] + args, socket: sock, stderrPath: dir.path + "/\(name).stderr")
        p.stopSignal = SIGKILL   // see NBDProxyTests.nbdkit
        return p
    }

    func readsAs(_ disk: NBDUpstreamDisk, _ offset: Int64, _ count: Int, _ byte: UInt8) -> Bool {
        var b = [UInt8](repeating: 0xff, count: count)
        return b.withUnsafeMutableBytes { disk.read(offset: offset, into: $0) } == 0 && b.allSatisfy { $0 == byte }
    }

    @Test func qemuNbd10NegotiatesExtendedHeadersAndMapsEightGiBInOneQuery() throws {
        guard let qemuIO = QemuBackportsTools.require("qemu-io") else { return }
        let big = try NBDExtendedHeadersPeerTests.sparseImage(dir, qemuIO: qemuIO)
        guard let upstream = try qemuNbd10(big) else { return }
        let client = try NBDClient(uri: try NBDURI.parse(upstream.uri))
        #expect(client.export.extendedHeaders && !client.export.structuredReplies && client.export.allocationContext != nil)
        let disk = NBDUpstreamDisk(client: client)
        #expect(readsAs(disk, 5 * Self.gib, 64 << 10, 0x5a) && readsAs(disk, 1 << 20, 4096, 0x17))
        // A write (NBD_CMD_FLAG_PAYLOAD_LEN in the extended header), read back and flushed.
        let pattern = [UInt8](repeating: 0x33, count: 4096)
        #expect(pattern.withUnsafeBytes { disk.write(offset: 6 * Self.gib, from: $0, fua: false) } == 0)
        #expect(readsAs(disk, 6 * Self.gib, 4096, 0x33) && disk.sync() == 0)
        // One query for all 8 GiB: a 64-bit effect length, a BLOCK_STATUS_EXT answer covering it.
        let m = Self.map(disk)
        #expect(m.answers == [8 * Self.gib], "\(m.answers)")
        #expect(Self.dataRuns(m.extents) == [[1 << 20, 4096], [5 * Self.gib, 64 << 10], [6 * Self.gib, 4096]], "\(m.extents)")
        disk.close()
        upstream.stop()
        let file = try #require(FileHandle(forReadingAtPath: big))
        try file.seek(toOffset: UInt64(6 * Self.gib))
        #expect(file.readData(ofLength: 4096) == Data(pattern))
    }

    @Test func nbdkit132RefusesExtendedHeadersAndTheClientFallsBackToCompactHeaders() throws {
        guard let upstream = try nbdkit(["memory", "size=8G"]) else { return }
        let client = try NBDClient(uri: try NBDURI.parse(upstream.uri))
        #expect(!client.export.extendedHeaders && client.export.structuredReplies && client.export.allocationContext != nil)
        let disk = NBDUpstreamDisk(client: client)
        let pattern = [UInt8](repeating: 0x5a, count: 64 << 10)
        #expect(pattern.withUnsafeBytes { disk.write(offset: 5 * Self.gib, from: $0, fua: false) } == 0)
        #expect(readsAs(disk, 5 * Self.gib, 64 << 10, 0x5a) && disk.sync() == 0)
        // Compact headers: the first query asks for less than 2 GiB (one near 4 GiB makes
        // nbdkit 1.32 abort), the rest follows in more.
        let first = disk.blockAllocation(offset: 0, length: 8 * Self.gib)
        #expect(first.errno == 0, "\(first) \(client.deadBecause ?? "")")
        let m = Self.map(disk)
        #expect(m.answers.count >= 2 && m.answers[0] < 2 * Self.gib && m.answers.reduce(0, +) == 8 * Self.gib, "\(m.answers)")
        #expect(Self.dataRuns(m.extents) == [[5 * Self.gib, 64 << 10]], "\(m.extents)")
        disk.close()
        upstream.stop()
    }

    @Test func kvmscopesOwnServerTakesExtendedRequestsFromTheClient() throws {
        let s = try TestServer(size: Int(8 * Self.gib), sparseData: [(1 << 20, 4096), (5 * Self.gib, 64 << 10)])
        let client = try NBDClient(uri: try NBDURI.parse("\(s.uri)/disk"))
        #expect(client.export.extendedHeaders)
        let disk = NBDUpstreamDisk(client: client)
        let pattern = [UInt8](repeating: 0x44, count: 8192)
        #expect(pattern.withUnsafeBytes { disk.write(offset: 7 * Self.gib, from: $0, fua: true) } == 0)
        #expect(readsAs(disk, 7 * Self.gib, 8192, 0x44))
        let m = Self.map(disk)
        #expect(m.answers == [8 * Self.gib], "\(m.answers)")
        #expect(Self.dataRuns(m.extents) == [[1 << 20, 4096], [5 * Self.gib, 64 << 10], [7 * Self.gib, 8192]], "\(m.extents)")
        disk.close()
        for _ in 0..<500 where s.observer.disconnected.isEmpty { usleep(10_000) }
        let summary = try #require(s.observer.disconnected.first?.1)
        #expect(summary.extendedHeaders && s.observer.violations.isEmpty, "\(s.observer.violations)")
    }

    /// `nbd serve --upstream` in front of an upstream with extended headers (qemu-nbd 10) and one
    /// without (nbdkit 1.32): QEMU 10's qemu-img maps the proxy (itself with extended headers
    /// toward kvmscope) and sees what it sees mapping the upstream directly, and qemu-io reads
    /// the data through it.
    @Test func blockStatusThroughTheProxyWithAndWithoutExtendedHeadersUpstream() throws {
        guard let qemuIO = QemuBackportsTools.require("qemu-io"), let qemuImg = QemuBackportsTools.require("qemu-img") else { return }
        let big = try NBDExtendedHeadersPeerTests.sparseImage(dir, qemuIO: qemuIO)
        guard let qemu = try qemuNbd10(big), let kit = try nbdkit(["memory", "size=8G"]) else { return }
        let fill = try runProcess(qemuIO, ["-f", "raw", kit.uri, "-c", "write -P 0x5a 5G 64k", "-c", "write -P 0x17 1M 4k"])
        #expect(fill.status == 0, "\(fill.stderr)")
        for (upstream, extended) in [(qemu, true), (kit, false)] {
            let proxySocket = dir.path + "/proxy-\(extended).sock"
            let proxy = try BackgroundPeer(CLIRunner.binary.path, ["nbd", "serve", "--upstream", upstream.uri, "--socket", proxySocket],
                                           socket: proxySocket, stderrPath: dir.path + "/proxy-\(extended).stderr")
            // The start-up line comes right after the socket is listening.
            for _ in 0..<500 where !proxy.stderr.contains("serving") { usleep(10_000) }
            #expect(proxy.stderr.contains("base:allocation") && proxy.stderr.contains("extended-headers") == extended, "\(proxy.stderr)")
            let through = try runProcess(qemuImg, ["map", "--output=json", "-f", "raw", proxy.uri])
            let direct = try runProcess(qemuImg, ["map", "--output=json", "-f", "raw", upstream.uri])
            #expect(through.status == 0 && direct.status == 0, "\(through.stderr)\(direct.stderr)")
            let extents = NBDExtendedHeadersPeerTests.extents(through.stdout)
            #expect(extents == NBDExtendedHeadersPeerTests.extents(direct.stdout), "\(through.stdout)\n\(direct.stdout)")
            // qemu-nbd maps a file by 4 KiB blocks; nbdkit's memory plugin allocates 32 KiB pages.
            let data = extents.filter { $0[2] == "1" }.map { [$0[0], $0[1]] }
            #expect(data == [["1048576", extended ? "4096" : "32768"], ["5368709120", "65536"]], "\(through.stdout)")
            let io = try runProcess(qemuIO, ["-f", "raw", "-r", proxy.uri, "-c", "read -P 0x5a 5G 64k", "-c", "read -P 0x17 1M 4k"])
            #expect(NBDExtendedHeadersPeerTests.withoutRates(io.stdout) == ["read 65536/65536 bytes at offset 5368709120",
                                                                             "read 4096/4096 bytes at offset 1048576"], "\(io.stdout)\(io.stderr)")
            proxy.stop()
        }
        qemu.stop()
        kit.stop()
    }
}
