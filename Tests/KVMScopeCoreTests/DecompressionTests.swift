import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeCore

/// The decompressing byte streams, on bytes the real gzip, xz and zstd wrote (made at run
/// time from a lab capture): every byte comes back, however the reads are cut, and every way
/// a compressed file can be broken is one error naming it.
@Suite struct DecompressionTests {
    static var capture: String { LabFixtures.path("write-eio", "console.log") }

    static func compress(_ input: [UInt8], _ command: String) throws -> [UInt8] {
        let dir = TempDir()
        let inPath = dir.path + "/in", outPath = dir.path + "/out"
        try Data(input).write(to: URL(fileURLWithPath: inPath))
        let r = try runProcess("/bin/sh", ["-c", "\(command) < '\(inPath)' > '\(outPath)'"])
        #expect(r.status == 0, "\(command): \(r.stderr)")
        return Array(try Data(contentsOf: URL(fileURLWithPath: outPath)))
    }

    static let tools = [(CompressionFormat.gzip, "gzip -c"), (.xz, "xz -c"), (.zstd, "zstd -q -c")]

    /// Reads a stream to its end with reads of at most `readSize` bytes.
    static func drain(_ s: ByteStream, readSize: Int = 1 << 16) throws -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: readSize)
        while true {
            let n = try buf.withUnsafeMutableBytes { try s.read(into: $0) }
            if n == 0 { return out }
            out += buf[0..<n]
        }
    }

    @Test func everyFormatRoundTripsWhateverTheChunking() throws {
        let text = Array(try Data(contentsOf: URL(fileURLWithPath: Self.capture)))
        for (format, command) in Self.tools {
            guard QemuTools.path(String(command.split(separator: " ")[0])) != nil else {
                Issue.record("\(command) not installed"); continue
            }
            let packed = try Self.compress(text, command)
            #expect(CompressionFormat.detect(packed) == format)
            // Input arriving a byte at a time (a magic split across reads), and in big chunks;
            // output drained a byte at a time and in big reads.
            for (inChunk, outRead) in [(1, 1 << 16), (7, 3), (1 << 20, 1), (1 << 20, 1 << 20)] {
                let s = try DecompressingByteStream(MemoryByteSource(packed, name: "x", maxChunk: inChunk), format: format)
                #expect(try Self.drain(s, readSize: outRead) == text, "\(format) in \(inChunk) out \(outRead)")
            }
        }
    }

    @Test func gzipMembersAndPaddingAsGzipReadsThem() throws {
        let a = Array("first member\n".utf8), b = Array("second member\n".utf8)
        let two = try Self.compress(a, "gzip -c") + Self.compress(b, "gzip -c")
        let s = try DecompressingByteStream(MemoryByteSource(two, maxChunk: 5), format: .gzip)
        #expect(try Self.drain(s) == a + b)
        // Zero bytes after the last member (block padding) are ignored, as gzip ignores them.
        let padded = try Self.compress(a, "gzip -c") + [UInt8](repeating: 0, count: 512)
        #expect(try Self.drain(DecompressingByteStream(MemoryByteSource(padded), format: .gzip)) == a)
        // Anything else is not: garbage after a member, or after the padding.
        for junk in [Array("junk".utf8), [0, 0, 0x41], [0x1F]] {
            let bad = try Self.compress(a, "gzip -c") + junk
            #expect(throws: KVMScopeError.badCompressedInput(path: "<memory>", format: "gzip", detail: "garbage after the last compressed stream")) {
                _ = try Self.drain(DecompressingByteStream(MemoryByteSource(bad), format: .gzip))
            }
        }
    }

    @Test func truncationAnywhereIsAnErrorNotAShortRead() throws {
        let text = Array(try Data(contentsOf: URL(fileURLWithPath: Self.capture)))
        for (format, command) in Self.tools {
            guard QemuTools.path(String(command.split(separator: " ")[0])) != nil else { continue }
            let packed = try Self.compress(text, command)
            for keep in stride(from: 1, to: packed.count, by: max(1, packed.count / 40)) + [packed.count - 1] {
                let s = try DecompressingByteStream(MemoryByteSource(Array(packed.prefix(keep))), format: format)
                do {
                    _ = try Self.drain(s)
                    Issue.record("\(format) cut at \(keep) of \(packed.count) bytes read without an error")
                } catch let e as KVMScopeError {
                    guard case let .badCompressedInput(path, f, _) = e else { Issue.record("\(e)"); continue }
                    #expect(path == "<memory>" && f == format.rawValue)
                }
            }
        }
    }

    @Test func fileSourcesDecompressByMagicNotName() throws {
        let dir = TempDir()
        let text = Array(try Data(contentsOf: URL(fileURLWithPath: Self.capture)))
        let path = dir.path + "/console.log"           // gzip data under a plain name
        try Data(try Self.compress(text, "gzip -c")).write(to: URL(fileURLWithPath: path))
        let f = try FileByteSource(path: path)
        #expect(f.compression == .gzip)
        #expect(f.knownSize == nil)
        #expect(try Self.drain(f) == text)
        let plain = dir.file("plain.log", "hello\n")
        let p = try FileByteSource(path: plain)
        #expect(p.compression == nil && p.knownSize == 6)
        #expect(try Self.drain(p) == Array("hello\n".utf8))
        // Text that merely starts like a magic (0x1F, "(") is read as it is.
        let almost = dir.file("almost.log", "(\u{B5} not zstd\n")
        #expect(try FileByteSource(path: almost).compression == nil)
        let empty = dir.file("empty", "")
        #expect(throws: KVMScopeError.emptyInput(path: empty, compression: nil)) { _ = try FileByteSource(path: empty) }
        #expect(try FileByteSource(path: empty, allowEmpty: true).compression == nil)
    }

    @Test func unsupportedCompressionsAreNamed() throws {
        let dir = TempDir()
        let bz = dir.path + "/x.bz2"
        try Data(Array("BZh91AY&SY".utf8) + [UInt8](repeating: 7, count: 20)).write(to: URL(fileURLWithPath: bz))
        do {
            _ = try FileByteSource(path: bz)
            Issue.record("bzip2 accepted")
        } catch let e as KVMScopeError {
            #expect(e.description.hasPrefix("'\(bz)': bzip2-compressed, which kvmscope does not decompress"))
        }
    }
}
