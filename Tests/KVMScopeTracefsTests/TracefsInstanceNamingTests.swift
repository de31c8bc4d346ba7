import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeTracefs

/// One process may hold several instances (exits and drops at once; the test process does):
/// each needs its own name, and the stale-instance sweep must recognise every form.
@Suite struct TracefsInstanceNamingTests {
    /// A fake tracefs root to create instances in.
    static func tempDir(_ name: String) throws -> String {
        let dir = NSTemporaryDirectory() + "kvmscope-tracefs-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func twoInstancesInOneProcessDoNotCollide() throws {
        let root = try Self.tempDir("naming")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/instances", withIntermediateDirectories: true)
        let fs = Tracefs(root: root)
        let a = try TracefsInstance(in: fs)
        let b = try TracefsInstance(in: fs)
        #expect(a.name != b.name)
        #expect(TracefsInstance.ownerPID(ofInstanceNamed: a.name) == getpid())
        #expect(TracefsInstance.ownerPID(ofInstanceNamed: b.name) == getpid())
        try a.remove()
        try b.remove()
    }

    @Test func ownerPIDParsing() {
        #expect(TracefsInstance.ownerPID(ofInstanceNamed: "kvmscope-4242") == 4242)
        #expect(TracefsInstance.ownerPID(ofInstanceNamed: "kvmscope-4242-3") == 4242)
        #expect(TracefsInstance.ownerPID(ofInstanceNamed: "kvmscope-foo") == nil)
        #expect(TracefsInstance.ownerPID(ofInstanceNamed: "kvmscope-4242-x") == nil)
        #expect(TracefsInstance.ownerPID(ofInstanceNamed: "someone-else-1") == nil)
    }

    @Test func staleSweepSeesSuffixedNamesOfDeadProcesses() throws {
        let root = try Self.tempDir("stale")
        defer { try? FileManager.default.removeItem(atPath: root) }
        for n in ["kvmscope-999999", "kvmscope-999999-2", "kvmscope-\(getpid())-5", "other-1"] {
            try FileManager.default.createDirectory(atPath: root + "/instances/" + n, withIntermediateDirectories: true)
        }
        #expect(TracefsInstance.staleInstances(in: Tracefs(root: root)) == ["kvmscope-999999", "kvmscope-999999-2"])
    }
}
