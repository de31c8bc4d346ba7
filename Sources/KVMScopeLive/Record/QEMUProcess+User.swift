import Foundation

extension QEMUProcess {
    /// The user QEMU runs as (the real uid of /proc/PID/status's `Uid:` line; proc(5)), for the
    /// owner of the staging files QEMU must open: libvirt runs QEMU as its own user
    /// (libvirt-qemu on Debian), and over libvirt there is no socket peer to ask.
    public func userID(procRoot: String = "/proc") -> UInt32? { realID("Uid:", procRoot: procRoot) }

    /// The real gid of /proc/PID/status's `Gid:` line.
    public func groupID(procRoot: String = "/proc") -> UInt32? { realID("Gid:", procRoot: procRoot) }

    /// The first (real) id of a `Uid:`/`Gid:` line of /proc/PID/status.
    private func realID(_ field: String, procRoot: String) -> UInt32? {
        guard let pid, let data = FileManager.default.contents(atPath: "\(procRoot)/\(pid)/status"), data.count < 1 << 16 else { return nil }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix(field) {
            return line.dropFirst(field.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { UInt32($0) }
        }
        return nil
    }
}

/// Whether a user may open a path for appending — asked of the kernel, not guessed from mode
/// bits: a child process takes the user's ids (no supplementary groups, as QEMU under libvirt
/// or `-runas` has none beyond its own) and tries open(2). So record knows, before it changes
/// anything, that QEMU will be able to reopen its log afterwards (a pipe to virtlogd made by
/// root is not reopenable by libvirt-qemu through /proc/self/fd/2, for one). Mandatory access
/// control (AppArmor, SELinux) confines QEMU by its own profile and is not seen here.
enum UserAccess {
    static func canAppend(_ path: String, uid: UInt32, gid: UInt32) -> Bool {
        if uid == getuid() {
            // Our own ids: open it here (a socket behind /proc/PID/fd/2, journald's, fails too).
            let fd = open(path, O_WRONLY | O_APPEND | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
            if fd >= 0 { close(fd) }
            return fd >= 0
        }
        guard let cpath = strdup(path) else { return false }
        defer { free(cpath) }
        let child = fork()
        if child == 0 {
            // Only async-signal-safe calls between fork and _exit.
            if setgroups(0, nil) != 0 || setregid(gid, gid) != 0 || setreuid(uid, uid) != 0 { _exit(2) }
            let fd = open(cpath, O_WRONLY | O_APPEND | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
            _exit(fd >= 0 ? 0 : 1)
        }
        guard child > 0 else { return false }
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 && ((status >> 8) & 0xff) == 0
    }
}
