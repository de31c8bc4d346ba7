import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeFaults
@testable import KVMScopeNBD

/// Disk I/O runs on the server's I/O threads, not on the event loops: one client's slow flush
/// (a real fsync on a slow disk; here a flush held on a semaphore) must not stop another client
/// on the same event loop.
@Suite(.serialized) struct NBDDiskIOTests {
    typealias RawClient = NBDHostileClientTests.RawClient

    /// A backend whose flush blocks until released (at most 10 s, so a failure cannot hang).
    final class HeldFlushBackend: BlockBackend, @unchecked Sendable {
        let inner: FaultInjectingBackend
        let flushStarted = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        init(_ inner: FaultInjectingBackend) { self.inner = inner }
        var size: Int64 { inner.size }
        var isReadOnly: Bool { inner.isReadOnly }
        func read(offset: Int64, into buffer: UnsafeMutableRawBufferPointer) -> BlockCompletion { inner.read(offset: offset, into: buffer) }
        func write(offset: Int64, from buffer: UnsafeRawBufferPointer, fua: Bool) -> BlockCompletion { inner.write(offset: offset, from: buffer, fua: fua) }
        func writeZeroes(offset: Int64, length: Int64, mayUnmap: Bool, fua: Bool) -> BlockCompletion {
            inner.writeZeroes(offset: offset, length: length, mayUnmap: mayUnmap, fua: fua)
        }
        func discard(offset: Int64, length: Int64) -> BlockCompletion { inner.discard(offset: offset, length: length) }
        func flush() -> BlockCompletion {
            flushStarted.signal()
            _ = release.wait(timeout: .now() + 10)
            return inner.flush()
        }
    }

    @Test func aHeldFlushDelaysNoOtherClientOnTheSameEventLoop() throws {
        let dir = TempDir()
        let image = dir.image("disk.img", size: 4 << 20, fill: true)
        let backend = HeldFlushBackend(FaultInjectingBackend(image: try RawImageFile(path: image), rules: nil))
        // One event loop: both clients share it.
        let server = NBDServer(export: NBDExport(name: "disk", backend: backend), listen: [.tcp(host: "127.0.0.1", port: 0)], threads: 1)
        try server.start()
        defer { backend.release.signal(); server.shutdown() }
        let port = try #require(server.tcpPort)

        let a = try RawClient(port: port)
        #expect(a.negotiate())
        // A writes, then flushes; the flush holds its I/O thread.
        a.send(a.request(NBD.Command.write.rawValue, offset: 0, length: 4096, cookie: 1) + [UInt8](repeating: 0x5a, count: 4096))
        a.send(a.request(NBD.Command.flush.rawValue, offset: 0, length: 0, cookie: 2))
        #expect(backend.flushStarted.wait(timeout: .now() + 10) == .success)
        #expect(a.simpleReplyError() == 0)   // the write's reply came before the flush began

        // B connects and reads while A's flush is held (each recv gives up after 5 s).
        let b = try RawClient(port: port)
        #expect(b.negotiate())
        for i in 0..<20 {
            b.send(b.request(NBD.Command.read.rawValue, offset: UInt64(4096 + i * 4096), length: 4096, cookie: UInt64(i)))
            #expect(b.simpleReplyError() == 0)
            #expect(b.recv(4096) != nil)
        }
        // A's own later requests wait behind its flush (requests of a connection run in order):
        // its read of the block it wrote is answered only after the flush.
        a.send(a.request(NBD.Command.read.rawValue, offset: 0, length: 4096, cookie: 3))
        backend.release.signal()
        let flushReply = try #require(a.recv(16))
        #expect(Array(flushReply[8..<16]) == RawClient.be(UInt64(2)))
        #expect(a.simpleReplyError() == 0)
        #expect(a.recv(4096) == [UInt8](repeating: 0x5a, count: 4096))
    }
}
