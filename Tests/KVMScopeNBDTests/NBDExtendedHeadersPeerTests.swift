import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeNBD

/// `kvmscope nbd serve` against a real client that negotiates NBD_OPT_EXTENDED_HEADERS: QEMU 10's
/// qemu-io and qemu-img (bookworm-backports, lab/setup-qemu-backports), on a sparse 8 GiB export,
/// so that block status queries carry effect lengths above 32 bits. QEMU's own trace events
/// (`--trace nbd_*`) show what went over the wire.
@Suite(.serialized) struct NBDExtendedHeadersPeerTests {
    static let gib = 1 << 30

    static func withoutRates(_ s: String) -> [Substring] { s.split(separator: "\n").filter { !$0.contains("ops/sec") } }

    /// A sparse 8 GiB image with 64 KiB of 0x5a at 5 GiB and 4 KiB of 0x17 at 1 MiB.
    static func sparseImage(_ dir: TempDir, qemuIO: String) throws -> String {
        let big = dir.file("big.img", "")
        #expect(truncate(big, off_t(8 * gib)) == 0)
        let w = try runProcess(qemuIO, ["-f", "raw", big, "-c", "write -P 0x5a 5G 64k", "-c", "write -P 0x17 1M 4k"])
        #expect(w.status == 0, "\(w.stderr)")
        return big
    }

    @Test func qemu10NegotiatesExtendedHeadersAndReadsWritesAndMapsThroughThem() throws {
        guard let qemuIO = QemuBackportsTools.require("qemu-io"), let qemuImg = QemuBackportsTools.require("qemu-img") else { return }
        let dir = TempDir()
        let big = try Self.sparseImage(dir, qemuIO: qemuIO)
        let s = try NBDServerProcess(size: 1 << 20, arguments: ["-f", "raw", "--export", "big=\(big)"])
        let uri = "nbd://127.0.0.1:\(s.port)/big"

        // Reads and writes through the 32-byte headers; the data checked by qemu-io's -P.
        let io = try runProcess(qemuIO, ["-f", "raw", "--trace", "nbd_*", uri, "-c", "read -P 0x5a 5G 64k", "-c", "write -P 0x33 6G 4k",
                                         "-c", "read -P 0x33 6G 4k", "-c", "read -P 0 7G 4k"])
        #expect(Self.withoutRates(io.stdout) == ["read 65536/65536 bytes at offset 5368709120", "wrote 4096/4096 bytes at offset 6442450944",
                                                 "read 4096/4096 bytes at offset 6442450944", "read 4096/4096 bytes at offset 7516192768"],
                "\(io.stdout)\(io.stderr)")
        #expect(io.stderr.contains("Received option reply 11 (extended headers), type 1 (ack)"), "\(io.stderr)")
        let written = try #require(FileHandle(forReadingAtPath: big))
        try written.seek(toOffset: UInt64(6 * Self.gib))
        #expect(written.readData(ofLength: 4096) == Data(repeating: 0x33, count: 4096))

        // qemu-img map: one block status query for the whole 8 GiB export (an effect length no
        // compact header can carry), answered with 64-bit descriptors; the same extents as the
        // file's own map.
        let map = try runProcess(qemuImg, ["--trace", "nbd_*", "map", "--output=json", uri])
        #expect(map.status == 0, "\(map.stderr)")
        #expect(map.stderr.contains(".len = 8589934592") && map.stderr.contains("type = 6 (block status (64-bit))"), "\(map.stderr)")
        let direct = try runProcess(qemuImg, ["map", "--output=json", "-f", "raw", big])
        #expect(Self.extents(map.stdout) == Self.extents(direct.stdout), "\(map.stdout)\n\(direct.stdout)")

        // qemu-img convert skips the holes: the copy is the same bytes (qemu-img compare, which
        // compares the data regions and checks that the holes read as zeroes) and stays sparse.
        let copy = dir.path + "/copy.img"
        let convert = try runProcess(qemuImg, ["convert", "-O", "raw", uri, copy])
        #expect(convert.status == 0, "\(convert.stderr)")
        let compare = try runProcess(qemuImg, ["compare", "-f", "raw", "-F", "raw", big, copy])
        #expect(compare.status == 0 && compare.stdout.contains("Images are identical."), "\(compare.stdout)\(compare.stderr)")
        var st = stat()
        #expect(stat(copy, &st) == 0 && Int(st.st_blocks) * 512 < 1 << 20, "\(st.st_blocks) blocks allocated")

        #expect(s.stop() != nil)
        #expect(s.stderrLines(containing: "(extended headers) from export 'big'").count == 3, "\(s.stderr)")
    }

    @Test func anInjectedErrorReachesQemu10AsAnExtendedErrorChunk() throws {
        guard let qemuIO = QemuBackportsTools.require("qemu-io") else { return }
        let dir = TempDir()
        let big = try Self.sparseImage(dir, qemuIO: qemuIO)
        // 5 GiB is sector 10485760: a write there fails with ENOSPC, a read with EIO.
        let rules = dir.file("r.cfg", """
            [inject-error]
            event = "none"
            iotype = "write"
            sector = "10485760"
            errno = "28"

            [inject-error]
            event = "none"
            iotype = "read"
            sector = "10485760"
            errno = "5"
            """)
        let s = try NBDServerProcess(size: 1 << 20, arguments: ["-f", "raw", "--export", "big=\(big)", "--rules", rules])
        let io = try runProcess(qemuIO, ["-f", "raw", "--trace", "nbd_receive_reply_chunk_header", "nbd://127.0.0.1:\(s.port)/big",
                                         "-c", "write 5G 4k", "-c", "read 5G 4k", "-c", "read -P 0x17 1M 4k"])
        #expect(Self.withoutRates(io.stdout) == ["write failed: No space left on device", "read failed: Input/output error",
                                                 "read 4096/4096 bytes at offset 1048576"], "\(io.stdout)\(io.stderr)")
        #expect(io.stderr.contains("type = 32769 (generic error)"), "\(io.stderr)")
        #expect(s.stop() != nil)
    }

    /// start/length/data/zero of each extent in `qemu-img map --output=json` (the host offset
    /// differs: a file has one, an NBD export none).
    static func extents(_ json: String) -> [[String]] {
        let list = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [[String: Any]] ?? []
        return list.map { e in ["start", "length", "data", "zero"].map { "\(e[$0] ?? "-")" } }
    }
}
