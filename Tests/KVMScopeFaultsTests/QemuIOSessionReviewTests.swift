import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeFaults

/// What an admin's review found `kvmscope io` doing differently from qemu-io 7.2; each test
/// holds without qemu-io installed (the side-by-side cases in QemuIOTests.swift compare the
/// same scripts with the real one).
@Suite struct QemuIOSessionReviewTests {
    final class Captured: @unchecked Sendable {
        private let lock = NSLock()
        private var outText = "", errText = ""
        var out: String { lock.lock(); defer { lock.unlock() }; return outText }
        var err: String { lock.lock(); defer { lock.unlock() }; return errText }
        func appendOut(_ s: String) { lock.lock(); outText += s; lock.unlock() }
        func appendErr(_ s: String) { lock.lock(); errText += s; lock.unlock() }
    }

    private func session(_ img: String, rules: String? = nil, writethrough: Bool = false) throws -> (QemuIOSession, Captured) {
        let file = try RawImageFile(path: img)
        let config = rules.map { BlkdebugConfigReader().parse($0, file: "r.cfg").config }
        let backend = FaultInjectingBackend(image: file, rules: config, writethrough: writethrough)
        let c = Captured()
        return (QemuIOSession(backend: backend, out: { c.appendOut($0) }, err: { c.appendErr($0) }), c)
    }

