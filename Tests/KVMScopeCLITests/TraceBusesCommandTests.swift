import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope

/// `kvmscope trace` end to end on the lab's virtio-scsi and NBD captures and on a capture
/// reduced to the `virtio_blk_*` events the lab hint enables.
@Suite struct TraceBusesCommandTests {
    @Test func virtioBlkOnlyTraceFromStdinHasTheFailureAndNothingInFlight() throws {
        let text = try TraceTestData.labTrace("write-eio", keepingEventsWithPrefix: ["virtio_blk_"])
        let r = try CLIRunner.run(["trace", "--color", "never", "-"], stdin: text)
        #expect(r.status == 1)
        #expect(r.stdout.contains("6 completed, 1 failed, 0 in flight at end"))
        #expect(r.stdout.contains("[backend-error, EIO, guest: IOERR]"))
        #expect(r.stdout.contains("IN FLIGHT AT END: none"))
        #expect(r.stdout.contains("BUSES: virtio-blk 25 events, virtio-scsi/SCSI none, NVMe none, IDE/AHCI none"))
    }

    @Test func scsiCaptureReportsTheSixAttemptsWithTheirSense() throws {
        let r = try CLIRunner.run(["trace", "--color", "never", LabFixtures.path("scsi-write-eio", "trace.log")])
        #expect(r.status == 1)
        #expect(r.stdout.contains("virtio-blk: no events in this trace"))
        #expect(!r.stdout.contains("FAILURES: none"))
        #expect(r.stdout.contains("SCSI FAILURES: 6"))
        #expect(r.stdout.components(separatedBy: "WRITE(10) sector 2048+8  target 0 lun 0 tag 0x42bac410  [CHECK CONDITION, ABORTED COMMAND 00/06]").count == 7)
        let j = try CLIRunner.run(["trace", "--json", LabFixtures.path("scsi-write-eio", "trace.log")])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any])
        let scsi = try #require(json["scsi"] as? [String: Any])
        #expect(scsi["failuresTotal"] as? Int == 6)
        let buses = try #require((json["coverage"] as? [String: Any])?["buses"] as? [[String: Any]])
        #expect(buses.map { $0["bus"] as? String } == ["virtio-blk", "virtio-scsi", "nvme", "ide-ahci"])
        #expect(buses.map { $0["covered"] as? Bool } == [false, true, false, false])
    }

    @Test func nbdCaptureNamesTheBackendAndTheConnectionsFate() throws {
        let r = try CLIRunner.run(["trace", "--color", "never", LabFixtures.path("nbd-server-killed", "trace.log")])
        #expect(r.status == 1)
        #expect(r.stdout.contains("BACKEND: nbd\n"))
        #expect(r.stdout.contains("Connection closed (ret -5 EIO)"))
        #expect(r.stdout.contains("7 reconnect attempts, 0 succeeded; failed: 7 × ECONNREFUSED"))
    }
}
