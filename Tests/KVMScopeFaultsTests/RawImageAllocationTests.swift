import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeFaults

/// `RawImageFile.allocation` (SEEK_DATA/SEEK_HOLE) and block status through the rule engine.
@Suite struct RawImageAllocationTests {
    func sparse(_ dir: TempDir, size: Int64, data: [(Int64, Int)]) -> String {
        let path = dir.path + "/s.img"
        let fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0o644)
        #expect(fd >= 0 && ftruncate(fd, off_t(size)) == 0)
        for (offset, n) in data { #expect(pwrite(fd, [UInt8](repeating: 1, count: n), n, off_t(offset)) == n) }
        close(fd)
        return path
    }
    let hole = { (n: Int64) in BlockExtent(length: n, isHole: true, readsAsZeroes: true) }
    let data = { (n: Int64) in BlockExtent(length: n) }

    @Test func holesAreHoleAndZeroDataIsNeither() throws {
        let dir = TempDir()
        let image = try RawImageFile(path: sparse(dir, size: 1 << 20, data: [(65536, 8192), (512 << 10, 4096)]))
        let (e, runs) = image.allocation(offset: 0, length: 1 << 20)
        #expect(e == 0)
        #expect(runs == [hole(65536), data(8192), hole((512 << 10) - 65536 - 8192), data(4096), hole((512 << 10) - 4096)])
        // A range inside one run, a range ending inside data, and nothing for 0 bytes.
        #expect(image.allocation(offset: 4096, length: 4096).extents == [hole(4096)])
        #expect(image.allocation(offset: 60000, length: 10000).extents == [hole(65536 - 60000), data(10000 - (65536 - 60000))])
        #expect(image.allocation(offset: 0, length: 0).extents.isEmpty)
    }

    @Test func theNumberOfRunsIsBoundedAndTheyNeverPassTheRange() throws {
        let dir = TempDir()
        let image = try RawImageFile(path: sparse(dir, size: 1 << 20, data: (0..<64).map { (Int64($0) * 16384, 1) }))
        let (_, runs) = image.allocation(offset: 0, length: 1 << 20, maximumExtents: 5)
        #expect(runs == [data(4096), hole(12288), data(4096), hole(12288), data(4096)])
        #expect(image.allocation(offset: 0, length: 1 << 20).extents.reduce(0) { $0 + $1.length } == 1 << 20)
    }

    @Test func pastTheEndOfAFileThatShrankIsAHole() throws {
        let dir = TempDir()
        let path = sparse(dir, size: 1 << 20, data: [(0, 1 << 20)])
        let image = try RawImageFile(path: path)
        #expect(truncate(path, 256 << 10) == 0)
        // read() returns zeroes there (RawImageFile.read); block status says so.
        #expect(image.allocation(offset: 0, length: 1 << 20).extents == [data(256 << 10), hole(768 << 10)])
    }

    @Test func blockStatusRulesUseBlkdebugsBlockStatusIotype() throws {
        let dir = TempDir()
        let path = sparse(dir, size: 1 << 20, data: [])
        let rules = BlkdebugConfigReader().parse("""
            [inject-error]
            event = "none"
            iotype = "block-status"
            sector = "8"
            errno = "5"
            once = "on"
            """, file: "r.cfg").config
        let backend = FaultInjectingBackend(image: try RawImageFile(path: path), rules: rules)
        let failed = backend.blockStatus(offset: 0, length: 8192)
        #expect(failed.completion.errno == 5 && failed.extents.isEmpty && failed.completion.faults.first?.operation == .blockStatus)
        // once: the next query goes through; reads are never failed by the rule.
        #expect(backend.blockStatus(offset: 0, length: 8192).extents == [hole(8192)])
        var buffer = [UInt8](repeating: 0, count: 512)
        #expect(buffer.withUnsafeMutableBytes { backend.read(offset: 4096, into: $0) }.succeeded)
    }
}
