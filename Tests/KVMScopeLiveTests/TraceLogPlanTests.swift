import XCTest
@testable import KVMScopeLive

/// Redirect QEMU's log only when QEMU, as its own user, can open the staging file and reopen
/// its old log afterwards; otherwise read the file it logs to; otherwise change nothing.
/// The access checks are the kernel's (a child with QEMU's ids tries open(2)).
final class TraceLogPlanTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        try XCTSkipIf(getuid() != 0, "needs root: the checks take another user's ids")
        dir = NSTemporaryDirectory() + "kvmscope-plan-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { if let dir { try? FileManager.default.removeItem(atPath: dir) } }

    static let nobody: UInt32 = 65534

    func testRootQEMUWithADashDFileIsRedirected() throws {
        let log = dir + "/qemu.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let p = QEMUProcess(pid: getpid(), arguments: ["qemu-system-x86_64", "-D", log])
        guard case let .redirect(staging) = try TraceLogPlan.choose(process: p, uid: 0, gid: 0, stagingParent: dir) else {
            return XCTFail("not redirected")
        }
        XCTAssertTrue(staging.hasPrefix(dir + "/kvmscope-record-"), staging)
        var st = stat()
        XCTAssertEqual(stat(staging, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o700)
    }

    /// A -D file QEMU (as nobody) could not open again — it was opened before privileges were
    /// dropped — is read instead of redirected: a failed `logfile` back would lose the log.
    func testAnUnreopenableDashDFileIsFollowedNotRedirected() throws {
        let log = dir + "/qemu.log"
        FileManager.default.createFile(atPath: log, contents: nil, attributes: [.posixPermissions: 0o600])
        chmod(dir, 0o755)
        let p = QEMUProcess(pid: getpid(), arguments: ["qemu-system-x86_64", "-D", log])
        let plan = try TraceLogPlan.choose(process: p, uid: Self.nobody, gid: Self.nobody, stagingParent: dir)
        guard case let .follow(path, why) = plan else { return XCTFail("redirected: \(plan)") }
        XCTAssertEqual(path, log)
        XCTAssertTrue(why.contains("could not reopen \(log) afterwards"), why)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["qemu.log"], "the staging directory is removed again")
    }

    /// The same file, writable by QEMU's user: redirected, and the staging file is QEMU's to open.
    func testAReopenableDashDFileIsRedirectedForANonRootQEMU() throws {
        let log = dir + "/qemu.log"
        FileManager.default.createFile(atPath: log, contents: nil, attributes: [.posixPermissions: 0o600])
        chown(log, Self.nobody, Self.nobody)
        chmod(dir, 0o755)
        let p = QEMUProcess(pid: getpid(), arguments: ["qemu-system-x86_64", "-D", log])
        guard case let .redirect(staging) = try TraceLogPlan.choose(process: p, uid: Self.nobody, gid: Self.nobody, stagingParent: dir) else {
            return XCTFail("not redirected")
        }
        XCTAssertTrue(UserAccess.canAppend(staging + "/qemu-log-a", uid: Self.nobody, gid: Self.nobody))
    }

    /// No -D, and a stderr QEMU's user cannot reopen (here: this root process's): libvirt's log
    /// of the domain (by -name guest=NAME) is read, or the file behind stderr if it is one.
    func testAnUnreopenableStderrFallsBackToTheFileQEMULogsTo() throws {
        let libvirtLogs = dir + "/libvirt"
        try FileManager.default.createDirectory(atPath: libvirtLogs, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: libvirtLogs + "/vm1.log", contents: nil)
        chmod(dir, 0o755)
        let p = QEMUProcess(pid: getpid(), arguments: ["qemu-system-x86_64", "-name", "guest=vm1,debug-threads=on"])
        let plan = try TraceLogPlan.choose(process: p, uid: Self.nobody, gid: Self.nobody, stagingParent: dir, libvirtLogDirectory: libvirtLogs)
        guard case let .follow(path, why) = plan else { return XCTFail("redirected: \(plan)") }
        XCTAssertTrue(path == libvirtLogs + "/vm1.log" || why.contains("the file behind QEMU's stderr"), "\(path): \(why)")
        XCTAssertTrue(why.contains("could not reopen its stderr afterwards"), why)
    }

    func testTheUserAccessCheckIsTheKernels() throws {
        let f = dir + "/f"
        FileManager.default.createFile(atPath: f, contents: nil, attributes: [.posixPermissions: 0o600])
        chmod(dir, 0o755)
        XCTAssertTrue(UserAccess.canAppend(f, uid: 0, gid: 0))
        XCTAssertFalse(UserAccess.canAppend(f, uid: Self.nobody, gid: Self.nobody))
        chmod(f, 0o622)
        XCTAssertTrue(UserAccess.canAppend(f, uid: Self.nobody, gid: Self.nobody))
        XCTAssertFalse(UserAccess.canAppend(dir + "/missing", uid: Self.nobody, gid: Self.nobody))
    }
}
