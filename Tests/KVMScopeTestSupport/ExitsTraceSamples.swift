import Foundation
import KVMScopeCore

public extension ExitsTraceBuilder {
    /// One pair's truth: its exit reason name, vCPU and latency.
    struct Sample {
        public var reason: String, vcpu: Int32, ns: UInt64
        public init(reason: String, vcpu: Int32, ns: UInt64) { self.reason = reason; self.vcpu = vcpu; self.ns = ns }
    }

    /// A trace of `n` pairs on 4 vCPU threads; latencies log-uniform 200 ns ... 20 ms.
    static func makeTrace(_ form: ExitsTraceBuilder.Form, n: Int = 4000, seed: UInt64 = 7) -> (String, [Sample]) {
        var rng = SplitMix64(seed: seed)
        let b = ExitsTraceBuilder(form: form)
        let codes: [UInt32] = form == .traceCmdPlugin ? [0x400, 0x07b, 0x078, 0x060] : [48, 30, 12, 1, 32]
        var clock: [UInt64] = [1_000_000_000_000, 1_000_000_000_000, 1_000_000_000_000, 1_000_000_000_000]
        var lines = ["# tracer: nop", "#"]
        var samples: [Sample] = []
        for _ in 0..<n {
            let v = Int(rng.below(4))
            let code = codes[Int(rng.below(UInt64(codes.count)))]
            let exponent = 200.0 * pow(1e5, Double(rng.below(1_000_000)) / 1e6)
            let lat = UInt64(exponent) / 1000 * 1000          // µs resolution, as ftrace prints
            clock[v] += 1000 * (1 + rng.below(5000))
            let e = ExitsTraceBuilder.Exit(tid: 8000 + Int32(v), cpu: Int32(v), ns: clock[v], vcpu: Int32(v),
                                           isa: form == .traceCmdPlugin ? 2 : 1, code: code)
            lines.append(b.exitLine(e))
            if rng.below(10) == 0 { lines.append(b.otherLine(tid: e.tid, cpu: e.cpu, ns: clock[v])) }
            clock[v] += lat
            lines.append(b.entryLine(tid: e.tid, cpu: e.cpu, ns: clock[v], vcpu: Int32(v)))
            let name = form == .traceCmdPlugin ? TestTables.svmName(code) : TestTables.vmxName(code)
            samples.append(Sample(reason: name, vcpu: Int32(v), ns: lat))
        }
        return (lines.joined(separator: "\n") + "\n", samples)
    }
}
