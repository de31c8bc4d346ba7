import Foundation
import Testing
@testable import KVMScopeLibvirt

/// A /proc of command lines, laid out as the kernel shows them (NUL-separated argv).
private struct FakeProc {
    let root: String
    init() throws {
        root = NSTemporaryDirectory() + "kvmscope-proc-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }
    func process(_ pid: Int32, _ argv: [String]) throws {
        try FileManager.default.createDirectory(atPath: "\(root)/\(pid)", withIntermediateDirectories: true)
        try Data((argv.joined(separator: "\0") + "\0").utf8).write(to: URL(fileURLWithPath: "\(root)/\(pid)/cmdline"))
    }
    func file(_ name: String, _ text: String) throws -> String {
        let p = "\(root)/\(name)"
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }
    func remove() { try? FileManager.default.removeItem(atPath: root) }
}

@Suite struct DomainProcessLookupTests {
    let uuid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    let other = "6f1e3c52-0000-4a8e-9b1e-3c52aa000001"

    private func qemu(_ uuid: String) -> [String] {
        ["/usr/bin/qemu-system-x86_64", "-name", "guest=vm1,debug-threads=on", "-S", "-uuid", uuid, "-msg", "timestamp=on"]
    }

    @Test func thePidFileIsTakenWhenThatProcessHasTheDomainsUUID() throws {
        let p = try FakeProc(); defer { p.remove() }
        try p.process(100, qemu(uuid))
        try p.process(200, qemu(uuid))   // a second match would make the scan ambiguous: the file decides
        let file = try p.file("vm1.pid", "200\n")
        #expect(DomainProcessLookup.find(uuid: uuid, pidFiles: [file], procRoot: p.root) == .success(200))
    }

    @Test func aStalePidFileFallsBackToTheUUIDScan() throws {
        let p = try FakeProc(); defer { p.remove() }
        try p.process(100, qemu(uuid.uppercased()))
        try p.process(200, qemu(other))                                // the pid file's pid, reused by another VM
        try p.process(300, ["/bin/sleep", "-uuid", uuid])              // not QEMU
        let stale = try p.file("vm1.pid", "200")
        #expect(DomainProcessLookup.find(uuid: uuid, pidFiles: [stale, "/nonexistent/vm1.pid"], procRoot: p.root) == .success(100))
        let garbage = try p.file("bad.pid", "12ab")
        #expect(DomainProcessLookup.find(uuid: uuid, pidFiles: [garbage], procRoot: p.root) == .success(100))
    }

    @Test func noneOrSeveralAreSaid() throws {
        let p = try FakeProc(); defer { p.remove() }
        try p.process(100, qemu(other))
        guard case let .failure(none) = DomainProcessLookup.find(uuid: uuid, pidFiles: [], procRoot: p.root) else {
            Issue.record("found a process with another UUID"); return
        }
        #expect(none.detail.contains("no process here runs QEMU with -uuid \(uuid)"))
        try p.process(400, qemu(uuid)); try p.process(401, qemu(uuid))
        guard case let .failure(two) = DomainProcessLookup.find(uuid: uuid, pidFiles: [], procRoot: p.root) else {
            Issue.record("chose one of two"); return
        }
        #expect(two.detail.contains("400, 401"))
    }

    @Test func thePidFilesOfTheSystemAndSessionDrivers() {
        #expect(DomainProcessLookup.pidFiles(name: "vm1", environment: [:]) == ["/run/libvirt/qemu/vm1.pid"])
        #expect(DomainProcessLookup.pidFiles(name: "vm1", environment: ["XDG_RUNTIME_DIR": "/run/user/1000"])
                == ["/run/libvirt/qemu/vm1.pid", "/run/user/1000/libvirt/qemu/run/vm1.pid"])
    }
}
