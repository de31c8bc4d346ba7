import Foundation
import Testing
@testable import KVMScopeLive

/// QEMU's user from /proc/PID/status, the staging files' owner when there is no socket peer
/// (record --domain: libvirt runs QEMU as libvirt-qemu).
@Suite struct QEMUProcessUserTests {
    private func proc(_ status: String?) throws -> String {
        let root = NSTemporaryDirectory() + "kvmscope-status-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: root + "/4242", withIntermediateDirectories: true)
        if let status { try status.write(toFile: root + "/4242/status", atomically: true, encoding: .utf8) }
        return root
    }

    @Test func theRealUIDOfTheUidLine() throws {
        // proc(5): Uid: real, effective, saved set, filesystem.
        let root = try proc("Name:\tqemu-system-x86\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t64055\t0\t64055\t64055\nGid:\t64055\t64055\t64055\t64055\n")
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(QEMUProcess(pid: 4242, arguments: []).userID(procRoot: root) == 64055)
    }

    @Test func unknownWhenItCannotBeRead() throws {
        let none = try proc(nil), bad = try proc("Name:\tx\nUid:\tabc\n"), huge = try proc("Uid:\t99999999999\n")
        defer { for r in [none, bad, huge] { try? FileManager.default.removeItem(atPath: r) } }
        #expect(QEMUProcess(pid: 4242, arguments: []).userID(procRoot: none) == nil)
        #expect(QEMUProcess(pid: 4242, arguments: []).userID(procRoot: bad) == nil)
        #expect(QEMUProcess(pid: 4242, arguments: []).userID(procRoot: huge) == nil)
        #expect(QEMUProcess(pid: nil, arguments: []).userID(procRoot: none) == nil)
    }
}
