import Foundation
import Testing
import KVMScopeLive
import KVMScopeTestSupport
@testable import KVMScopeLibvirt

/// Against libvirt's own test driver (in-process, no daemon): what libvirt itself answers to a
/// connection that cannot record — the real library's errors, mapped.
@Suite struct LibvirtMonitorTests {
    @Test func aReadOnlyConnectionIsRefusedBeforeAnythingChanges() throws {
        let target = try LibvirtAddress(domain: "test", uri: "test:///default")
        do {
            _ = try LibvirtMonitor(target, readOnly: true)
            Issue.record("a read-only connection was accepted")
        } catch let e as LibvirtError {
            #expect(e == .readOnly(uri: "test:///default"))
            #expect(e.isUsageError)
            #expect(e.description.hasPrefix("refusing --domain on a read-only libvirt connection (test:///default)"))
        }
    }

    @Test func aDriverWithoutPassthroughIsSaid() throws {
        #expect(throws: LibvirtError.noPassthrough(uri: "test:///default", driver: "TEST")) {
            _ = try LibvirtMonitor(try LibvirtAddress(domain: "test", uri: "test:///default"))
        }
    }

    @Test func noSuchDomainAndAStoppedOne() throws {
        #expect(throws: LibvirtError.noSuchDomain(name: "nosuch", uri: "test:///default")) {
            _ = try LibvirtMonitor(try LibvirtAddress(domain: "nosuch", uri: "test:///default"))
        }
        let dir = NSTemporaryDirectory() + "kvmscope-lvtest-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The test driver's node file; runstate 5 is VIR_DOMAIN_SHUTOFF.
        try """
        <node>
          <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
            <name>off</name><memory>8192</memory><os><type>hvm</type></os><test:runstate>5</test:runstate>
          </domain>
        </node>
        """.write(toFile: dir + "/node.xml", atomically: true, encoding: .utf8)
        #expect(throws: LibvirtError.notRunning(name: "off")) {
            _ = try LibvirtMonitor(try LibvirtAddress(domain: "off", uri: "test://\(dir)/node.xml"))
        }
    }

    @Test func aDaemonThatIsNotThereIsSaid() throws {
        // The remote driver on a socket path nothing listens on.
        let uri = "qemu+unix:///system?socket=/nonexistent/kvmscope-test/libvirt-sock"
        do {
            _ = try LibvirtMonitor(try LibvirtAddress(domain: "vm1", uri: uri))
            Issue.record("connected to nothing")
        } catch let e as LibvirtError {
            guard case let .cannotConnect(u, message) = e else { Issue.record("\(e)"); return }
            #expect(u == uri)
            #expect(message.contains("/nonexistent/kvmscope-test/libvirt-sock"))
            #expect(e.description.contains("is libvirtd or virtqemud running?"))
        }
    }
}

/// The CLI's --domain: arguments, and libvirt's refusals as one line and exit 2.
@Suite struct RecordDomainCLITests {
    private func tempDir() throws -> String {
        let d = NSTemporaryDirectory() + "kvmscope-lvcli-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    @Test func argumentsThatDoNotGoTogether() throws {
        let d = try tempDir(); defer { try? FileManager.default.removeItem(atPath: d) }
        let cases: [([String], String)] = [
            (["record", "--domain", "vm1", "--qmp", "/x", "-o", d + "/c"], "give --domain, or --qmp/--pid, not both"),
            (["record", "--domain", "vm1", "--pid", "1", "-o", d + "/c"], "give --domain, or --qmp/--pid, not both"),
            (["record", "--connect", "test:///default", "--qmp", "/x", "-o", d + "/c"], "--connect is the libvirt URI of --domain"),
            (["record", "-o", d + "/c"], "--domain NAME for a libvirt VM"),
        ]
        for (args, said) in cases {
            let r = try CLIRunner.run(args)
            #expect(r.status == 2, "\(args): \(r.stderr)")
            #expect(r.stderr.contains(said), "\(args): \(r.stderr)")
        }
    }

    @Test func aDomainOfAnotherDriverIsRefusedAndNothingIsWritten() throws {
        let d = try tempDir(); defer { try? FileManager.default.removeItem(atPath: d) }
        let r = try CLIRunner.run(["record", "--domain", "test", "--connect", "test:///default", "-o", d + "/cap", "--duration", "2s"])
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr == "kvmscope: libvirt's TEST driver at test:///default has no QEMU monitor passthrough: --domain records a QEMU/KVM domain (qemu:///system, qemu:///session)\n")
        #expect(!FileManager.default.fileExists(atPath: d + "/cap"))
    }

    @Test func restoreOfALibvirtCaptureGoesThroughLibvirt() throws {
        let d = try tempDir(); defer { try? FileManager.default.removeItem(atPath: d) }
        var state = RecordState(qmp: try LibvirtAddress(domain: "test", uri: "test:///default").description, qemuPid: 4242, logFileBefore: nil)
        state.eventsTurnedOn = ["virtio_blk_rw_complete"]
        try state.save(directory: d)
        let r = try CLIRunner.run(["record", "--restore", "-o", d])
        // The state's libvirt:test?connect=test:///default reached libvirt's test driver (not
        // parsed as a socket address), which has no passthrough; the state is left for a retry.
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("libvirt's TEST driver at test:///default has no QEMU monitor passthrough"), "\(r.stderr)")
        #expect(try RecordState.load(directory: d).restored == false)
    }
}
