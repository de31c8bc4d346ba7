import Testing
import KVMScopeCore
@testable import KVMScopeTracefs

/// The reorder window against a model of perf's rule (tools/perf/util/ordered-events.c) that
/// sorts the whole window at every flush: the orderer skips the sort for windows queued in
/// time order, and must deliver the same records in the same order either way — equal time
/// stamps in file order, late records, early flushes of an outgrown window included.
@Suite struct PerfRecordOrdererTests {
    /// perf's rule, written plainly: what the orderer must match.
    struct Model {
        var queued: [(time: UInt64, seq: Int, size: Int)] = []
        /// The bytes the orderer's arena holds.
        var bytes = 0
        var nextFlush: UInt64 = 0, maxTime: UInt64 = 0, lastFlushed: UInt64 = 0
        var late = 0, early = 0
        var out: [Int] = []
        let limit: Int

        mutating func flush(upTo limit: UInt64) {
            queued.sort { $0.time != $1.time ? $0.time < $1.time : $0.seq < $1.seq }
            let n = queued.prefix { $0.time <= limit }.count
            if n > 0 { lastFlushed = queued[n - 1].time }
            out += queued.prefix(n).map(\.seq)
            queued.removeFirst(n)
            // The orderer's arena keeps delivered bytes until the window empties, or until
            // they are most of an arena over 1 MiB: its bound counts them too.
            let live = queued.reduce(0) { $0 + $1.size }
            if queued.isEmpty || (bytes > 1 << 20 && live * 2 < bytes) { bytes = live }
        }

        mutating func queue(time: UInt64, seq: Int, size: Int) {
            if time < lastFlushed { late += 1 }
            queued.append((time, seq, size))
            bytes += size
            maxTime = max(maxTime, time)
            if bytes > limit {
                early += 1
                queued.sort { $0.time != $1.time ? $0.time < $1.time : $0.seq < $1.seq }
                flush(upTo: queued[0].time + (queued[queued.count - 1].time - queued[0].time) / 2)
            }
        }

        mutating func round() {
            flush(upTo: nextFlush)
            nextFlush = maxTime
        }
    }

    /// A record of `size` bytes naming its sequence number.
    static func record(_ seq: Int, size: Int) -> [UInt8] {
        var r = [UInt8](repeating: 0, count: size)
        withUnsafeBytes(of: UInt64(seq).littleEndian) { for i in 0..<8 { r[8 + i] = $0[i] } }
        return r
    }

    static func seq(of r: UnsafeRawBufferPointer) -> Int { Int(r.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }

    @Test(arguments: [
        (shuffled: false, limit: 256 << 20), (shuffled: true, limit: 256 << 20),
        (shuffled: false, limit: 2_000), (shuffled: true, limit: 2_000),
    ])
    func deliversWhatPerfDoes(shuffled: Bool, limit: Int) throws {
        var rng = SplitMix64(seed: shuffled ? 7 : 3)
        var orderer = PerfRecordOrderer(limitBytes: limit)
        defer { orderer.deallocate() }
        var model = Model(limit: limit)
        var got: [Int] = []
        let deliver: (UnsafeRawBufferPointer) throws -> Void = { got.append(Self.seq(of: $0)) }
        var time: UInt64 = 1_000
        for seq in 0..<20_000 {
            // Mostly forward, some repeats; shuffled: some steps back, a few far back (late).
            let r = rng.next() % 100
            if r < 10 { } else if shuffled, r < 25 { time -= min(time, rng.next() % 50) } else if shuffled, r < 26 {
                time -= min(time, 5_000)
            } else { time += rng.next() % 20 }
            let size = 16 + Int(rng.next() % 4) * 8
            if Self.record(seq, size: size).withUnsafeBytes({ orderer.queue($0, time: time) }) { try orderer.flushHalf(deliver: deliver) }
            model.queue(time: time, seq: seq, size: size)
            if rng.next() % 64 == 0 {
                try orderer.finishedRound(deliver: deliver)
                model.round()
            }
        }
        try orderer.flushAll(deliver: deliver)
        model.flush(upTo: .max)
        #expect(got == model.out)
        #expect(got.count == 20_000)
        #expect(orderer.lateRecords == model.late)
        #expect(orderer.earlyFlushes == model.early)
        if limit < 1 << 20 { #expect(model.early > 0) }
        if shuffled { #expect(model.late > 0) }
    }
}
