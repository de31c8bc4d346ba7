import Foundation
import KVMScope

/// `perfdata FILE`: the perf.data reader alone — every tracepoint sample in perf script's
/// order, its kfree_skb record decoded (location, protocol, reason) and summed — without the
/// drops analysis and report that `kvmscope drops FILE` adds (bench/perfdata.sh times that).
func benchPerfData(_ args: [String]) throws {
    guard let path = args.first else { throw KVMScopeError.usage("perfdata FILE") }
    var reader = PerfDataReader()
    var decoder: KfreeSkbRecordDecoder?
    var samples = 0, decoded = 0
    var checksum: UInt64 = 0
    let source = try FileByteSource(path: path)
    let (seconds, rss) = try measure {
        try reader.read(source) { s in
            samples += 1
            if decoder == nil { decoder = try? KfreeSkbRecordDecoder(format: s.event.format) }
            if let r = decoder?.decode(s.payload) {
                decoded += 1
                checksum &+= r.location &+ UInt64(r.protocolNumber) &+ UInt64(r.reason ?? 0) &+ (s.timeNs ?? 0)
            }
        }
    }
    report("perfdata", bytes: source.knownSize ?? 0, seconds: seconds, peakRSSMiB: rss,
           extra: String(format: "%d samples, %d kfree_skb decoded, %.2f M samples/s (checksum %llx)",
                         samples, decoded, Double(samples) / 1e6 / seconds, checksum))
}
