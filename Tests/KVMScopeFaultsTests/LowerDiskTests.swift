import Foundation
import Testing
@testable import KVMScopeFaults

/// The rule engine in front of a lower disk that is not a file: what reaches the disk, in
/// which order, and what the backend says it can do.
@Suite struct LowerDiskTests {
    /// A disk that records its calls (an NBD upstream's shape: native FUA, no write zeroes).
    final class RecordingDisk: LowerDisk, @unchecked Sendable {
        let size: Int64 = 1 << 20
        let isReadOnly = false
        var capabilities: DiskCapabilities
        private let lock = NSLock()
        private var _calls: [String] = []
        var calls: [String] { lock.lock(); defer { lock.unlock() }; return _calls }
        init(_ c: DiskCapabilities) { capabilities = c }
        private func note(_ s: String) { lock.lock(); _calls.append(s); lock.unlock() }
        func read(offset: Int64, into buffer: UnsafeMutableRawBufferPointer) -> Int32 { note("read \(offset)"); return 0 }
        func write(offset: Int64, from buffer: UnsafeRawBufferPointer, fua: Bool) -> Int32 { note("write \(offset) fua=\(fua)"); return 0 }
        func writeZeroes(offset: Int64, length: Int64, mayUnmap: Bool, fua: Bool) -> Int32 { note("zero \(offset) fua=\(fua)"); return 0 }
        func discard(offset: Int64, length: Int64) -> Int32 { note("discard \(offset)"); return 0 }
        func sync() -> Int32 { note("sync"); return 0 }
        func blockAllocation(offset: Int64, length: Int64) -> (errno: Int32, extents: [BlockExtent]) {
            (0, [BlockExtent(length: length / 2, isHole: true, readsAsZeroes: true), BlockExtent(length: length - length / 2)])
        }
    }

    @Test func fuaGoesDownToADiskThatDoesItAndIsAFlushOtherwise() {
        let native = RecordingDisk(DiskCapabilities(fua: true, callsWaitOnPeer: true))
        let b = FaultInjectingBackend(image: native, rules: nil)
        let data = [UInt8](repeating: 1, count: 512)
        #expect(data.withUnsafeBytes { b.write(offset: 0, from: $0, fua: true) }.succeeded)
        #expect(b.writeZeroes(offset: 4096, length: 512, mayUnmap: false, fua: true).succeeded)
        #expect(native.calls == ["write 0 fua=true", "zero 4096 fua=true"])
        // Written since the last flush: a flush reaches the disk.
        #expect(b.flush().succeeded && native.calls.last == "sync")

        let emulated = RecordingDisk(DiskCapabilities(fua: false))
        let e = FaultInjectingBackend(image: emulated, rules: nil)
        #expect(data.withUnsafeBytes { e.write(offset: 0, from: $0, fua: true) }.succeeded)
        #expect(emulated.calls == ["write 0 fua=false", "sync"])
    }

    @Test func theBackendAnnouncesTheDisksCommandsAndAlwaysFUA() {
        let disk = RecordingDisk(DiskCapabilities(flush: false, fua: false, trim: false, writeZeroes: false, multiConn: true,
                                                  minimumBlockSize: 512, preferredBlockSize: 65536, callsWaitOnPeer: true))
        let c = FaultInjectingBackend(image: disk, rules: nil).capabilities
        #expect(!c.flush && !c.trim && !c.writeZeroes && c.fua)
        #expect(c.minimumBlockSize == 512 && c.preferredBlockSize == 65536 && c.callsWaitOnPeer)
        // A file: everything, FUA by fdatasync, on the page cache.
        #expect(DiskCapabilities.localFile.flush && !DiskCapabilities.localFile.fua && !DiskCapabilities.localFile.callsWaitOnPeer)
    }

    @Test func rulesStillDecideWhatReachesTheDiskAndBlockStatusPassesThrough() {
        let disk = RecordingDisk(DiskCapabilities(fua: true, callsWaitOnPeer: true))
        let rules = BlkdebugConfigReader().parse("[inject-error]\nevent = \"read_aio\"\niotype = \"read\"\nsector = \"0\"\nerrno = \"5\"\n",
                                                 file: "r.cfg").config
        let b = FaultInjectingBackend(image: disk, rules: rules)
        var buf = [UInt8](repeating: 0, count: 512)
        #expect(buf.withUnsafeMutableBytes { b.read(offset: 0, into: $0) }.errno == EIO)
        #expect(buf.withUnsafeMutableBytes { b.read(offset: 512, into: $0) }.succeeded)
        #expect(disk.calls == ["read 512"])   // the failed read never reached the disk
        let status = b.blockStatus(offset: 0, length: 8192)
        #expect(status.completion.succeeded && status.extents.map(\.length) == [4096, 4096] && status.extents[0].isHole)
    }
}
