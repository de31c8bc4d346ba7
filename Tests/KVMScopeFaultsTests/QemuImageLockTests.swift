import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeFaults

/// QEMU's lock bytes between two opens of one file in this process: OFD locks belong to the
/// open file description, so two `RawImageFile`s conflict exactly as two processes do.
@Suite struct QemuImageLockTests {
    private func lock(_ file: RawImageFile, readOnly: Bool, forceShare: Bool = false) throws -> QemuImageLock {
        let (perm, shared) = QemuImageLock.kvmscopeRequest(readOnly: readOnly, forceShare: forceShare)
        return try QemuImageLock.acquire(fd: file.descriptor, path: file.path, permissions: perm, shared: shared)
    }

    private func held(_ path: String, _ byte: Int64) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        defer { close(fd) }
        if case .held = QemuImageLock.testLock(fd, byte) { return true }
        return false
    }

    @Test func writerTakesQemuBytes() throws {
        let dir = TempDir()
        let img = dir.image("disk.img", size: 1 << 20)
        var file: RawImageFile? = try RawImageFile(path: img)
        // consistent read + write held (100, 101); write and resize not shared (201, 203).
        #expect(try lock(file!, readOnly: false).lockedBytes == [100, 101, 201, 203])
        #expect([100, 101, 201, 203].allSatisfy { held(img, $0) })
        #expect(![102, 103, 200, 202].contains { held(img, $0) })
        file = nil
        let reader = try RawImageFile(path: img, readOnly: true)
        #expect(try lock(reader, readOnly: true).lockedBytes == [100, 201, 203])
        #expect(!held(img, 101))
    }

    @Test func secondOpenConflictsAndReleasesWhatItTook() throws {
        let dir = TempDir()
        let img = dir.image("disk.img", size: 1 << 20)
        var first: RawImageFile? = try RawImageFile(path: img)
        _ = try lock(first!, readOnly: false)

        let second = try RawImageFile(path: img)
        #expect(throws: QemuImageLock.Failure.permissionDenied(name: "write", path: img)) { try lock(second, readOnly: false) }
        let reader = try RawImageFile(path: img, readOnly: true)
        #expect(throws: QemuImageLock.Failure.sharedPermissionDenied(name: "write", path: img)) { try lock(reader, readOnly: true) }
        let shared = try RawImageFile(path: img, readOnly: true)
        #expect(try lock(shared, readOnly: true, forceShare: true).lockedBytes == [100])

        // Closing the first holder drops its locks; the failed attempts kept none.
        first = nil
        #expect(!held(img, 101) && !held(img, 201) && !held(img, 203))
        #expect(held(img, 100))   // the force-share reader's
        _ = try lock(second, readOnly: false)
    }
}
