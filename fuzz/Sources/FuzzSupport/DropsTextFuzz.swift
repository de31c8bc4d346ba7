import KVMScope

/// kfree_skb text captures (ftrace, trace-cmd report, perf script): DropFileAnalysis with
/// 1-second intervals, as `kvmscope drops --file F --interval 1` runs it.
public enum DropsTextFuzz {
    static func run(_ bytes: [UInt8], intervals: inout [String]) -> DropFileAnalysis.Result {
        var analysis = DropFileAnalysis()
        analysis.interval = 1
        let text = DropTextRenderer()
        do {
            return try analysis.run(MemoryByteSource(bytes, name: "fuzz", maxChunk: 4096)) { tally in
                intervals.append(FuzzCheck.validJSON((try? DropJSONRenderer.interval(tally)) ?? "", "drops interval"))
                _ = text.interval(tally, label: "fuzz")
            }
        } catch {
            FuzzCheck.require(false, "drops reader threw on a memory stream: \(error)")
            fatalError()
        }
    }

    public static func run(_ bytes: [UInt8]) {
        var intervals: [String] = []
        let result = run(bytes, intervals: &intervals)
        guard let s = result.summary.input else { FuzzCheck.require(false, "drops summary without input stats"); return }
        let buckets = s.drops + s.consumed + s.otherEvents + s.headerLines + s.skippedLines
        // Every line delivered lands in one bucket; overlong lines are not delivered.
        FuzzCheck.require(buckets + s.overlongLines == s.lines,
                          "drops stats: \(buckets) + \(s.overlongLines) overlong != \(s.lines) lines")
        FuzzCheck.require(s.hashedLocations <= s.drops && s.unnamedReasons <= s.drops, "drops stats: subsets exceed drops")
        FuzzCheck.require(result.summary.tally.total + result.summary.filteredOut == s.drops,
                          "drops: tally \(result.summary.tally.total) + filtered \(result.summary.filteredOut) != drops \(s.drops)")
        guard FuzzCheck.thorough(bytes) else { return }
        let json = FuzzCheck.validJSON((try? DropJSONRenderer.summary(result.summary)) ?? "", "drops summary")
        _ = DropTextRenderer().summary(result.summary)
        var again: [String] = []
        let second = run(bytes, intervals: &again)
        FuzzCheck.require(again == intervals && ((try? DropJSONRenderer.summary(second.summary)) ?? "") == json,
                          "drops: same input gave different JSON")
    }
}