    /// qemuio_command_usage prints the cmdinfo_t's `args`: qemu-io's option letters.
    @Test func usageLinesAreQemuIOs() throws {
        let dir = TempDir()
        let (s, c) = try session(dir.image("d.img", size: 1 << 20))
        #expect(!s.run("read -Z 0 4k"))
        #expect(!s.run("write -Z 0 4k"))
        #expect(!s.run("read -r 0 4k"))                  // -r came in qemu-io 8.0
        #expect(c.out == "read [-abCqv] [-P pattern [-s off] [-l len]] off len -- reads a number of bytes at a specified offset\n"
                + "write [-bcCfnquz] [-P pattern | -s source_file] off len -- writes a number of bytes at a specified offset\n"
                + "read [-abCqv] [-P pattern [-s off] [-l len]] off len -- reads a number of bytes at a specified offset\n")
        #expect(c.err == "read: invalid option -- 'Z'\nwrite: invalid option -- 'Z'\nread: invalid option -- 'r'\n")
    }

    @Test func extendedHelpIsQemuIOs() throws {
        let dir = TempDir()
        let (s, c) = try session(dir.image("d.img", size: 1 << 20))
        #expect(s.run("help discard") && s.run("help truncate"))
        #expect(c.out == """
            discard [-Cq] off len -- discards a number of bytes at a specified offset

             discards a range of bytes from the given offset

             Example:
             'discard 512 1k' - discards 1 kilobyte from 512 bytes into the file

             Discards a segment of the currently open file.
             -C, -- report statistics in a machine parsable format
             -q, -- quiet mode, do not show I/O statistics

            truncate [-m prealloc_mode] off -- truncates the current file at the given offset

            """)
    }

    /// write -n: an ENOTSUP write-zeroes is the answer (no buffer of zeroes written); without
    /// -n it falls back. -s: the file's bytes, repeated. -c: ENOTSUP on a raw image.
    @Test func writeNoFallbackSourceFileAndCompressed() throws {
        let dir = TempDir()
        let img = dir.image("d.img", size: 1 << 20)
        let src = dir.file("src.bin", "abc")
        let rules = "[inject-error]\nevent = \"none\"\niotype = \"write-zeroes\"\nerrno = \"95\"\n"
        let (s, c) = try session(img, rules: rules)
        #expect(s.run("write -q -P 0x55 0 8k"))
        #expect(!s.run("write -n -z 0 4k"))
        #expect(s.run("read -q -P 0x55 0 4k"))
        #expect(s.run("write -q -z 4k 4k"))
        #expect(s.run("read -q -P 0 4k 4k"))
        #expect(!s.run("write -n 0 4k"))
        #expect(s.run("write -q -s \(src) 8k 8"))
        #expect(!s.run("write -c 0 4k"))
        #expect(!s.run("write -c -f 0 4k"))
        #expect(c.out == "write failed: Operation not supported\n-n requires -z to be specified\n"
                + "write failed: Operation not supported\n-f and -b or -c cannot be specified at the same time\n")
        #expect(c.err.isEmpty)
        let bytes = try #require(FileManager.default.contents(atPath: img))
        #expect(Array(bytes[8192..<8200]) == Array("abcabcab".utf8))
        #expect(bytes[0..<4096].allSatisfy { $0 == 0x55 })
    }

    /// A file that counts its fdatasyncs.
    final class CountingDisk: LowerDisk, @unchecked Sendable {
        let file: RawImageFile
        private let lock = NSLock()
        private var syncCount = 0
        var syncs: Int { lock.lock(); defer { lock.unlock() }; return syncCount }
        init(_ file: RawImageFile) { self.file = file }
        var size: Int64 { file.size }
        var isReadOnly: Bool { file.isReadOnly }
        var capabilities: DiskCapabilities { file.capabilities }
        func read(offset: Int64, into buffer: UnsafeMutableRawBufferPointer) -> Int32 { file.read(offset: offset, into: buffer) }
        func write(offset: Int64, from buffer: UnsafeRawBufferPointer, fua: Bool) -> Int32 { file.write(offset: offset, from: buffer, fua: fua) }
        func writeZeroes(offset: Int64, length: Int64, mayUnmap: Bool, fua: Bool) -> Int32 {
            file.writeZeroes(offset: offset, length: length, mayUnmap: mayUnmap, fua: fua)
        }
        func discard(offset: Int64, length: Int64) -> Int32 { file.discard(offset: offset, length: length) }
        func sync() -> Int32 { lock.lock(); syncCount += 1; lock.unlock(); return file.sync() }
        func blockAllocation(offset: Int64, length: Int64) -> (errno: Int32, extents: [BlockExtent]) {
            file.blockAllocation(offset: offset, length: length)
        }
    }

    private let flushToDiskEIO = "[inject-error]\nevent = \"flush_to_disk\"\nerrno = \"5\"\n"

    /// qemu-io (writethrough): the first write's flush fires no flush_to_disk, the second's does
    /// and fails it; each write is still synced (blkdebug's node below had it to flush).
    @Test func flushToDiskFiresFromTheSecondWritethroughWrite() throws {
        let dir = TempDir()
        let disk = CountingDisk(try RawImageFile(path: dir.image("d.img", size: 1 << 20)))
        let rules = BlkdebugConfigReader().parse(flushToDiskEIO, file: "r.cfg").config
        let backend = FaultInjectingBackend(image: disk, rules: rules, writethrough: true, formatNodeAbove: true)
        let c = Captured()
        let s = QemuIOSession(backend: backend, out: { c.appendOut($0) }, err: { c.appendErr($0) })
        #expect(s.run("write -q 0 4k"))
        #expect(disk.syncs == 1)
        #expect(!s.run("write -q 4k 4k"))
        #expect(c.out == "write failed: Input/output error\n")
    }

    /// The NBD server's backend (no format node): a FUA write is synced, the first one too,
    /// and its flush fires flush_to_disk.
    @Test func nbdBackendSyncsTheFirstFUAWrite() throws {
        let dir = TempDir()
        let disk = CountingDisk(try RawImageFile(path: dir.image("d.img", size: 1 << 20)))
        let plain = FaultInjectingBackend(image: disk, rules: nil)
        let data = [UInt8](repeating: 0x5a, count: 4096)
        #expect(data.withUnsafeBytes { plain.write(offset: 0, from: $0, fua: true) }.succeeded)
        #expect(disk.syncs == 1)
        let rules = BlkdebugConfigReader().parse(flushToDiskEIO, file: "r.cfg").config
        let armed = FaultInjectingBackend(image: disk, rules: rules)
        #expect(data.withUnsafeBytes { armed.write(offset: 0, from: $0, fua: true) }.errno == EIO)
    }

    /// A write stopped at a breakpoint past the end a truncate set grows the size back when it
    /// completes, as QEMU's bdrv_co_write_req_finish does: length and range checks see it.
    @Test func aWriteCompletingPastATruncatedEndGrowsTheSize() throws {
        let dir = TempDir()
        let (s, c) = try session(dir.image("d.img", size: 1 << 20))
        #expect(s.run("break pwritev A"))
        #expect(s.run("aio_write -q -P 0x11 960k 64k"))
        #expect(s.run("wait_break A"))
        #expect(s.run("truncate 512k"))
        #expect(s.run("length"))
        #expect(s.run("resume A") && s.run("aio_flush"))
        #expect(s.run("length"))
        #expect(s.run("read -q -P 0x11 960k 64k"))
        #expect(c.out == "blkdebug: Suspended request 'A'\n512 KiB\nblkdebug: Resuming request 'A'\n1 MiB\n")
    }
}
