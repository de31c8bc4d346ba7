import Foundation
import Testing
import KVMScopeTestSupport

/// The lab capture of scenario nbd-eio: a real guest (Debian 6.1 kernel under QEMU 7.2) whose
/// virtio disk was served by `kvmscope nbd serve`. The guest kernel must report the sectors
/// kvmscope failed, and the server's fault log must name the rules that fired.
@Suite struct NBDLabCaptureTests {
    static let dir = LabFixtures.repoRoot.appendingPathComponent("lab/scenarios/nbd-eio")

    func text(_ name: String) throws -> String {
        String(decoding: try Data(contentsOf: Self.dir.appendingPathComponent(name)), as: UTF8.self)
    }

    @Test func guestKernelLogsTheInjectedSectors() throws {
        let console = try text("console.log")
        #expect(console.contains("] I/O error, dev vda, sector 2048 op 0x1:(WRITE) flags 0x8800"))
        // The read rule hits sector 8200 inside a 64 KiB request; the guest names the request's first sector.
        #expect(console.contains("] I/O error, dev vda, sector 8192 op 0x0:(READ)"))
        #expect(console.contains("dd write exit status 1\r\n") && console.contains("first read exit status 1\r\n")
                && console.contains("second read exit status 0\r\n"))
        #expect(try text("run.txt").contains("file=nbd:unix:$WORK/nbd.sock"))
    }

    @Test func faultLogNamesTheRulesThatFired() throws {
        let records = try text("nbd-faults.jsonl").split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        #expect(records.count == 2)
        #expect(records[0]["rule"] as? String == "rules.cfg:3" && records[0]["command"] as? String == "write"
                && records[0]["offset"] as? Int == 2048 * 512 && records[0]["nbdError"] as? String == "EIO")
        #expect(records[1]["rule"] as? String == "rules.cfg:11" && records[1]["errnoName"] as? String == "ESRCH"
                && records[1]["offset"] as? Int == 8192 * 512 && records[1]["nbdError"] as? String == "EIO")
        let qmp = try text("qmp.jsonl")
        #expect(qmp.components(separatedBy: "\"event\": \"BLOCK_IO_ERROR\"").count - 1 == 2)
    }
}
