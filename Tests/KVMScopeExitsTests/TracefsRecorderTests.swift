import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
import KVMScopeTracefs
@testable import KVMScopeExits

/// The live recorder, as far as this machine allows. Tests that touch the real tracefs run one
/// at a time (`.serialized`) and remove their instance even when an expectation fails.
@Suite(.serialized) struct TracefsRecorderTests {
    static let realRoot = Tracefs.defaultRoot

    static func tempDir(_ name: String) throws -> String {
        let dir = NSTemporaryDirectory() + "kvmscope-tracefs-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func instances() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: realRoot + "/instances"))?.sorted() ?? []
    }

    // MARK: messages, on fake tracefs roots

    @Test func notRoot() throws {
        var o = KVMExitRecorder.Options()
        o.effectiveUID = 1000
        #expect(throws: TracefsError.notRoot(root: Tracefs.defaultRoot)) { try KVMExitRecorder(options: o).preflight() }
        #expect(TracefsError.notRoot(root: "/sys/kernel/tracing").description.hasPrefix("live recording needs root"))
    }

    @Test func tracefsAbsent() throws {
        var o = KVMExitRecorder.Options()
        o.effectiveUID = 0
        o.tracefsRoot = "/nonexistent/kvmscope-tracefs"
        #expect(throws: TracefsError.absent(root: o.tracefsRoot, detail: "no such directory")) {
            try KVMExitRecorder(options: o).preflight()
        }
        let empty = try Self.tempDir("empty")
        defer { try? FileManager.default.removeItem(atPath: empty) }
        o.tracefsRoot = empty
        #expect(throws: TracefsError.absent(root: empty, detail: "it has no events/ directory")) {
            try KVMExitRecorder(options: o).preflight()
        }
    }

    @Test func noKVMTracepoints() throws {
        let root = try Self.tempDir("nokvm")
        defer { try? FileManager.default.removeItem(atPath: root) }
        for d in ["events/sched/sched_switch", "instances"] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(d)", withIntermediateDirectories: true)
        }
        FileManager.default.createFile(atPath: "\(root)/events/sched/sched_switch/enable", contents: Data("0\n".utf8))
        var o = KVMExitRecorder.Options()
        o.effectiveUID = 0
        o.tracefsRoot = root
        do {
            _ = try KVMExitRecorder(options: o).preflight()
            Issue.record("preflight should fail without kvm tracepoints")
        } catch let e as TracefsError {
            #expect(e.description == "this kernel has no kvm:kvm_exit/kvm:kvm_entry tracepoints (nothing under \(root)/events/): KVM is not loaded (modprobe kvm_intel or kvm_amd) or not built in")
        }
        // The same through the CLI: one line, exit status 1, nothing created.
        let r = try CLIRunner.run(["exits", "--record", "1s", "--tracefs", root])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("kvmscope: this kernel has no kvm:kvm_exit/kvm:kvm_entry tracepoints"))
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/instances").isEmpty)
    }

    @Test func cliTracefsAbsentAndNoPid() throws {
        let r = try CLIRunner.run(["exits", "--record", "1s", "--tracefs", "/nonexistent/tracefs"])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("kvmscope: no tracefs at /nonexistent/tracefs (no such directory)"))
        if RealTracefs.usable(for: "the real-tracefs recorder tests") {
            let p = try CLIRunner.run(["exits", "--record", "1s", "--pid", "999999999"])
            #expect(p.status == 1)
            #expect(p.stderr == "kvmscope: no process 999999999 (nothing at /proc/999999999/task)\n")
        }
    }

    @Test func cliNotRootForRealWithSetpriv() throws {
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else { return }
        // Run the real binary as `nobody`: it must explain, not crash, and create nothing.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        p.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", CLIRunner.binary.path, "exits", "--record", "1s"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = Pipe()
        try p.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        if text.contains("Permission denied") && !text.contains("kvmscope") { return }   // binary not reachable as nobody
        #expect(p.terminationStatus == 1)
        #expect(text.hasPrefix("kvmscope: live recording needs root"))
    }

    // MARK: the real tracefs

    @Test func recordsOwnGuestThroughPidFilterAndSaysWhatThisHostCannotDo() throws {
        guard RealTracefs.usable(for: "the real-tracefs recorder tests") else { return }
        let decoy = try RealTracefs.makeDecoy(try Tracefs.locate())
        defer { rmdir(decoy) }
        var o = KVMExitRecorder.Options()
        o.seconds = 1.5
        o.pid = getpid()
        var writes = 0
        var sawInstance = false
        var instancePath = ""
        let report = try KVMExitRecorder(options: o).record(analysis: ExitAnalysisOptions()) { instance in
            instancePath = instance.path
            sawInstance = FileManager.default.fileExists(atPath: instance.path)
            writes = TinyKVMGuest.run(times: 5)
        }
        #expect(sawInstance)
        #expect(!instancePath.isEmpty && !FileManager.default.fileExists(atPath: instancePath), "the instance must be gone")
        #expect(FileManager.default.fileExists(atPath: decoy), "another tool's instance was touched")
        let rec = try #require(report.recording)
        #expect(rec.threads.contains(Int32(getpid())))
        #expect(rec.events.prefix(2) == ["kvm:kvm_exit", "kvm:kvm_entry"])
        #expect(report.lost.ringBufferOverruns == 0)
        if writes == 0 {
            print("NOTE: /dev/kvm cannot run even a 10-byte guest on this machine: no KVM guest can run here, so the recorder saw no kvm events")
            #expect(rec.contextEvents == 0)
            return
        }
        // The guest's port writes reached us through the instance and the pid filter.
        #expect(rec.contextEvents >= writes, "kvm_pio/kvm_userspace_exit from our own guest")
        if report.lines.kvmExit == 0 {
            print("NOTE: this machine runs KVM guests (the test's own 10-byte guest made \(writes) port writes, seen as \(rec.contextEvents) kvm_pio/kvm_userspace_exit events) but its KVM emits no kvm_exit/kvm_entry (kvm_pvm: no VMX/SVM), so no exit latency can be measured live here")
            #expect(rec.note?.hasPrefix("guests ran (") == true)
        } else {
            #expect(report.pairing.pairs > 0)
        }
    }

    @Test func pidFilterExcludesOtherProcesses() throws {
        guard RealTracefs.usable(for: "the real-tracefs recorder tests") else { return }
        var o = KVMExitRecorder.Options()
        o.seconds = 1
        o.pid = 1
        var writes = 0
        let report = try KVMExitRecorder(options: o).record(analysis: ExitAnalysisOptions()) { _ in
            writes = TinyKVMGuest.run(times: 3)
        }
        #expect(report.lines.otherEvents == 0 && report.lines.kvmExit == 0, "our guest's events must be filtered out (\(writes) writes)")
        #expect(report.recording?.note == "no KVM exits recorded: process 1 ran no vCPU during the recording (is it QEMU, and is the guest running?)")
    }

    @Test func overrunsAreReported() throws {
        guard RealTracefs.usable(for: "the real-tracefs recorder tests") else { return }
        var o = KVMExitRecorder.Options()
        o.seconds = 1
        o.pid = getpid()
        o.bufferKB = 4      // one page per CPU, filled before the pipe is read
        var writes = 0
        let report = try KVMExitRecorder(options: o).record(analysis: ExitAnalysisOptions()) { _ in
            writes = TinyKVMGuest.run(times: 400)
        }
        guard writes > 0 else { print("NOTE: no KVM guest can run here: overrun test has no events"); return }
        #expect((report.lost.ringBufferOverruns ?? 0) > 0, "\(writes) port writes into a one-page buffer must overrun")
        #expect(report.lost.any)
    }

    @Test func ctrlCStopsTheRecordingPrintsTheReportAndRemovesTheInstance() throws {
        guard RealTracefs.usable(for: "the real-tracefs recorder tests") else { return }
        let p = Process()
        p.executableURL = CLIRunner.binary
        p.arguments = ["exits", "--record", "60s", "--no-heatmap"]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let instance = Self.realRoot + "/instances/kvmscope-\(p.processIdentifier)"
        defer {
            if p.isRunning { p.terminate() }
            p.waitUntilExit()
            if FileManager.default.fileExists(atPath: instance) { rmdir(instance) }
        }
        var appeared = false
        for _ in 0..<100 where !appeared {
            usleep(50_000)
            appeared = FileManager.default.fileExists(atPath: instance + "/trace_pipe")
        }
        #expect(appeared)
        usleep(200_000)
        kill(p.processIdentifier, SIGINT)
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(stdout.hasPrefix("kvmscope exits: live: \(instance)"))
        #expect(stderr.contains("kvmscope: warning: recording stopped early by a signal"))
        #expect(!FileManager.default.fileExists(atPath: instance))
    }
}
