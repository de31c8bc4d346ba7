import Testing
import Foundation
import KVMScopeCore
import KVMScopeLive
@testable import KVMScopeExplain
@testable import KVMScope
import KVMScopeTestSupport

/// The ties explain reports pair each QEMU failure with its own host error, not a neighbour's.
@Suite struct HostLayerClosestTieTests {
    /// The capture begins mid-burst: line 4 of its tracepoint recording is the failure of a
    /// write QEMU's trace never saw (it came before the trace events were on), line 5 is the
    /// first traced failure's own, 0.09 ms from it. Tied earliest-first, the first traced failure
    /// took line 4, 39.5 ms away, and explain said "within 40 ms".
    @Test func aCaptureBegunMidBurstTiesEachFailureToItsOwnHostError() throws {
        let capture = TestFixtures.path("record/host-disk-eio")
        let m = try #require(try CaptureManifest.load(directory: capture))
        var inputs = ExplainSession.Inputs()
        try ExplainSession.addInputs(ofCapture: m, directory: capture, to: &inputs)
        let r = try ExplainSession.run(inputs)
        #expect(r.layers.count == 128)
        let deltas = r.layers.compactMap(\.timeDeltaSeconds)
        #expect(deltas.count == 128)
        #expect(deltas.allSatisfy { abs($0) < 0.01 })
        let first = try #require(r.layers.min { ($0.qemuTime ?? 0) < ($1.qemuTime ?? 0) })
        #expect(first.hostLine == 5)
        #expect(!r.layers.contains { $0.hostLine == 4 })
        #expect(r.verdict.summary.contains("(within 8 ms)"))
    }

    typealias Host = (index: Int, time: Double, write: Bool?)

    /// Every matching of a small case, for the best: most pairs, then least total |delta|.
    static func bruteForce(_ qemu: [HostLayerCorrelation.QEMUFailure], _ host: [Host]) -> (pairs: Int, cost: Double) {
        var best = (pairs: 0, cost: 0.0)
        var used = [Bool](repeating: false, count: host.count)
        func go(_ i: Int, _ pairs: Int, _ cost: Double) {
            if i == qemu.count {
                if pairs > best.pairs || (pairs == best.pairs && cost < best.cost - 1e-12) { best = (pairs, cost) }
                return
            }
            go(i + 1, pairs, cost)
            for j in host.indices where !used[j] {
                let d = abs(qemu[i].time! - host[j].time)
                guard d <= HostLayerCorrelation.tolerance, HostLayerCorrelation.compatible(qemu[i].write, host[j].write) else { continue }
                used[j] = true; go(i + 1, pairs + 1, cost + d); used[j] = false
            }
        }
        go(0, 0, 0)
        return best
    }

    /// Random bursts (times within a few windows, one kind or mixed kinds) against every
    /// matching: with one kind the answer is the best there is; with mixed kinds it never ties
    /// fewer than the greedy, and every pair is in its window, of a compatible kind, each host
    /// error used once.
    @Test func randomBurstsAgainstEveryMatching() {
        var rng = SplitMix64(seed: 20261201)
        for round in 0..<3000 {
            let mixed = round % 3 == 0
            let n = Int(rng.below(7)), m = Int(rng.below(7))
            func kind() -> Bool? { mixed ? [true, false, nil][Int(rng.below(3))] : true }
            let qemu = (0..<n).map { _ in
                HostLayerCorrelation.QEMUFailure(time: 100 + rng.nextUnit() * 0.2, operation: "write", write: kind(),
                                                 errno: "EIO", device: "drive0", trace: nil, qmp: nil)
            }.sorted { $0.time! < $1.time! }
            let host: [Host] = (0..<m).map { i in (i, 100 + rng.nextUnit() * 0.2, kind()) }.sorted { $0.time < $1.time }
            let got = HostLayerCorrelation.tieClosest(qemu, host, offset: 0)
            let greedy = HostLayerCorrelation.tie(qemu, host, offset: 0)
            #expect(got.count >= greedy.count)
            #expect(Set(got.map(\.host)).count == got.count)
            #expect(Set(got.map(\.qemu)).count == got.count)
            for p in got {
                #expect(abs(p.delta - (qemu[p.qemu].time! - host[p.host].time)) < 1e-12)
                #expect(abs(p.delta) <= HostLayerCorrelation.tolerance)
                #expect(HostLayerCorrelation.compatible(qemu[p.qemu].write, host[p.host].write))
            }
            if !mixed {
                let best = Self.bruteForce(qemu, host)
                #expect(got.count == best.pairs, "round \(round)")
                #expect(abs(got.map { abs($0.delta) }.reduce(0, +) - best.cost) < 1e-9, "round \(round)")
            }
        }
    }

    /// A cluster too large for its table keeps the greedy's pairs: bounded, never fewer.
    @Test func aHugeClusterFallsBackToTheGreedy() {
        let n = 3000
        let qemu = (0..<n).map { i in
            HostLayerCorrelation.QEMUFailure(time: 100 + Double(i) * 0.001, operation: "write", write: true,
                                             errno: "EIO", device: "drive0", trace: nil, qmp: nil)
        }
        let host: [Host] = (0..<n).map { i in (i, 100 + Double(i) * 0.001 - 0.0004, true) }
        #expect(n * n > HostLayerCorrelation.closestTieCellLimit)
        let got = HostLayerCorrelation.tieClosest(qemu, host, offset: 0)
        #expect(got.count == HostLayerCorrelation.tie(qemu, host, offset: 0).count)
    }
}
