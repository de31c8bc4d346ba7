import Foundation

/// QEMU's block permissions (include/block/block-common.h, `BLK_PERM_*`; QEMU 7.2 and later
/// have these four, `BLK_PERM_ALL` = 0x0f; 6.1 and older also had GRAPH_MOD = 0x10 at byte 104/204,
/// which nobody needs for I/O, so it never conflicts with what kvmscope takes).
public struct QemuBlockPermissions: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let consistentRead = QemuBlockPermissions(rawValue: 0x01)
    public static let write = QemuBlockPermissions(rawValue: 0x02)
    public static let writeUnchanged = QemuBlockPermissions(rawValue: 0x04)
    public static let resize = QemuBlockPermissions(rawValue: 0x08)
    public static let all: QemuBlockPermissions = [.consistentRead, .write, .writeUnchanged, .resize]

    /// The bit numbers (lock-byte offsets from the bases), as block/file-posix.c `PERM_FOREACH`.
    static let bits = 0..<4

    /// block.c `bdrv_perm_names`, which QEMU's lock messages quote.
    static func name(bit: Int) -> String {
        ["consistent read", "write", "write unchanged", "resize"][bit]
    }

    func contains(bit: Int) -> Bool { rawValue & (1 << UInt64(bit)) != 0 }
}

/// QEMU's image locking (block/file-posix.c), taken so that kvmscope and QEMU, qemu-io,
/// qemu-img, qemu-nbd and qemu-storage-daemon keep out of each other's way on the same file:
///
/// - Byte `RAW_LOCK_PERM_BASE` (100) + n is read-locked by every holder of permission n, byte
///   `RAW_LOCK_SHARED_BASE` (200) + n by every holder that does not let others have
///   permission n (`raw_apply_lock_bytes`). All locks are shared (F_RDLCK) open-file-description
///   locks (`qemu_lock_fd` → F_OFD_SETLK), so they never block each other; conflicts are found by
///   asking whether an exclusive lock *could* be taken (`qemu_lock_fd_test`: F_OFD_GETLK with
///   F_WRLCK), which only another open file description's lock prevents.
/// - After locking, `raw_check_lock_bytes`: for each permission we want, nobody may hold its
///   shared byte (else `Failed to get "write" lock`); for each permission we do not share, nobody
///   may hold its perm byte (else `Failed to get shared "write" lock`). Locking before checking
///   means two openers racing each see the other's bytes.
///
/// The locks belong to the file descriptor's open file description, so they last until the
/// descriptor is closed (`RawImageFile` deinit) or the process dies, as QEMU's do.
public struct QemuImageLock: Sendable {
    /// block/file-posix.c: "Libvirt takes byte 0, we start from higher bytes".
    public static let permBase: Int64 = 100
    public static let sharedBase: Int64 = 200

    public let permissions: QemuBlockPermissions
    public let shared: QemuBlockPermissions
    /// The byte offsets this holder read-locked (for reports and tests).
    public let lockedBytes: [Int64]

    /// What kvmscope takes for its use of an image. Writing: consistent read + write, sharing
    /// only consistent read and write-unchanged (what qemu-img takes, `BDRV_O_NO_SHARE`):
    /// nobody else may write (a guest or qemu-io writing under injected faults would make the
    /// results meaningless) or resize (kvmscope reads the size once, at open). Reading: the
    /// same without write. `forceShare` (qemu-io `-U`, `force-share=on`): read-only, consistent
    /// read only, sharing everything (block.c `bdrv_child_perm`: force_share → `*nshared =
    /// BLK_PERM_ALL`), so a running guest does not stop it.
    public static func kvmscopeRequest(readOnly: Bool, forceShare: Bool) -> (permissions: QemuBlockPermissions, shared: QemuBlockPermissions) {
        if forceShare { return ([.consistentRead], .all) }
        return (readOnly ? [.consistentRead] : [.consistentRead, .write], [.consistentRead, .writeUnchanged])
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// Someone holds the shared byte of a permission we need ("Failed to get "write" lock").
        case permissionDenied(name: String, path: String)
        /// Someone holds a permission we refuse to share ("Failed to get shared "write" lock").
        case sharedPermissionDenied(name: String, path: String)
        /// fcntl failed for another reason (a file system without OFD locks, ...).
        case system(operation: String, byte: Int64, errno: Int32, path: String)

        /// QEMU's message (file-posix.c `raw_check_lock_bytes` and `raw_handle_perm_lock`'s
        /// hint), on one line.
        public var description: String {
            switch self {
            case let .permissionDenied(name, path):
                return "Failed to get \"\(name)\" lock; is another process using the image [\(path)]?"
            case let .sharedPermissionDenied(name, path):
                return "Failed to get shared \"\(name)\" lock; is another process using the image [\(path)]?"
            case let .system(operation, byte, e, _):
                return "\(operation) on lock byte \(byte) failed: \(KVMScopeError.systemMessage(e)) (QEMU's image locks need a file system with OFD locks)"
            }
        }
    }

