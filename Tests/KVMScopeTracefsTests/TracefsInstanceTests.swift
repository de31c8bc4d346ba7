import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeTracefs

/// A tracefs instance of kvmscope's own on the real tracefs (and the stats it reads back).
/// Serialized like the recorder tests, and for the same reason: it touches the real tracefs.
@Suite(.serialized) struct TracefsInstanceTests {
    static let realRoot = Tracefs.defaultRoot

    /// Whether this machine has a tracefs with kvm tracepoints to create an instance on; says why not.
    static func realTracefsUsable() -> Bool {
        guard geteuid() == 0 else { print("NOTE: not root: the real-tracefs instance test cannot run here"); return false }
        guard (try? Tracefs.locate()) != nil, Tracefs(root: realRoot).hasEvent("kvm", "kvm_exit") else {
            print("NOTE: no tracefs with kvm tracepoints on this machine: the real-tracefs instance test cannot run here")
            return false
        }
        return true
    }

    /// An instance named like nobody kvmscope knows (another tool's), which must be left alone.
    static func makeDecoy(_ fs: Tracefs) throws -> String {
        let path = fs.path("instances/other-tool-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        guard mkdir(path, 0o755) == 0 else { throw TracefsError.io(path: path, reason: "cannot create decoy instance") }
        return path
    }

    @Test func perCPUStatsParsing() throws {
        // A real per_cpu/cpu0/stats of linux 6.18.
        let stats = "entries: 5\noverrun: 12\ncommit overrun: 0\nbytes: 124\noldest event ts:   794.188345\nnow ts:   794.208446\ndropped events: 3\nread events: 0\n"
        #expect(TracefsInstance.lostEvents(inStats: stats) == 15)
    }

    // MARK: the real tracefs

    @Test func instanceIsCreatedConfiguredAndRemovedWithoutTouchingOthers() throws {
        guard Self.realTracefsUsable() else { return }
        let fs = try Tracefs.locate()
        let globalEnable = try String(contentsOfFile: fs.path("events/kvm/kvm_exit/enable"), encoding: .utf8)
        let decoy = try Self.makeDecoy(fs)
        defer { rmdir(decoy) }
        let instance = try TracefsInstance(in: fs)
        defer { try? instance.remove() }
        #expect(instance.path == fs.path("instances/\(instance.name)"))
        #expect(TracefsInstance.ownerPID(ofInstanceNamed: instance.name) == getpid())
        #expect(FileManager.default.fileExists(atPath: instance.file("trace_pipe")))
        try instance.setBufferSize(kilobytes: 64)
        try instance.enable("kvm/kvm_exit", filter: "common_pid == 4242 || common_pid == 4243")
        #expect(instance.read("events/kvm/kvm_exit/enable")?.hasPrefix("1") == true)
        #expect(instance.read("events/kvm/kvm_exit/filter") == "common_pid == 4242 || common_pid == 4243\n")
        // The kernel rounds up to whole pages plus page headers (64 → 67 on x86-64).
        let kb = Int(instance.read("buffer_size_kb")?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        #expect(kb >= 64 && kb < 128, "buffer_size_kb \(kb)")
        // The global buffer's enable is what it was.
        #expect(try String(contentsOfFile: fs.path("events/kvm/kvm_exit/enable"), encoding: .utf8) == globalEnable)
        #expect(throws: TracefsError.instanceExists(path: instance.path)) { try TracefsInstance(in: fs, name: instance.name) }
        try instance.remove()
        #expect(!FileManager.default.fileExists(atPath: instance.path))
        #expect(FileManager.default.fileExists(atPath: decoy), "another tool's instance was touched")
    }
}
