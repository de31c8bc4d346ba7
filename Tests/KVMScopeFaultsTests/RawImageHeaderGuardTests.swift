import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeFaults

/// QEMU's guard on probed raw images (block/raw-format.c raw_co_pwritev), as qemu-io shows it:
/// on a probed image of 0xcd bytes, `write -s` of the 4 bytes "QFI\xfb" at offset 0 fails with
/// EPERM (the sector then reads as qcow2 with version 0xcdcdcdcd), at offset 1 it succeeds.
@Suite struct RawImageHeaderGuardTests {
    private func image(_ dir: TempDir, fill: UInt8) throws -> RawImageFile {
        let path = dir.path + "/disk.img"
        _ = FileManager.default.createFile(atPath: path, contents: Data(repeating: fill, count: 8192))
        return try RawImageFile(path: path)
    }

    private func write(_ file: RawImageFile, _ bytes: [UInt8], at offset: Int64) -> Int32 {
        bytes.withUnsafeBytes { file.write(offset: offset, from: $0) }
    }

    private func firstBytes(_ file: RawImageFile, _ n: Int) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: n)
        _ = b.withUnsafeMutableBytes { file.read(offset: 0, into: $0) }
        return b
    }

    @Test func writeThatMakesAFormatHeaderIsRefused() throws {
        let dir = TempDir()
        let file = try image(dir, fill: 0xcd)
        let magic: [UInt8] = [0x51, 0x46, 0x49, 0xfb]
        #expect(write(file, magic, at: 0) == 0)          // not restricted yet (-f raw)
        #expect(write(file, [0xcd, 0xcd, 0xcd, 0xcd], at: 0) == 0)
        file.restrictFormatHeaderWrites()
        #expect(write(file, magic, at: 0) == EPERM)
        #expect(firstBytes(file, 4) == [0xcd, 0xcd, 0xcd, 0xcd])
        #expect(write(file, magic, at: 1) == 0)
        #expect(write(file, magic, at: 512) == 0)        // only sector 0 is probed
        var sector = [UInt8](repeating: 0x11, count: 4096)
        sector.replaceSubrange(0..<8, with: Array("vhdxfile".utf8))
        #expect(write(file, sector, at: 0) == EPERM)     // a long write starting at 0
    }

    /// Zeroing can make a header too: "QED" followed by a non-NUL byte becomes QED's magic.
    @Test func zeroingAndDiscardThatMakeAFormatHeaderAreRefused() throws {
        let dir = TempDir()
        let file = try image(dir, fill: 0x78)
        #expect(write(file, Array("QEDx".utf8), at: 0) == 0)
        file.restrictFormatHeaderWrites()
        #expect(file.writeZeroes(offset: 3, length: 1, mayUnmap: false) == EPERM)
        #expect(file.discard(offset: 0, length: 4096) == 0)  // all zeroes: raw, allowed
        #expect(firstBytes(file, 4) == [0, 0, 0, 0])
        #expect(write(file, Array("QEDx".utf8), at: 0) == 0)
        #expect(file.discard(offset: 3, length: 1) == EPERM)
        #expect(file.writeZeroes(offset: 4, length: 1 << 12, mayUnmap: true) == 0)
        #expect(firstBytes(file, 4) == Array("QEDx".utf8))
    }
}
