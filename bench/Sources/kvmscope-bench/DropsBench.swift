import Foundation
import KVMScope
import KVMScopeTestSupport

/// `drops FILE`: the kfree_skb text reader and aggregation over a capture (bench/make-drops.sh).
func benchDrops(_ args: [String]) throws {
    guard let path = args.first else { throw KVMScopeError.usage("drops needs a FILE (bench/make-drops.sh makes one)") }
    let analysis = DropFileAnalysis()
    let source = try FileByteSource(path: path)
    var drops = 0
    let m = try measure {
        drops = try analysis.run(source) { _ in }.summary.tally.total
    }
    report("drops (text)", bytes: source.knownSize ?? 0, seconds: m.seconds, peakRSSMiB: m.peakRSSMiB,
           extra: String(format: "%d drops, %.1f M drops/s", drops, Double(drops) / m.seconds / 1e6))
}

/// `drops-pages [N]`: decoding N MB of ring-buffer pages (built like the kernel writes them,
/// kfree_skb records of the 6.18 layout) into drops and counting them, as the live reader does.
func benchDropPages(_ args: [String]) throws {
    let megabytes = Int(args.first ?? "") ?? 1000
    var layout = RingBufferLayout()
    layout.dataSize = 4080
    // The real kfree_skb format of linux 6.18 (the fixture the ring-page tests use).
    let formatText = try DropFixtures.text("kfree_skb-format-6.18.txt")
    let decoder = try KfreeSkbRecordDecoder(format: try TracepointFormat.parse(formatText))
    // One page: 4-byte header (type_len 10, delta 700) + 40-byte record, as many as fit.
    var page = [UInt8](repeating: 0, count: 4096)
    var pos = 16
    var k = 0
    while pos + 44 <= 4096 {
        page.withUnsafeMutableBytes { p in
            p.storeBytes(of: UInt32(10 | 700 << 5), toByteOffset: pos, as: UInt32.self)
            p.storeBytes(of: UInt16(2310), toByteOffset: pos + 4, as: UInt16.self)
            p.storeBytes(of: Int32(3910), toByteOffset: pos + 8, as: Int32.self)
            p.storeBytes(of: k % 3 == 0 ? UInt64(0xffffffff81f63638) : UInt64(0xffffffff82046f4c), toByteOffset: pos + 4 + 16, as: UInt64.self)
            p.storeBytes(of: UInt16(0x0800), toByteOffset: pos + 4 + 32, as: UInt16.self)
            p.storeBytes(of: UInt32(k % 3 == 0 ? 12 : 3), toByteOffset: pos + 4 + 36, as: UInt32.self)
        }
        pos += 44
        k += 1
    }
    page.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(pos - 16), toByteOffset: 8, as: UInt64.self) }
    let pages = megabytes * 1_000_000 / 4096
    var pd = RingBufferPageDecoder(layout: layout)
    var aggregator = DropAggregator()
    let symbolizer = LocationSymbolizer(table: nil)
    var n = 0
    let m = measure {
        page.withUnsafeBytes { p in
            for _ in 0..<pages {
                pd.decode(page: p) { ts, payload in
                    guard let r = decoder.decode(payload) else { return }
                    n += 1
                    let e = DropEvent(time: Double(ts) / 1e9, pid: r.pid, location: symbolizer.resolve(DropLocation(address: r.location)),
                                      protocolNumber: r.protocolNumber, reason: decoder.dropReason(r.reason))
                    aggregator.add(e)
                }
            }
        }
    }
    report("drops (binary pages)", bytes: Int64(pages) * 4096, seconds: m.seconds, peakRSSMiB: m.peakRSSMiB,
           extra: String(format: "%d drops, %.1f M drops/s, counted %d", n, Double(n) / m.seconds / 1e6, aggregator.current.total))
}
