import Foundation
import Testing
@testable import KVMScopeExplain
import KVMScopeTestSupport

/// What explain says on two lab captures, as an admin's review read it.
@Suite struct ExplainAdviceReviewTests {
    static func run(_ scenario: String, guest: Bool = true, trace: Bool = true, commandLine: Bool = false) throws -> ExplainReport {
        let p = { LabFixtures.path(scenario, $0) }
        var inputs = ExplainSession.Inputs(guest: guest ? try FileByteSource(path: p("console.log")) : nil,
                                           trace: trace ? try FileByteSource(path: p("trace.log")) : nil,
                                           qmp: try FileByteSource(path: p("qmp.jsonl")))
        if commandLine { inputs.qemuCommandLine = try FileByteSource(path: p("run.txt")) }
        return try ExplainSession.run(inputs)
    }

    /// The drive is an NBD client (`file=nbd:unix:…` on QEMU's command line) though the trace has
    /// no nbd_* events: the next step is the NBD server, not the host's disks (it said `smartctl`).
    @Test func anNBDDriveByItsCommandLinePointsAtTheServer() throws {
        let r = try Self.run("nbd-eio", commandLine: true)
        #expect(r.nextSteps.first?.hasPrefix("The disk is served by the NBD server at nbd:unix:") == true, "\(r.nextSteps)")
        #expect(!r.nextSteps.contains { $0.contains("smartctl") || $0.contains("Look under the image") })
        // Without the command line nothing says it is NBD: the backend is asked for first.
        let bare = try Self.run("nbd-eio")
        #expect(bare.nextSteps.first?.hasPrefix("The inputs do not show what serves the disk") == true)
    }

    /// werror=stop: one request, three attempts, three BLOCK_IO_ERRORs. The two after `cont` are
    /// its retries (it said "…, and 1 more", as if another error).
    @Test func retriesAfterContAreTheSameRequest() throws {
        // (The guest, paused at its first write, logged no kernel message: no guest log.)
        let r = try Self.run("werror-stop", guest: false)
        #expect(!r.verdict.summary.contains("and 1 more"), "\(r.verdict.summary)")
        #expect(r.verdict.summary.contains("QMP reported each failed retry after `cont` too: 2 more BLOCK_IO_ERRORs (action stop), one per retry of the same request."))
        let qmpOnly = try Self.run("werror-stop", guest: false, trace: false)
        #expect(qmpOnly.verdict.summary.contains("(QMP BLOCK_IO_ERROR, action stop); QEMU reported each failed retry after `cont` again (2 more BLOCK_IO_ERRORs)"), "\(qmpOnly.verdict.summary)")
        #expect(!qmpOnly.verdict.summary.contains("and 2 more"))
    }
}
