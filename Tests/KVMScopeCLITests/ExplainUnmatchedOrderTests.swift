import Foundation
import Testing
import KVMScopeTestSupport

/// explain's text lists at most five unmatched items per reason and sums up the rest in one
/// "... and N more: REASON" line per reason. Those lines come in the order their reasons first
/// appear, the same on every run (they once followed a Dictionary's order, which changes from
/// one process to the next).
@Suite struct ExplainUnmatchedOrderTests {
    @Test func theSummaryLinesFollowTheReasonsFirstAppearanceOnEveryRun() throws {
        let dir = TempDir()
        let trace = dir.path + "/trace.log", guest = dir.path + "/guest.log"
        // The lab's real captures repeated (1 MB each): many host failures no guest line
        // answers, for several reasons.
        for (script, out, extra) in [("make-trace.sh", trace, [String]()), ("make-guest-log.sh", guest, ["--one-boot"])] {
            let r = try runProcess("/bin/bash", [LabFixtures.repoRoot.appendingPathComponent("bench/\(script)").path, out, "1"] + extra)
            #expect(r.status == 0, "\(script): \(r.stderr)")
        }
        var outputs: Set<String> = []
        for _ in 0..<4 {
            let r = try CLIRunner.run(["explain", trace, guest])
            outputs.insert(r.stdout)
            let section = r.stdout.components(separatedBy: "NOT MATCHED ONE-TO-ONE\n").last?.components(separatedBy: "\n\n").first ?? ""
            let bullets = section.components(separatedBy: "\n  - ").dropFirst().map { $0.replacingOccurrences(of: "\n    ", with: " ") }
            let summaries = bullets.compactMap { b -> String? in
                guard b.hasPrefix("... and "), let colon = b.range(of: " more: ") else { return nil }
                return String(b[colon.upperBound...])
            }
            #expect(summaries.count >= 2, "\(section)")
            let firstSeen = bullets.filter { !$0.hasPrefix("... and ") }.compactMap { b -> String? in
                summaries.first { b.hasSuffix(": " + $0) }
            }
            var order: [String] = []
            for reason in firstSeen where !order.contains(reason) { order.append(reason) }
            #expect(summaries == order, "\(section)")
        }
        #expect(outputs.count == 1)
    }
}
