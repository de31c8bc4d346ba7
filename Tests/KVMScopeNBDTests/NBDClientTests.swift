import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeFaults
@testable import KVMScopeNBD

/// kvmscope's NBD client against kvmscope's own server, in one process: the handshake, the
/// upstream's flags, pipelining from many threads (replies matched by cookie), errors, and a
/// server that goes away.
@Suite(.serialized) struct NBDClientTests {
    final class Log: @unchecked Sendable {
        private let lock = NSLock()
        private var _lines: [String] = []
        var lines: [String] { lock.lock(); defer { lock.unlock() }; return _lines }
        func add(_ s: String) { lock.lock(); _lines.append(s); lock.unlock() }
    }

    @Test func negotiatesTheExportAndItsFlags() throws {
        let s = try TestServer(size: 4 << 20, fill: true)
        let client = try NBDClient(uri: try NBDURI.parse("nbd://127.0.0.1:\(s.port)/disk"))
        defer { client.close() }
        #expect(client.export.size == 4 << 20)
        // kvmscope's server acknowledges NBD_OPT_EXTENDED_HEADERS, which supersede structured replies.
        #expect(client.export.extendedHeaders && !client.export.structuredReplies)
        #expect(client.export.has(NBD.TransmissionFlag.sendFlush) && client.export.has(NBD.TransmissionFlag.sendTrim))
        #expect(!client.export.has(NBD.TransmissionFlag.readOnly))
        #expect(client.export.minimumBlockSize == 1 && client.export.preferredBlockSize == 4096)
        #expect(client.export.maximumPayload == NBD.maximumPayload)
        // kvmscope's server (before block status) refuses meta contexts: no allocation context.
        let disk = NBDUpstreamDisk(client: client)
        #expect(disk.blockAllocation(offset: 0, length: 4096).extents == [BlockExtent(length: 4096)])
    }

    @Test func refusesAnUnknownExportWithOneLine() throws {
        let s = try TestServer(size: 1 << 20)
        #expect(throws: NBDClientError.self) { try NBDClient(uri: try NBDURI.parse("nbd://127.0.0.1:\(s.port)/nosuch")) }
        do { _ = try NBDClient(uri: try NBDURI.parse("nbd://127.0.0.1:\(s.port)/nosuch")) } catch let e as NBDClientError {
            #expect(e.message.contains("has no export named 'nosuch'") && !e.isUsageError)
        }
    }

    @Test func pipelinesRequestsFromManyThreadsAndMatchesRepliesByCookie() throws {
        let s = try TestServer(size: 8 << 20, fill: true)
        let client = try NBDClient(uri: try NBDURI.parse("nbd://127.0.0.1:\(s.port)/disk"), maxInFlight: 4)
        defer { client.close() }
        let disk = NBDUpstreamDisk(client: client)
        let expected = [UInt8](FileManager.default.contents(atPath: s.image)!)
        let bad = Log()
        // 16 threads, each on its own 512 KiB region: writes of a per-thread pattern, reads of
        // what the image held before, reads back of the writes, of sizes that differ per request.
        DispatchQueue.concurrentPerform(iterations: 16) { t in
            let base = Int64(t) << 19
            for i in 0..<20 {
                let len = 512 * (1 + (i * 7 + t) % 16)
                let off = base + Int64(i) * 16384
                var buf = [UInt8](repeating: 0, count: len)
                let e = buf.withUnsafeMutableBytes { disk.read(offset: off, into: $0) }
                if e != 0 || buf[...] != expected[Int(off)..<Int(off) + len] { bad.add("thread \(t) read \(i): \(e)") }
                let pattern = [UInt8](repeating: UInt8(t * 16 + i % 16), count: len)
                let w = pattern.withUnsafeBytes { disk.write(offset: off + 8192, from: $0, fua: false) }
                var back = [UInt8](repeating: 0, count: len)
                let r = back.withUnsafeMutableBytes { disk.read(offset: off + 8192, into: $0) }
                if w != 0 || r != 0 || back != pattern { bad.add("thread \(t) write \(i): \(w) \(r)") }
            }
        }
        #expect(bad.lines.isEmpty, "\(bad.lines.prefix(5))")
        #expect(disk.sync() == 0)
    }

    @Test func upstreamErrorsArriveAsErrnos() throws {
        let s = try TestServer(rules: "[inject-error]\nevent = \"none\"\niotype = \"read\"\nsector = \"8\"\nerrno = \"28\"\n", size: 1 << 20)
        let client = try NBDClient(uri: try NBDURI.parse("nbd://127.0.0.1:\(s.port)/disk"))
        defer { client.close() }
        let disk = NBDUpstreamDisk(client: client)
        var buf = [UInt8](repeating: 0, count: 4096)
        #expect(buf.withUnsafeMutableBytes { disk.read(offset: 4096, into: $0) } == ENOSPC)
        #expect(buf.withUnsafeMutableBytes { disk.read(offset: 2048, into: $0) } == ENOSPC)
        #expect(buf.withUnsafeMutableBytes { disk.read(offset: 0, into: $0) } == 0)
        #expect(buf.withUnsafeMutableBytes { disk.read(offset: 8192, into: $0) } == 0)
        // A request past the end: the server's EINVAL.
        #expect(buf.withUnsafeMutableBytes { disk.read(offset: (1 << 20) - 100, into: $0) } == EINVAL)
        #expect(client.deadBecause == nil)
    }

    @Test func aServerThatGoesAwayFailsEveryRequestWithEIOAndOneLogLine() throws {
        let s = try TestServer(size: 1 << 20)
        let log = Log()
        let client = try NBDClient(uri: try NBDURI.parse("nbd://127.0.0.1:\(s.port)/disk"), timeout: 5) { log.add($0) }
        defer { client.close() }
        let disk = NBDUpstreamDisk(client: client)
        var buf = [UInt8](repeating: 0, count: 4096)
        #expect(buf.withUnsafeMutableBytes { disk.read(offset: 0, into: $0) } == 0)
        s.server.shutdown()
        let after = (0..<3).map { _ in buf.withUnsafeMutableBytes { disk.read(offset: 0, into: $0) } }
        #expect(after.allSatisfy { $0 == EIO })
        #expect(client.deadBecause != nil)
        #expect(log.lines.count == 1 && log.lines[0].contains("every request to it now fails with EIO"))
    }
}
