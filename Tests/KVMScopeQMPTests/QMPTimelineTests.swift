import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeQMP

@Suite struct QMPTimelineTests {
    func timeline(_ scenario: String) throws -> QMPTimeline {
        QMPTimeline(events: try QMPEventReader.readAll(FileByteSource(path: LabFixtures.path(scenario, "qmp.jsonl"))).events)
    }

    @Test func enospcPauseRetriedSuccessfully() throws {
        let t = try timeline("enospc-pause")
        #expect(t.pauses.count == 1)
        let p = try #require(t.pauses.first)
        #expect(p.nospace && p.operation == .write && p.reason == "No space left on device")
        #expect(p.retrySucceeded == true)
        let seconds = try #require(p.seconds)
        #expect(seconds > 0.5 && seconds < 30)
        #expect(t.ioErrors.first?.errnoName == "ENOSPC" && t.ioErrors.first?.errno == 28)
    }

    @Test func werrorStopRetriesFailEveryTime() throws {
        let t = try timeline("werror-stop")
        #expect(t.pauses.count >= 2)
        // Every resumed pause failed again; the last one was still paused when QMP quit.
        for p in t.pauses.dropLast() { #expect(p.retrySucceeded == false && p.seconds != nil) }
        let last = try #require(t.pauses.last)
        #expect(last.seconds == nil && last.resumeLine == nil)
        #expect(t.pauses.allSatisfy { !$0.nospace && $0.reason == "Input/output error" })
        #expect(t.ioErrors.allSatisfy { $0.action == .stop })
    }

    @Test func reportedErrorsDoNotPause() throws {
        let t = try timeline("write-eio")
        #expect(t.pauses.isEmpty)
        #expect(!t.ioErrors.isEmpty && t.ioErrors.allSatisfy { $0.action == .report && $0.errnoName == "EIO" })
    }

    @Test func hostErrnoTheGuestCannotSee() throws {
        let t = try timeline("async-write-esrch")
        #expect(t.ioErrors.contains { $0.errnoName == "ESRCH" && $0.reason == "No such process" })
    }

    @Test func stopWithoutAnErrorIsNotAnIOPause() {
        let events = [QMPEvent(name: "STOP", time: 10, data: nil, line: 1),
                      QMPEvent(name: "RESUME", time: 12, data: nil, line: 2)]
        let t = QMPTimeline(events: events)
        #expect(t.pauses.isEmpty)
        #expect(t.otherEvents.map(\.event) == ["STOP", "RESUME"])
    }

    @Test func errnoFromStrerrorText() {
        #expect(ErrnoTable.standard.entry(message: "No space left on device")?.name == "ENOSPC")
        #expect(ErrnoTable.standard.entry(message: "input/output error")?.name == "EIO")
        #expect(ErrnoTable.standard.entry(message: "Something else") == nil)
    }
}
