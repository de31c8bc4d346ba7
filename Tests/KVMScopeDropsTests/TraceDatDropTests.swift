import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
import KVMScopeTracefs
@testable import KVMScopeDrops

/// `kvmscope drops trace.dat`: the files the real trace-cmd 3.1.6 wrote here (v6, v7, v7 with
/// zstd; Tests/Fixtures/tracedat/README.md), each read directly and compared, drop for drop,
/// with the same file's `trace-cmd report` text read by the existing text reader.
@Suite struct TraceDatDropTests {
    static func path(_ name: String) -> String { TestFixtures.path("tracedat/" + name) }

    static func binaryDrops(_ stream: ByteStream) throws -> ([DropEvent], TraceDatDropReader) {
        var reader = try TraceDatDropReader(stream: stream)
        var out: [DropEvent] = []
        let symbolizer = LocationSymbolizer(table: reader.symbols)
        try reader.read { e in
            var e = e
            e.location = symbolizer.resolve(e.location)
            out.append(e)
        }
        return (out, reader)
    }

    @Test(arguments: ["drops-v6", "drops-v7", "drops-v7-zstd"])
    func binaryEqualsTraceCmdReport(_ name: String) throws {
        let (binary, reader) = try Self.binaryDrops(FileByteSource(path: Self.path(name + ".dat")))
        let text = try String(contentsOfFile: Self.path(name + ".report.txt"), encoding: .utf8)
        let (textual, _) = try readDrops(text, parser: KfreeSkbLineParser(wantComm: true))
        #expect(binary.count == 8)
        #expect(binary.count == textual.count)
        #expect(Set(binary.map(\.cpu)) == [0, 1], "the drops were provoked on both CPUs")
        for (b, t) in zip(binary, textual) {
            // trace-cmd report prints microseconds, rounded to the nearest (41959.582305843 → .582306).
            let bUs = (b.time! * 1e6).rounded(), tUs = (t.time! * 1e6).rounded()
            #expect(bUs == tUs, "time \(b.time!) vs \(t.time!)")
            #expect(b.cpu == t.cpu)
            #expect(b.pid == t.pid)
            #expect(b.comm == t.comm)
            #expect(b.location.symbolText == t.location.symbolText)
            #expect(b.protocolNumber == t.protocolNumber)
            // The text has only the name; the binary record also has the number (3).
            #expect(b.reason?.name == t.reason?.name && b.reason?.code == 3)
        }
        #expect(reader.stats.pages.corruptPages == 0 && reader.stats.pages.pagesAfterLoss == 0)
    }

    /// Standard input: the file is copied to a temporary file first (both versions need
    /// random access), then read the same.
    @Test(arguments: ["drops-v6", "drops-v7-zstd"])
    func fromAStreamReadsTheSame(_ name: String) throws {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Self.path(name + ".dat"))))
        let (fromFile, _) = try Self.binaryDrops(FileByteSource(path: Self.path(name + ".dat")))
        let (fromStream, reader) = try Self.binaryDrops(MemoryByteSource(bytes, name: "<stdin>", maxChunk: 1000))
        #expect(reader.stats.drops == 8)
        #expect(fromStream.map(\.time) == fromFile.map(\.time))
    }

    @Test func fileAnalysisNamesTheFormatAndSymbolizesFromTheFile() throws {
        var analysis = DropFileAnalysis()
        analysis.grouping = .location
        let r = try analysis.run(FileByteSource(path: Self.path("drops-v7.dat"))) { _ in }
        #expect(r.formatName == "trace-dat-drops")
        #expect(r.summary.tally.total == 8)
        #expect(r.summary.tally.rows.first?.key.location.symbol == "__udp4_lib_rcv")
    }

    @Test func aTraceDatWithoutKfreeSkbSaysSo() throws {
        #expect {
            _ = try TraceDatDropReader(stream: FileByteSource(path: Self.path("kvm-v6.dat")))
        } throws: { "\($0)".contains("no skb:kfree_skb events") && "\($0)".contains("kvm") }
    }
}
