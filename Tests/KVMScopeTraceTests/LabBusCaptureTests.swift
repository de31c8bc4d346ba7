import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeTrace

/// The lab's real captures of a virtio-scsi disk and of an NBD-backed disk (QEMU 7.2.22,
/// Debian 12 guest kernel 6.1).
@Suite struct LabBusCaptureTests {
    static func lab(_ scenario: String) throws -> TraceReport {
        try TraceSession.analyse(FileByteSource(path: TraceTestData.lab(scenario).path), catalog: .bundled)
    }

    /// blkdebug EIO on the write at sector 2048 of a scsi-hd disk on virtio-scsi, werror=report:
    /// six attempts (the guest's sd retries), each CHECK CONDITION / ABORTED COMMAND 00/06,
    /// as the guest logged ("Sense Key : Aborted Command", "Add. Sense: I/O process terminated").
    @Test func scsiWriteEIO() throws {
        let r = try Self.lab("scsi-write-eio")
        let s = r.scsi
        #expect(s.seen && s.failuresTotal == 6 && s.requests.failed == 6 && s.inFlightTotal == 0)
        #expect(s.requests.completed == 42 && s.requests.unitAttentions == 2)
        // The guest's bus scan of absent targets and its MAINTENANCE IN probe are not failures.
        #expect(s.requests.rejectedProbes == 511)
        #expect(Set(s.failures.map(\.sector)) == [2048] && Set(s.failures.map(\.sectors)) == [8])
        let f = try #require(s.failures.first)
        #expect(f.command?.name == "WRITE(10)" && f.command?.cdb == "2a 00 00 00 08 00 00 00 08 00")
        #expect(f.target == 0 && f.lun == 0 && f.tag == "0x42bac410" && f.blockSize == 512 && f.blockSizeSource == "transfer")
        #expect(f.statusName == "CHECK CONDITION" && f.responseName == "OK")
        #expect(f.sense?.keyName == "ABORTED COMMAND" && f.sense?.ascName == "I/O PROCESS TERMINATED")
        #expect(f.time == 1796123526.196519)
        #expect(s.failures.map(\.attempt) == [1, 2, 3, 4, 5, 6])
        #expect(s.devices.map(\.lun) == [0] && s.devices.first?.blockSize == 512)
        #expect(r.coverage.bus(.virtioScsi)?.covered == true && r.coverage.bus(.virtioBlk)?.covered == false)
        #expect(r.failuresTotal == 0 && r.leakedTotal == 0 && r.exitStatus == 1)
        #expect(TraceReportRenderer.text(r).contains("virtio-blk: no events in this trace"))
    }

    /// The NBD server is killed while the guest writes, reconnect-delay set: the write in
    /// flight fails "Connection closed", every reconnect is refused (-111), and the guest's
    /// requests fail with EIO meanwhile.
    @Test func nbdServerKilled() throws {
        let r = try Self.lab("nbd-server-killed")
        #expect(r.backend.kind == "nbd" && r.backend.kinds == ["nbd"])
        let n = try #require(r.backend.nbd)
        #expect(n.export == "disk" && n.handshakesSucceeded == 1)
        #expect(n.connectionLossesTotal == 1)
        let loss = try #require(n.connectionLosses.first)
        #expect(loss.reason == "Connection closed" && loss.ret == -5 && loss.source == "nbd_co_request_fail")
        #expect(loss.time == 1796123680.531589)
        #expect(n.reconnectAttempts == 7 && n.reconnectsSucceeded == 0)
        #expect(n.reconnectFailures.map(\.errnoName) == ["ECONNREFUSED"] && n.reconnectFailures.first?.count == 7)
        #expect(n.failedRequestsTotal == 1 && n.failedRequests.first?.type == "write" && n.failedRequests.first?.lowestOffset == 1052672)
        #expect(r.failuresTotal == 4 && n.guestRequestsFailedWhileDisconnected == 4)
    }
}

/// The fuzz targets' invariant, on the real captures: the report survives a JSON round trip.
@Suite struct TraceReportRoundTripTests {
    @Test func everyLabReportRoundTripsThroughJSON() throws {
        for scenario in TraceTestData.scenarios + ["scsi-write-eio", "nbd-server-killed"] {
            let r = try LabBusCaptureTests.lab(scenario)
            let back = try JSONDecoder().decode(TraceReport.self, from: JSONEncoder().encode(r))
            #expect(back == r, "\(scenario)")
        }
    }
}
