import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope

/// `kvmscope host` as a user runs it, on the lab's real host kernel logs.
@Suite struct HostCommandTests {
    @Test func failedLoopDeviceExits1AndNamesDeviceSectorAndErrno() throws {
        let r = try CLIRunner.run(["host", LabFixtures.path("host-disk-eio", "host-dmesg.log")])
        #expect(r.status == 1)
        #expect(r.stderr.isEmpty)
        #expect(r.stdout.contains("loop0 — 2 failures (2 block I/O error); 1 read, 1 write; 2 EIO"))
        #expect(r.stdout.contains("sectors: 133120, 133152"))
        #expect(r.stdout.contains("I/O error, dev loop0, sector 133120 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2"))
        #expect(r.stdout.contains("Not failures: 7 optional operation not supported, 1 capacity change, 1 filesystem mounted"))
    }

    @Test func fullTmpfsExits0() throws {
        let r = try CLIRunner.run(["host", LabFixtures.path("host-fs-full", "host-dmesg.log")])
        #expect(r.status == 0)
        #expect(r.stdout.contains("No host storage failures"))
    }

    @Test func readsStandardInputAndWritesJSON() throws {
        let log = try String(contentsOfFile: LabFixtures.path("host-disk-eio", "host-dmesg.log"), encoding: .utf8)
        let r = try CLIRunner.run(["host", "--json", "-"], stdin: log)
        #expect(r.status == 1)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let findings = try #require(doc["findings"] as? [[String: Any]])
        #expect(findings.count == 2)
        #expect(findings.first?["device"] as? String == "loop0" && findings.first?["sector"] as? Int == 133120)
        #expect(findings.first?["errno"] as? String == "EIO" && findings.first?["operation"] as? String == "write")
        #expect(doc["hasFailures"] as? Bool == true)
    }

    /// A file with no kernel message (a QMP stream) is refused: one line, exit 2.
    @Test func notAKernelLogIsRefused() throws {
        let path = LabFixtures.path("write-eio", "qmp.jsonl")
        let r = try CLIRunner.run(["host", path])
        #expect(r.status == 2)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains("no kernel messages found in \(path): not a host kernel log?"))
    }
}
