import Foundation
import KVMScope

/// Cost of one blkdebug rule lookup (fire read_aio/write_aio + check) for requests that match no
/// rule, with 0 to 100 000 rules loaded: it must not grow with the number of rules.
func benchRules(_ args: [String]) throws {
    let lookups = Int(args.first ?? "") ?? 2_000_000
    for count in [0, 100, 10_000, 100_000] {
        var config = BlkdebugConfig()
        for i in 0..<count {
            // Armed from the start, spread over a 256 MiB disk, for discards: every read/write
            // goes through the sector index and matches none.
            config.injectErrors.append(InjectErrorRule(event: .none, iotypeMask: BlkdebugIOType.discard.bit,
                                                       sector: Int64(i) * 524_288 / Int64(max(count, 1)),
                                                       location: RuleLocation(file: "bench", line: i + 1)))
        }
        let engine = FaultRuleEngine(config: config)
        var hits = 0
        var offset: Int64 = 0
        let m = measure {
            for i in 0..<lookups {
                let write = i & 1 == 1
                engine.fire(write ? .writeAIO : .readAIO)
                if engine.check(offset: offset, bytes: 4096, iotype: write ? .write : .read) != nil { hits += 1 }
                offset = (offset + 4096 * 7919) % (256 << 20)
            }
        }
        print(String(format: "rules: %6d rules, %d lookups of 4 KiB requests in %.3f s = %.0f ns/lookup, %d matched, peak RSS %.1f MiB",
                     count, lookups, m.seconds, m.seconds * 1e9 / Double(lookups), hits, m.peakRSSMiB))
    }
}
