import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeTracefs

/// A tracefs instance of kvmscope's own on the real tracefs (and the stats it reads back).
/// Serialized like the recorder tests, and for the same reason: it touches the real tracefs.
@Suite(.serialized) struct TracefsInstanceTests {
    static let realRoot = Tracefs.defaultRoot

    @Test func perCPUStatsParsing() throws {
        // A real per_cpu/cpu0/stats of linux 6.18.
        let stats = "entries: 5\noverrun: 12\ncommit overrun: 0\nbytes: 124\noldest event ts:   794.188345\nnow ts:   794.208446\ndropped events: 3\nread events: 0\n"
        #expect(TracefsInstance.lostEvents(inStats: stats) == 15)
    }

    // MARK: the real tracefs

    @Test func instanceIsCreatedConfiguredAndRemovedWithoutTouchingOthers() throws {
        guard RealTracefs.usable(for: "the real-tracefs instance test") else { return }
        let fs = try Tracefs.locate()
        let globalEnable = try String(contentsOfFile: fs.path("events/kvm/kvm_exit/enable"), encoding: .utf8)
        let decoy = try RealTracefs.makeDecoy(fs)
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
