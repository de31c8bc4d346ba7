import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeTracefs

/// The trace.dat reader on the files the real trace-cmd 3.1.6 wrote (Tests/Fixtures/tracedat),
/// and on damaged copies of them: every damage is one TraceDatError, never a trap or a hang.
@Suite struct TraceDatReaderTests {
    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: TestFixtures.path("tracedat/" + name))))
    }

    static func read(_ bytes: [UInt8]) throws -> (TraceDatFile, [(Int, UInt64, Int)]) {
        let input = try TraceDatInput(stream: MemoryByteSource(bytes), regularFilePath: nil)
        let file = try TraceDatFile.read(input)
        var events: [(Int, UInt64, Int)] = []
        try TraceDatEventReader(file: file, input: input).forEach { events.append(($0.cpu, $0.timestamp, $0.type)) }
        return (file, events)
    }

    @Test(arguments: [("drops-v6.dat", 6, false), ("drops-v7.dat", 7, false), ("drops-v7-zstd.dat", 7, true),
                      ("kvm-v6.dat", 6, false), ("kvm-v7-zstd.dat", 7, true)])
    func realFiles(_ name: String, _ version: Int, _ compressed: Bool) throws {
        let (f, events) = try Self.read(try Self.bytes(name))
        #expect(f.version == version)
        #expect(!f.bigEndian && f.longSize == 8 && f.pageSize == 4096)
        #expect((f.compression == .zstd) == compressed && f.cpuDataCompressed == compressed)
        #expect(f.clock == "local")
        #expect(f.layout.commitSize == 8 && f.layout.dataOffset == 16 && f.layout.pageSize == 4096)
        // CPUs with no data: v6 lists them with size 0, v7 leaves them out.
        #expect(f.cpus.filter { $0.size > 0 }.map(\.cpu) == (name.hasPrefix("drops") ? [0, 1] : []))
        #expect(!f.kallsyms.isEmpty && !f.comms.isEmpty)
        if name.hasPrefix("drops") {
            let kfree = try #require(f.format(system: "skb", name: "kfree_skb"))
            #expect(events.count == 8 && events.allSatisfy { $0.2 == kfree.id })
            #expect(events.map(\.1) == events.map(\.1).sorted(), "merged in time order")
            #expect(Set(events.map(\.0)) == [0, 1])
        } else {
            #expect(f.format(system: "kvm", name: "kvm_exit") != nil && events.isEmpty)
        }
    }

    /// Every prefix of every real file (cut at ~300 points): either a clear error or (when the
    /// cut only removed trailing data) fewer events — never a trap.
    @Test(arguments: ["drops-v6.dat", "drops-v7.dat", "drops-v7-zstd.dat"])
    func truncatedFilesGiveOneClearError(_ name: String) throws {
        let full = try Self.bytes(name)
        let (f, _) = try Self.read(full)
        // Past the CPU data a v7 file has an options section and a strings section; only a
        // cut before the end of the CPU data must lose events.
        let dataEnd = f.cpus.map { $0.offset + $0.size + (f.cpuDataCompressed ? 4 : 0) }.max()!
        let step = max(1, full.count / 300)
        var errors = 0
        for cut in stride(from: 0, to: full.count, by: step) {
            do {
                let (_, events) = try Self.read(Array(full[0..<cut]))
                #expect(events.count < 8 || UInt64(cut) >= dataEnd, "cut at \(cut) of \(full.count) lost nothing?")
            } catch let e as TraceDatError {
                errors += 1
                #expect(!e.description.isEmpty)
            }
        }
        #expect(errors > 0)
    }

    @Test func garbageAndWrongVersions() throws {
        #expect(throws: TraceDatError.notTraceDat) { _ = try Self.read(Array("cpus=2\n  bash-1 [000] 1.0: x\n".utf8)) }
        #expect(throws: TraceDatError.notTraceDat) { _ = try Self.read([0x17, 0x08, 0x44]) }
        var v = try Self.bytes("drops-v6.dat")
        v[10] = UInt8(ascii: "5")
        #expect(throws: TraceDatError.unsupportedVersion("5")) { _ = try Self.read(v) }
        v[10] = UInt8(ascii: "8")
        #expect(throws: TraceDatError.unsupportedVersion("8")) { _ = try Self.read(v) }
        var e = try Self.bytes("drops-v6.dat")
        e[12] = 7    // endianness byte
        #expect { _ = try Self.read(e) } throws: { "\($0)".contains("endianness") }
    }

    /// A CPU data offset beyond the end of the file: refused before any page is read.
    @Test func cpuOffsetsOutsideTheFileAreRefused() throws {
        var b = try TraceDatBuilder.withFixtureHeaders()
        b.cpus = [[.init(timestamp: 1000, payload: [1, 0, 0, 0, 7, 0, 0, 0])]]
        var file = b.build()
        let table = try #require(Self.find(Array("flyrecord\0".utf8), in: file)) + 10
        file.replaceSubrange(table..<table + 8, with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Array($0) })
        #expect { _ = try Self.read(file) } throws: { ($0 as? TraceDatError).map { if case .outOfBounds = $0 { true } else { false } } ?? false }
    }

    /// Many CPUs listed over the same 1 MiB of pages: each would hold its own page copy, so
    /// the file (1 MiB) would take 600 MiB; refused instead.
    @Test func cpusOverTheSameBytesCannotTakeUnboundedMemory() throws {
        var b = try TraceDatBuilder.withFixtureHeaders()
        b.pageSize = 1 << 20
        b.cpus = [[.init(timestamp: 1000, payload: [1, 0, 0, 0, 7, 0, 0, 0])]]
        let one = b.build()
        let tag = try #require(Self.find(Array("flyrecord\0".utf8), in: one))
        let table = tag + 10
        let entry = Array(one[table..<table + 16])
        let offset = UInt64(littleEndian: entry[0..<8].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let copies = 600
        var f = Array(one[0..<table])
        f.replaceSubrange(tag - 4..<tag, with: withUnsafeBytes(of: UInt32(copies).littleEndian) { Array($0) })
        let shifted = offset + UInt64((copies - 1) * 16)
        for _ in 0..<copies {
            f += withUnsafeBytes(of: shifted.littleEndian) { Array($0) } + Array(entry[8..<16])
        }
        f += one[(table + 16)...]
        #expect { _ = try Self.read(f) } throws: { "\($0)".contains("past 512 MiB at once") }
    }

    /// Random bytes after a valid magic and version, many seeds: errors only.
    @Test func randomHeadersNeverTrap() throws {
        var rng = SplitMix64(seed: 20)
        for _ in 0..<2000 {
            var f: [UInt8] = [0x17, 0x08, 0x44] + Array("tracing".utf8) + [rng.next() & 1 == 0 ? 0x36 : 0x37, 0, 0, 8, 0, 0x10, 0, 0]
            for _ in 0..<(Int(rng.next() % 200)) { f.append(UInt8(truncatingIfNeeded: rng.next())) }
            _ = try? Self.read(f)
        }
    }

    /// Flipped bytes anywhere in a real v7/zstd file: errors or events, never a trap.
    @Test func flippedBytesNeverTrap() throws {
        let full = try Self.bytes("drops-v7-zstd.dat")
        var rng = SplitMix64(seed: 7)
        for _ in 0..<600 {
            var f = full
            for _ in 0..<4 { f[Int(rng.next() % UInt64(f.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
            _ = try? Self.read(f)
        }
    }

    @Test func zlibBlocksDecompressAndBadSizesAreRefused() throws {
        // Python's zlib.compress(b"trace-cmd" * 4): a zlib stream, as compress-zlib.c writes.
        let text = Array(String(repeating: "trace-cmd", count: 4).utf8)
        let block: [UInt8] = [0x78, 0x9c, 0x2b, 0x29, 0x4a, 0x4c, 0x4e, 0xd5, 0x4d, 0xce, 0x4d, 0x29, 0xc1, 0xcd,
                              0x00, 0x00, 0x00, 0x97, 0x0d, 0xc1]
        let out = try block.withUnsafeBytes { try BlockDecompression.decompress($0, size: text.count, algorithm: .zlib) }
        #expect(out == text)
        #expect(throws: BlockDecompression.Failure.self) {
            _ = try block.withUnsafeBytes { try BlockDecompression.decompress($0, size: text.count - 1, algorithm: .zlib) }
        }
        #expect(throws: BlockDecompression.Failure.self) {
            _ = try block.withUnsafeBytes { try BlockDecompression.decompress($0, size: text.count + 1, algorithm: .zlib) }
        }
    }

    static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && Array(hay[i..<i + needle.count]) == needle { return i }
        return nil
    }
}
