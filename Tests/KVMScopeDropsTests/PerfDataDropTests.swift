import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
import KVMScopeTracefs
import KVMScope   // FormatRegistry: detection across every domain's formats
@testable import KVMScopeDrops

/// `perf record -e skb:kfree_skb` files read directly equal `perf script`'s text of the same
/// file read by the text reader, drop for drop.
@Suite struct PerfDataDropTests {
    struct Drop: Equatable {
        var timeNs: Int64?, cpu: Int32?, pid: Int32?, comm: String?
        var location: String, protocolNumber: UInt16?, reason: String?
        init(_ e: DropEvent, symbols: LocationSymbolizer?) {
            timeNs = e.time.map { Int64(($0 * 1e9).rounded()) }
            cpu = e.cpu; pid = e.pid; comm = e.comm
            let l = symbols?.resolve(e.location) ?? e.location
            location = l.symbolText ?? l.addressText ?? "?"
            protocolNumber = e.protocolNumber
            reason = e.reason?.name
        }
    }

    func binary(_ name: String, symbols: LocationSymbolizer?) throws -> ([Drop], PerfDataDropReader) {
        var reader = PerfDataDropReader()
        var out: [Drop] = []
        try reader.read(try FileByteSource(path: PerfFixtures.path("\(name).data.xz"))) { out.append(Drop($0, symbols: symbols)) }
        return (out, reader)
    }

    func text(_ name: String) throws -> [Drop] {
        let (events, stats) = try readDrops(try PerfFixtures.text("\(name).perf-script.txt"))
        #expect(stats.skippedLines == 0)
        return events.map { Drop($0, symbols: nil) }
    }

    /// File mode: perf script named the locations with this boot's kallsyms; the binary path
    /// names the raw addresses with the excerpt of it committed beside the capture.
    @Test func fileModeEqualsPerfScript() throws {
        let symbols = LocationSymbolizer(table: try KernelSymbolTable.load(path: PerfFixtures.path("kallsyms-excerpt.txt")))
        let (drops, reader) = try binary("kfree_skb", symbols: symbols)
        #expect(drops.count == 7)
        #expect(drops == (try text("kfree_skb")))
        #expect(reader.stats.drops == 7 && reader.stats.otherEvents == 0)
        #expect(Set(drops.compactMap(\.reason)) == ["NO_SOCKET", "NETFILTER_DROP"])
    }

    /// Pipe mode (perf record -o -): perf script printed raw addresses there, as we read them.
    @Test(arguments: ["kfree_skb-pipe", "kfree_skb-bigendian-synthetic"])
    func pipeAndBigEndianEqualPerfScript(name: String) throws {
        let (drops, reader) = try binary(name, symbols: nil)
        #expect(drops.count == 7)
        #expect(drops == (try text(name)))
        #expect(reader.perf.pipeMode == (name == "kfree_skb-pipe"))
    }

    @Test func detectedByMagicBeforeTheTextFormats() throws {
        let bytes = try PerfFixtures.data("kfree_skb")
        let f = bytes.withUnsafeBytes { FormatRegistry.detect(.packetDrops, sample: UnsafeRawBufferPointer(rebasing: $0.prefix(InputSample.size))) }
        #expect(f?.name == "perf-data-drops")
    }

    /// The whole analysis (the command's path) over a perf.data gives the text path's tally.
    @Test func analysisEqualsTextPath() throws {
        var a = DropFileAnalysis()
        a.symbols = try KernelSymbolTable.load(path: PerfFixtures.path("kallsyms-excerpt.txt"))
        let viaBinary = try a.run(try FileByteSource(path: PerfFixtures.path("kfree_skb.data.xz"))) { _ in }
        let viaText = try a.run(try FileByteSource(path: PerfFixtures.path("kfree_skb.perf-script.txt"))) { _ in }
        #expect(viaBinary.formatName == "perf-data-drops")
        #expect(viaBinary.summary.tally.total == 7)
        #expect(viaBinary.summary.tally.rows.map(\.count) == viaText.summary.tally.rows.map(\.count))
        #expect(viaBinary.summary.tally.rows.map { $0.key.location.symbolText } == viaText.summary.tally.rows.map { $0.key.location.symbolText })
    }
}