    /// Locks the bytes for `permissions`/`shared` on `fd` and checks that nobody else's locks
    /// conflict; on a conflict the bytes taken here are unlocked again and the conflict thrown.
    public static func acquire(fd: Int32, path: String, permissions: QemuBlockPermissions,
                               shared: QemuBlockPermissions) throws -> QemuImageLock {
        var locked: [Int64] = []
        func release() { for byte in locked { _ = setLock(fd, byte, Int16(F_UNLCK)) } }
        // raw_apply_lock_bytes: perm bytes for what we hold, shared bytes for what we deny.
        for bit in QemuBlockPermissions.bits {
            let targets = [(permissions.contains(bit: bit), permBase), (!shared.contains(bit: bit), sharedBase)]
            for (wanted, base) in targets where wanted {
                let byte = base + Int64(bit)
                if let e = setLock(fd, byte, Int16(F_RDLCK)) {
                    release()
                    throw Failure.system(operation: "F_OFD_SETLK", byte: byte, errno: e, path: path)
                }
                locked.append(byte)
            }
        }
        // raw_check_lock_bytes: first the shared bytes of what we need, then the perm bytes of
        // what we do not share, in bit order, so the first conflict is the one QEMU reports.
        for bit in QemuBlockPermissions.bits where permissions.contains(bit: bit) {
            switch testLock(fd, sharedBase + Int64(bit)) {
            case .free: continue
            case .held:
                release()
                throw Failure.permissionDenied(name: QemuBlockPermissions.name(bit: bit), path: path)
            case .error(let e):
                release()
                throw Failure.system(operation: "F_OFD_GETLK", byte: sharedBase + Int64(bit), errno: e, path: path)
            }
        }
        for bit in QemuBlockPermissions.bits where !shared.contains(bit: bit) {
            switch testLock(fd, permBase + Int64(bit)) {
            case .free: continue
            case .held:
                release()
                throw Failure.sharedPermissionDenied(name: QemuBlockPermissions.name(bit: bit), path: path)
            case .error(let e):
                release()
                throw Failure.system(operation: "F_OFD_GETLK", byte: permBase + Int64(bit), errno: e, path: path)
            }
        }
        return QemuImageLock(permissions: permissions, shared: shared, lockedBytes: locked.sorted())
    }

    /// A permission held for one operation, as qemu-io raises its permissions for one command
    /// (qemu-io-cmds.c `command`: `blk_set_perm` with the command's `perm`, restored after).
    public struct Temporary {
        let fd: Int32
        let byte: Int64
        public func release() { _ = QemuImageLock.setLock(fd, byte, Int16(F_UNLCK)) }
    }

    /// Takes `permission` (one bit; one kvmscope never holds for long, such as resize) on top of
    /// what `fd` holds: its perm byte is locked, then nobody else may hold its shared byte.
    public static func takeTemporarily(fd: Int32, path: String, permission: QemuBlockPermissions) throws -> Temporary {
        guard let bit = QemuBlockPermissions.bits.first(where: { permission.contains(bit: $0) }) else {
            preconditionFailure("takeTemporarily needs one permission")
        }
        let byte = permBase + Int64(bit)
        if let e = setLock(fd, byte, Int16(F_RDLCK)) {
            throw Failure.system(operation: "F_OFD_SETLK", byte: byte, errno: e, path: path)
        }
        let held = Temporary(fd: fd, byte: byte)
        switch testLock(fd, sharedBase + Int64(bit)) {
        case .free: return held
        case .held:
            held.release()
            throw Failure.permissionDenied(name: QemuBlockPermissions.name(bit: bit), path: path)
        case .error(let e):
            held.release()
            throw Failure.system(operation: "F_OFD_GETLK", byte: sharedBase + Int64(bit), errno: e, path: path)
        }
    }

    // MARK: - fcntl (util/osdep.c qemu_lock_fcntl / qemu_lock_fd_test)

    /// <asm-generic/fcntl.h>: Glibc exports the OFD commands only under _GNU_SOURCE.
    static let ofdGetLock: Int32 = 36   // F_OFD_GETLK
    static let ofdSetLock: Int32 = 37   // F_OFD_SETLK

    enum TestResult { case free, held, error(Int32) }

    private static func lockStruct(_ byte: Int64, _ type: Int16) -> flock {
        var fl = flock()
        fl.l_type = type
        fl.l_whence = Int16(SEEK_SET)
        fl.l_start = off_t(byte)
        fl.l_len = 1
        fl.l_pid = 0     // must be 0 for OFD locks (fcntl(2))
        return fl
    }

    private static func fcntlLock(_ fd: Int32, _ cmd: Int32, _ fl: inout flock) -> Int32 {
        withUnsafeMutablePointer(to: &fl) { fcntl(fd, cmd, UnsafeMutableRawPointer($0)) }
    }

    /// Returns nil on success, else the errno.
    private static func setLock(_ fd: Int32, _ byte: Int64, _ type: Int16) -> Int32? {
        var fl = lockStruct(byte, type)
        while fcntlLock(fd, ofdSetLock, &fl) == -1 {
            if errno == EINTR { continue }
            return errno
        }
        return nil
    }

    /// Whether an exclusive lock on `byte` would conflict with another open file description's.
    static func testLock(_ fd: Int32, _ byte: Int64) -> TestResult {
        var fl = lockStruct(byte, Int16(F_WRLCK))
        if fcntlLock(fd, ofdGetLock, &fl) == -1 { return .error(errno) }
        return fl.l_type == Int16(F_UNLCK) ? .free : .held
    }
}
