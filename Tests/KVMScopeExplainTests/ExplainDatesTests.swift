import Foundation
import Testing
@testable import KVMScopeExplain
import KVMScopeTestSupport
import KVMScope

/// Times in explain's text carry their date where a reader compares them with other logs: a
/// span ("the trace covers …") and the timeline's header. They were bare HH:MM:SS, so a trace
/// of another day read like the same morning (found by an admin's review).
@Suite struct ExplainDatesTests {
    @Test func spansSayTheirDateAndBothAcrossMidnight() {
        let t = 1_795_363_592.754736          // 2026-11-22 16:06:32.754736 UTC
        #expect(ExplainStory.span(t, t + 20) == "2026-11-22 16:06:32.754736–16:06:52.754736")
        #expect(ExplainStory.span(t, t + 8 * 3600, joiner: " to ") == "2026-11-22 16:06:32.754736 to 2026-11-23 00:06:32.754736")
        #expect(ExplainStory.day(t) == "2026-11-22")
        #expect(ExplainStory.day(.infinity) == nil)
    }

    @Test func theTimelineSaysItsDayAndClock() throws {
        let r = try ExplainSession.run(ExplainSession.inputs(example: #require(BundledExample.named("write-eio"))))
        let text = ExplainRenderer.text(r, style: .plain, width: 100)
        #expect(text.contains("TIMELINE (host clock, UTC, 2026-11-22; guest times converted with the estimated offset)\n  16:06:32.754736  host"))
        #expect(!text.contains("  -- 2026"))   // one day: no day change marked
    }

    @Test func aSpanInACoverageReasonHasItsDate() throws {
        let r = try ExplainSession.run(ExplainSession.inputs(example: #require(BundledExample.named("ext4-corrupt"))))
        #expect(r.verdict.summary.contains("from 2026-12-01 11:17:05.966249 to 11:17:23.220578"), "\(r.verdict.summary)")
    }
}
