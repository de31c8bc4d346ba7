import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeCore

@Suite struct LineSplitterTests {
    func split(_ text: String, chunk: Int = 1 << 20, maxLine: Int = 1 << 16, readSize: Int = .max)
        throws -> (lines: [String], numbers: [Int], stats: LineStats) {
        var splitter = LineSplitter(chunkSize: chunk, maxLineLength: maxLine)
        var lines: [String] = []
        var numbers: [Int] = []
        try splitter.forEachLine(in: MemoryByteSource(text, maxChunk: readSize)) { line, n in
            lines.append(line.string)
            numbers.append(n)
        }
        return (lines, numbers, splitter.stats)
    }

    @Test func splitsOnNewlinesAndStripsCarriageReturns() throws {
        let r = try split("a\r\nbb\n\nccc\n")
        #expect(r.lines == ["a", "bb", "", "ccc"])
        #expect(r.numbers == [1, 2, 3, 4])
        #expect(!r.stats.endedMidLine)
    }

    /// A file with lone `\r` line ends (a classic Mac file, a terminal capture) is split at them,
    /// however the reads cut it; once it was one overlong line, skipped, and "no errors" followed.
    @Test(arguments: [1, 3, 100, 1 << 20])
    func carriageReturnOnlyLineEnds(readSize: Int) throws {
        let r = try split("[    1.0] one\r[    2.0] two\r\rthree", readSize: readSize)
        #expect(r.lines == ["[    1.0] one", "[    2.0] two", "", "three"])
        #expect(r.stats.carriageReturnLineEnds)
        #expect(r.stats.endedMidLine)
        let long = String(repeating: "x", count: 300) + "\r"
        let many = try split(String(repeating: long, count: 1000), maxLine: 1024, readSize: readSize)
        #expect(many.lines.count == 1000)
        #expect(many.lines.allSatisfy { $0.count == 300 })
    }

    /// `\r` before `\n` (`\r\r\n` serial consoles) and `\r` inside lines of a `\n` file never split a line.
    @Test(arguments: [1, 5, 1 << 20])
    func carriageReturnsInANewlineFileDoNotSplit(readSize: Int) throws {
        let r = try split("a\r\r\nb\rc\n" + String(repeating: "\r", count: 10) + "d\n", readSize: readSize)
        #expect(r.lines == ["a\r", "b\rc", String(repeating: "\r", count: 10) + "d"])
        #expect(!r.stats.carriageReturnLineEnds)
    }

    @Test func lastLineWithoutNewlineIsKeptAndFlagged() throws {
        let r = try split("one\ntwo")
        #expect(r.lines == ["one", "two"])
        #expect(r.stats.endedMidLine)
    }

    @Test func emptyInput() throws {
        let r = try split("")
        #expect(r.lines.isEmpty)
        #expect(r.stats.lines == 0)
    }

    /// Lines must come out whole however the reads cut the input.
    @Test(arguments: [1, 2, 3, 7, 64])
    func linesStraddlingReadsAndChunks(readSize: Int) throws {
        let text = (1...200).map { "line \($0) " + String(repeating: "x", count: $0 % 37) }.joined(separator: "\n") + "\n"
        let r = try split(text, chunk: 16, maxLine: 128, readSize: readSize)
        #expect(r.lines == text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init))
        #expect(r.stats.bytes == Int64(text.utf8.count))
    }

    @Test func overlongLinesAreSkippedAndCountedNotSplit() throws {
        let long = String(repeating: "z", count: 500)
        let r = try split("before\n\(long)\nafter\n\(long)\n\(long)", chunk: 64, maxLine: 100, readSize: 50)
        #expect(r.lines == ["before", "after"])
        #expect(r.numbers == [1, 3])
        #expect(r.stats.overlongLines == 3)
        #expect(r.stats.lines == 5)
    }

    @Test func overlongLineInsideOneChunk() throws {
        let long = String(repeating: "q", count: 300)
        let r = try split("a\n\(long)\nb\n", chunk: 4096, maxLine: 100)
        #expect(r.lines == ["a", "b"])
        #expect(r.stats.overlongLines == 1)
    }

    @Test func binaryJunkDoesNotStopTheStream() throws {
        var bytes: [UInt8] = Array("ok 1\n".utf8)
        bytes += [0, 1, 2, 0xFF, 0xFE, 0x0A]
        bytes += Array("ok 2\n".utf8)
        var splitter = LineSplitter()
        var seen: [(String, Bool)] = []
        try splitter.forEachLine(in: MemoryByteSource(bytes)) { line, _ in seen.append((line.string, line.looksBinary)) }
        #expect(seen.count == 3)
        #expect(seen[0] == ("ok 1", false))
        #expect(seen[1].1 == true)
        #expect(seen[2] == ("ok 2", false))
    }
}

@Suite struct LineBytesTests {
    func with<T>(_ s: String, _ body: (LineBytes) -> T) -> T {
        Array(s.utf8).withUnsafeBufferPointer { body(LineBytes($0)) }
    }

    @Test func findAndMatch() {
        with("vdev 0x55 req 0x66 ret -5") { l in
            #expect(l.find("req ") == 10)
            #expect(l.find("ret ", from: 11) == 19)
            #expect(l.find("nothere") == nil)
            #expect(l.find(byte: 0x20) == 4)
            #expect(l.matches("vdev", at: 0))
            #expect(!l.matches("vdev", at: 1))
            #expect(l.find(bytes: Array("0x66".utf8)) == 14)
        }
        with("aab") { l in #expect(l.find("ab") == 1) }
        with("") { l in #expect(l.find("a") == nil) }
    }

    @Test func numbers() {
        with("sector 494491 ret -28 ptr 0x7f3aC0 t 439.490934") { l in
            #expect(l.decimal(at: 7)?.value == 494491)
            #expect(l.signedDecimal(at: 18)?.value == -28)
            #expect(l.hex(at: 26)?.value == 0x7f3ac0)
            let s = l.seconds(at: 37)!
            #expect(abs(s.value - 439.490934) < 1e-9)
            #expect(l.decimal(at: 0) == nil)
        }
        with("99999999999999999999999") { l in #expect(l.decimal(at: 0) == nil) }
        with("0x1ffffffffffffffff") { l in #expect(l.hex(at: 0) == nil) }
        with("ffffffffffffffff") { l in #expect(l.hex(at: 0)?.value == UInt64.max) }
    }

    @Test func invalidUTF8BecomesReplacementNotACrash() {
        let bytes: [UInt8] = [0x61, 0xFF, 0x62]
        let s = bytes.withUnsafeBufferPointer { LineBytes($0).string }
        #expect(s == "a\u{FFFD}b")
    }
}
