import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeFaults

/// Where qemu-io would wait forever (a synchronous request at a breakpoint, wait_break on a tag
/// nothing stopped at, aio_flush or the end of the session with a request stopped), kvmscope io
/// says so and goes on; and what a script can keep in flight is bounded.
@Suite struct QemuIOSessionAsyncTests {
    final class Captured: @unchecked Sendable {
        private let lock = NSLock()
        private var outText = "", errText = ""
        var out: String { lock.lock(); defer { lock.unlock() }; return outText }
        var err: String { lock.lock(); defer { lock.unlock() }; return errText }
        func appendOut(_ s: String) { lock.lock(); outText += s; lock.unlock() }
        func appendErr(_ s: String) { lock.lock(); errText += s; lock.unlock() }
    }

    private func session(_ img: String) throws -> (QemuIOSession, Captured) {
        let file = try RawImageFile(path: img)
        let backend = FaultInjectingBackend(image: file, rules: nil)
        let c = Captured()
        return (QemuIOSession(backend: backend, out: { c.appendOut($0) }, err: { c.appendErr($0) }), c)
    }

    @Test func synchronousRequestAtABreakpointGoesOnAndWaitBreakDoesNotHang() throws {
        let dir = TempDir()
        let (s, c) = try session(dir.image("d.img", size: 1 << 20))
        #expect(s.run("break write_aio A"))
        #expect(s.run("write -q -P 0x5a 0 4k"))
        #expect(c.err.contains("reached breakpoint 'A' at write_aio, where qemu-io would wait forever"))
        #expect(!c.out.contains("Suspended"))
        #expect(!s.run("wait_break A"))                  // used up by the write: nothing will ever stop there
        #expect(c.err.contains("wait_break: no request is stopped at 'A'"))
        #expect(s.run("read -q -P 0x5a 0 4k"))
    }

    @Test func aioFlushWithAStoppedRequestFailsAndTheEndResumesIt() throws {
        let dir = TempDir()
        let img = dir.image("d.img", size: 1 << 20)
        let (s, c) = try session(img)
        #expect(s.run("break pwritev_done A"))
        #expect(s.run("aio_write -P 0x61 64k 4k"))
        #expect(c.out == "blkdebug: Suspended request 'A'\n")
        #expect(s.run("wait_break A"))
        #expect(!s.run("aio_flush"))
        #expect(c.err.contains("aio_flush: a request is stopped at a breakpoint"))
        s.finish()
        #expect(c.err.contains("resuming a request still stopped at 'A' at the end"))
        #expect(c.out.hasPrefix("blkdebug: Suspended request 'A'\nblkdebug: Resuming request 'A'\nwrote 4096/4096 bytes at offset 65536\n"))
        let bytes = try #require(FileManager.default.contents(atPath: img))
        #expect(bytes[65536..<69632].allSatisfy { $0 == 0x61 })
    }

    @Test func requestsInFlightAreBounded() throws {
        let dir = TempDir()
        let (s, c) = try session(dir.image("d.img", size: 8 << 20))
        let n = AsyncRequests.maxInFlight
        for i in 0..<n { #expect(s.run("break write_aio T\(i)")) }
        for i in 0..<n { #expect(s.run("aio_write -q \(i * 4096) 4k")) }
        #expect(!s.run("aio_write -q 0 4k"))            // all stopped: nothing can make room
        #expect(c.err.contains("too many requests in flight (\(n),"))
        s.finish()                                        // resumes all, every one completes
        #expect(c.out.components(separatedBy: "Resuming request").count == n + 1)
        #expect(s.run("aio_write -q 0 4k") && s.run("aio_flush"))
    }

    @Test func resizeTakesQemusResizePermissionForTheCommandOnly() throws {
        let dir = TempDir()
        let img = dir.image("d.img", size: 1 << 20)
        let file = try RawImageFile(path: img)
        // Another process that shares writing but not resizing (a guest with share-rw=on).
        var other: RawImageFile? = try RawImageFile(path: img, readOnly: true)
        _ = try QemuImageLock.acquire(fd: other!.descriptor, path: img, permissions: [.consistentRead],
                                      shared: [.consistentRead, .write, .writeUnchanged])
        #expect(file.resize(to: 2 << 20, preallocation: .off) == "Failed to get \"resize\" lock; is another process using the image [\(img)]?")
        #expect(file.size == 1 << 20)
        other = nil                                       // its locks go with its descriptor
        let unlockedOther = try RawImageFile(path: img, readOnly: true)
        _ = try QemuImageLock.acquire(fd: unlockedOther.descriptor, path: img, permissions: [.consistentRead], shared: .all)
        #expect(file.resize(to: 2 << 20, preallocation: .full) == nil)
        #expect(file.size == 2 << 20)
        // The resize permission went with the command: byte 103 is free again.
        if case .held = QemuImageLock.testLock(unlockedOther.descriptor, 103) { Issue.record("resize lock still held") }
        #expect(file.resize(to: 1 << 20, preallocation: .falloc) == "Cannot use preallocation for shrinking files")
        #expect(file.resize(to: 4096, preallocation: .off) == nil && file.size == 4096)
    }
}
