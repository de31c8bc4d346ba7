import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeTrace

/// The NBD client's account from lines in the exact format QEMU 7.2's log backend prints for
/// block/trace-events' nbd events.
@Suite struct NbdClientTrackerTests {
    static func analyse(_ text: String) throws -> TraceReport {
        try TraceSession.analyse(MemoryByteSource(text, name: "nbd.log"), catalog: .bundled)
    }

    @Test func serverKilledWhileTheGuestWrites() throws {
        let text = """
        9001@1795500000.000001:nbd_client_handshake export 'disk'
        9001@1795500000.000002:nbd_client_handshake_success export 'disk'
        9001@1795500001.000001:nbd_read_reply_entry_fail ret = -5, err: Connection closed
        9001@1795500001.000002:nbd_co_request_fail Request failed { .from = 1048576, .len = 4096, .handle = 94251, .flags = 0x0, .type = 1 (write) } ret = -5, err: Connection closed
        9001@1795500001.000003:nbd_co_request_fail Request failed { .from = 2097152, .len = 4096, .handle = 94252, .flags = 0x0, .type = 1 (write) } ret = -5, err: Connection closed
        9001@1795500002.000001:nbd_reconnect_attempt in_flight 2
        9001@1795500002.000002:nbd_reconnect_attempt_result ret -111 in_flight 2
        9001@1795500003.000001:nbd_reconnect_attempt in_flight 2
        9001@1795500003.000002:nbd_reconnect_attempt_result ret -111 in_flight 2

        """
        let r = try Self.analyse(text)
        #expect(r.backend.kind == "nbd" && r.backend.kinds == ["nbd"] && r.backend.events["nbd"] == 9)
        let n = try #require(r.backend.nbd)
        #expect(n.export == "disk" && n.server == nil && n.handshakes == 1 && n.handshakesSucceeded == 1)
        #expect(n.connectionLossesTotal == 1)
        #expect(n.connectionLosses == [NbdConnectionLoss(time: 1795500001.000001, ret: -5, errnoName: "EIO", reason: "Connection closed", source: "nbd_read_reply_entry_fail")])
        #expect(n.reconnectAttempts == 2 && n.reconnectsSucceeded == 0)
        #expect(n.reconnectFailures.map { [$0.errnoName, "\($0.count)"] } == [["ECONNREFUSED", "2"]])
        #expect(n.failedRequestsTotal == 2)
        let g = try #require(n.failedRequests.first)
        #expect(g.type == "write" && g.ret == -5 && g.reason == "Connection closed" && g.count == 2)
        #expect(g.lowestOffset == 1048576 && g.endOffset == 2097152 + 4096)
        #expect(n.firstFailureTime == 1795500001.000002 && n.lastFailureTime == 1795500001.000003)
        #expect(r.exitStatus == 1)
        let text2 = TraceReportRenderer.text(r)
        #expect(text2.contains("BACKEND: nbd") && text2.contains("2 × ECONNREFUSED") && text2.contains("Connection closed"))
    }

    @Test func backendKindFromDriverEventsAndUnknownWithout() throws {
        let qcow = "9001@1795500000.000001:qcow2_writev_start_req co 0x55d0c8a1c000 offset 0x0 bytes 4096\n"
            + "9001@1795500000.000002:file_paio_submit acb 0x55d0c8a1d000 opaque 0x55d0c8a1e000 offset 0 count 4096 type 2\n"
        let r = try Self.analyse(qcow)
        #expect(r.backend.kinds == ["qcow2", "file"] && r.backend.kind == "qcow2" && r.backend.nbd == nil)
        let none = try Self.analyse("9001@1795500000.000001:runstate_set current_run_state 6 (prelaunch) new_state 9 (running)\n")
        #expect(none.backend.kind == "unknown" && none.backend.kinds.isEmpty)
        // QEMU's own NBD server is not what serves the guest's disks.
        let server = try Self.analyse("9001@1795500000.000001:nbd_negotiate_begin Beginning negotiation\n")
        #expect(server.backend.kind == "unknown" && server.backend.events["nbd"] == 1)
    }
}
