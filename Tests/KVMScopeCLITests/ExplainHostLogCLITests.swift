import Foundation
import Testing
import KVMScopeTestSupport

/// `explain --host-log` as an admin types it: a compressed host log is read, a file that is no
/// kernel log is refused, and the host log alone is refused with what to give instead.
@Suite struct ExplainHostLogCLITests {
    static let dir = "host-disk-eio"
    static func path(_ f: String) -> String { LabFixtures.path(dir, f) }

    @Test func compressedHostLogIsReadAndNamesTheDevice() throws {
        let tmp = try TempDir()
        let gz = tmp.path + "/host-dmesg.log.gz"
        let r0 = try runProcess("/bin/sh", ["-c", "gzip -c '\(Self.path("host-dmesg.log"))' > '\(gz)'"])
        #expect(r0.status == 0)
        let r = try CLIRunner.run(["explain", Self.path("console.log"), Self.path("trace.log"), Self.path("qmp.jsonl"), "--host-log", gz],
                                  environment: ["NO_COLOR": "1"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("read host kernel log \(gz) (gzip): 14 lines"))
        #expect(r.stdout.contains("its block device loop0 failed"))
    }

    @Test func notAKernelLogIsRefused() throws {
        let r = try CLIRunner.run(["explain", Self.path("console.log"), "--host-log", "/etc/passwd"])
        #expect(r.status == 2 && r.stderr.contains("no kernel messages found in /etc/passwd: not a host kernel log?"))
        #expect(r.stdout.isEmpty)
    }

    @Test func hostLogAloneIsRefusedWithWhatToGive() throws {
        for args in [["explain", "--host-log", Self.path("host-dmesg.log")], ["explain", Self.path("host-dmesg.log")]] {
            let r = try CLIRunner.run(args)
            #expect(r.status == 2 && r.stderr.contains("kvmscope host"), "\(args)")
        }
    }
}

/// A file of no role beside a guest log is named for what it is (not ours), in either order,
/// not as "a second guest log" (found with libvirt's `virsh event` output).
@Suite struct ExplainUnrecognisedInputCLITests {
    @Test func strangerBesideAGuestLogIsNamed() throws {
        let events = LabFixtures.path("libvirt-fs-full", "libvirt-events.txt")
        let console = LabFixtures.path("libvirt-fs-full", "console.log")
        for args in [["explain", events, console], ["explain", console, events]] {
            let r = try CLIRunner.run(args)
            #expect(r.status == 2, "\(args)")
            #expect(r.stderr.contains("libvirt-events.txt': neither a guest kernel log, a QEMU trace nor QMP events"), "\(args): \(r.stderr)")
            #expect(!r.stderr.contains("second guest log"))
        }
    }
}
