import Foundation
import Testing
@testable import KVMScopeExplain
import KVMScopeHost
import KVMScopeTestSupport

/// `explain` on a real libvirt run (lab/libvirt-fs-full: libvirtd 9.0.0 + virtlogd, a
/// type='qemu' domain whose raw image sits on a 16 MiB host tmpfs the guest fills). The
/// per-domain log is at once the QEMU command line and the trace (QEMU's log backend writes to
/// stderr, which virtlogd puts in the log), among libvirt's own lines; QMP events are
/// `virsh qemu-monitor-event --timestamp` output; `virsh event` output lies beside them.
@Suite struct ExplainLibvirtLogTests {
    static func path(_ f: String) -> String { LabFixtures.path("libvirt-fs-full", f) }

    static func run(hostLog: Bool) throws -> ExplainReport {
        var inputs = ExplainSession.Inputs(guest: try FileByteSource(path: path("console.log")),
                                           trace: try FileByteSource(path: path("libvirt-qemu.log")),
                                           qmp: try FileByteSource(path: path("qmp-events.txt")))
        inputs.qemuCommandLine = try FileByteSource(path: path("libvirt-qemu.log"))
        if hostLog { inputs.hostLog = try FileByteSource(path: path("host-dmesg.log")) }
        return try ExplainSession.run(inputs)
    }

    static func check(_ r: ExplainReport) throws {
        #expect(r.verdict.origin == .hostStorage)
        #expect(r.verdict.summary.contains("ENOSPC"))
        #expect(r.verdict.summary.contains("werror=report"))
        #expect(!r.verdict.summary.contains("inside the guest"))
        // The guest's two failed 1 MiB writes (guest.sh: MiB 16 and 17 of vda), each tied to
        // QEMU's failed request and to a BLOCK_IO_ERROR.
        #expect(r.matches.count == 2 && r.unmatched.isEmpty)
        #expect(r.guestBlockErrors.map(\.sector) == [32768, 34816])
        #expect(r.matches.allSatisfy { $0.host != nil && $0.qmp != nil && $0.guestDevice == "vda" && $0.operation == "write" })
        let failures = try #require(r.host).failures
        #expect(failures.count == 2 && failures.allSatisfy { $0.errnoName == "ENOSPC" && $0.operation == .write })
        #expect(failures.map(\.sector) == [32768, 34816])
        // The policy: stated on libvirt's command line (the device's werror=report), and
        // QMP's action agrees; the disk map is libvirt's.
        let disk = try #require(r.qemuDisks?.first)
        #expect(r.qemuDisks?.count == 1 && disk.nodeName == "libvirt-1-format" && disk.id == "virtio-disk0")
        let write = try #require(r.errorPolicies.first { $0.operation == "write" })
        #expect(write.statedOnCommandLine == true)
        #expect(write.possible.map(\.rawValue) == ["report"])
        // The image was on the run's tmpfs, long gone: nothing is said about where it lives now.
        #expect(r.hostImages.isEmpty)
    }

    @Test func libvirtLogAsTraceAndCommandLineExplainsTheFullHostFilesystem() throws {
        let r = try Self.run(hostLog: false)
        try Self.check(r)
        #expect(r.verdict.layer == nil)   // below QEMU is named only with the host's kernel log
        // The trace reader read QEMU's trace lines and skipped libvirt's own (and QEMU's other
        // stderr), counting them.
        let trace = try #require(r.inputs.understood.first { $0.role == "qemu-trace" })
        #expect(trace.linesRecognised > 100 && trace.linesSkipped > 0 && trace.linesSkipped < 60)
    }

    @Test func withTheHostsKernelLogTheLayerIsTheFullFilesystem() throws {
        let r = try Self.run(hostLog: true)
        try Self.check(r)
        #expect(r.verdict.layer == "host-filesystem-full" && r.verdict.hostDevice == nil)
        #expect(r.verdict.summary.contains("ran out of space"))
        #expect(r.layers.count == 2 && r.layers.allSatisfy { $0.qemuErrno == "ENOSPC" && $0.hostFinding == nil })
    }

    /// The capture directory as a whole: console.log is the guest log, libvirt-qemu.log the
    /// trace and the command line, qmp-events.txt the QMP events — not libvirt-events.txt,
    /// whose `event 'io-error' for domain …` lines are libvirt's own events, not QMP.
    @Test func theCaptureDirectoryFindsEachRole() throws {
        let dir = LabFixtures.path("libvirt-fs-full", "")
        let streams = try ExplainSession.streams(inDirectory: dir)
        let names = streams.map { ($0.name as NSString).lastPathComponent }
        #expect(names == ["console.log", "libvirt-qemu.log", "qmp-events.txt"])
        let cmdline = try #require(ExplainSession.commandLine(inDirectory: dir))
        #expect((cmdline.name as NSString).lastPathComponent == "libvirt-qemu.log")
    }

    /// A per-domain log keeps every start of the VM. With two, only the last run is the trace:
    /// the first run's two failed writes are not counted again, and a note says which run.
    @Test func aLogOfSeveralStartsIsReadFromTheLastRun() throws {
        let log = try String(contentsOfFile: Self.path("libvirt-qemu.log"), encoding: .utf8)
        let dir = TempDir()
        let twice = dir.path + "/libvirt-qemu.log"
        try (log + log).write(toFile: twice, atomically: true, encoding: .utf8)
        var inputs = ExplainSession.Inputs(guest: try FileByteSource(path: Self.path("console.log")),
                                           trace: try FileByteSource(path: twice),
                                           qmp: try FileByteSource(path: Self.path("qmp-events.txt")))
        inputs.qemuCommandLine = try FileByteSource(path: twice)
        let r = try ExplainSession.run(inputs)
        try Self.check(r)
        let lines = log.split(separator: "\n", omittingEmptySubsequences: false).count - (log.hasSuffix("\n") ? 1 : 0)
        #expect(r.inputs.understood.first { $0.role == InputKind.qemuTrace.rawValue }?.lines == lines)
        #expect(r.inputs.notes.contains { $0.contains("libvirt's log of 2 QEMU starts; the trace is read from the last one (line \(lines + 1)") })
    }
}
