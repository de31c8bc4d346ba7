import Foundation
import Testing
@testable import KVMScopeWatch

/// query-blockstats/query-block as QEMU 7.2 sends them, and values no counter can be.
@Suite struct BlockStatsParserTests {
    func json(_ text: String) -> Any { try! JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed) }

    @Test func countersAreIntegersInRangeAndNothingElse() {
        let o = json(#"{"zero": 0, "one": 1, "big": 9223372036854775807, "t": true, "f": false, "neg": -1, "frac": 1.5, "huge": 18446744073709551615, "s": "5"}"#) as! [String: Any]
        #expect(BlockStatsParser.counter(o["zero"]) == 0, "0 is a count, though Foundation bridges it to Bool")
        #expect(BlockStatsParser.counter(o["one"]) == 1)
        #expect(BlockStatsParser.counter(o["big"]) == Int64.max)
        for bad in ["t", "f", "neg", "frac", "huge", "s", "missing"] { #expect(BlockStatsParser.counter(o[bad]) == nil, "\(bad)") }
    }

    @Test func disksAreNamedByDriveIdElseQdevAndBounded() {
        let stats = BlockStatsParser.parseBlockStats(json(#"[{"device": "drive0", "stats": {"rd_operations": 3, "flush_operations": 1, "failed_wr_operations": 0}}, {"device": "", "qdev": "virtio-disk1", "stats": {"wr_bytes": 4096}}, {"device": "", "stats": {}}, "junk"]"#))
        #expect(stats.disks.map(\.device) == ["drive0", "virtio-disk1"])
        #expect(stats.skipped == 2)
        #expect(stats.disks[0].operations[.read]?.operations == 3)
        #expect(stats.disks[0].operations[.write]?.failed == 0)
        #expect(stats.disks[0].operations[.flush]?.bytes == nil, "flush has no bytes in QEMU")
        #expect(stats.disks[0].operations[.unmap] == nil, "a kind QEMU did not report is not made up")
        let many = "[" + (0..<300).map { #"{"device": "d\#($0)", "stats": {"rd_operations": 1}}"# }.joined(separator: ",") + "]"
        let bounded = BlockStatsParser.parseBlockStats(json(many))
        #expect(bounded.disks.count == BlockStatsParser.maxDisks && bounded.skipped == 300 - BlockStatsParser.maxDisks)
    }

    @Test func ioStatusAndAliasesFromQueryBlock() {
        let b = BlockStatsParser.parseBlock(json(##"[{"device": "drive0", "qdev": "/machine/peripheral/vd0/virtio-backend", "io-status": "nospace", "inserted": {"node-name": "#block219"}}, {"device": "cd0", "io-status": "weird"}]"##))
        #expect(b.ioStatus == ["drive0": "nospace"])
        #expect(b.aliases["#block219"] == "drive0" && b.aliases["/machine/peripheral/vd0/virtio-backend"] == "drive0")
    }
}
