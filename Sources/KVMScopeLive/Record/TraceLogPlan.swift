import Foundation
import KVMScopeCore

/// How record gets QEMU's trace lines, decided before anything in the VM changes.
///
/// Redirecting QEMU's log (HMP `logfile`) is the default: QEMU's own log is left untouched
/// while recording. It is only chosen when QEMU, as the user it runs as, can open both the
/// staging file and — afterwards — its old log again: its `-D` file, or its stderr
/// (/dev/stderr inside QEMU is /proc/self/fd/2). When it could not go back (libvirt-qemu and a
/// pipe root's virtlogd made, a `-D` file QEMU opened before `-runas` dropped privileges), a
/// failed `logfile` would leave QEMU logging into a removed staging file: the VM's log lost.
/// Then record reads the regular file QEMU logs to instead (nothing to restore), or refuses.
enum TraceLogPlan: Equatable {
    case redirect(stagingDirectory: String)
    case follow(path: String, why: String)

    /// Where libvirt's virtlogd keeps QEMU's stderr for domain NAME.
    static let libvirtLogDirectory = "/var/log/libvirt/qemu"

    static func choose(process: QEMUProcess, uid: UInt32?, gid: UInt32?,
                       stagingParent: String = "/var/tmp", libvirtLogDirectory: String = libvirtLogDirectory) throws -> TraceLogPlan {
        guard let pid = process.pid else { throw KVMScopeError.usage("QEMU's pid is unknown: give --pid") }
        let restoreTarget = process.logFile ?? "/proc/\(pid)/fd/2"
        // A staging directory QEMU's user can reach: not inside the 0700 capture directory.
        var template = Array("\(stagingParent)/kvmscope-record-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw KVMScopeError.cannotWrite(path: stagingParent, reason: KVMScopeError.systemMessage(errno))
        }
        let staging = String(cString: made)
        let uid = uid ?? 0, gid = gid ?? 0
        let probe = (staging as NSString).appendingPathComponent("qemu-log-a")
        let fd = open(probe, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        if fd >= 0 { _ = fchown(fd, uid, gid); close(fd) }
        _ = chown(staging, uid, gid)
        if UserAccess.canAppend(probe, uid: uid, gid: gid), UserAccess.canAppend(restoreTarget, uid: uid, gid: gid) {
            return .redirect(stagingDirectory: staging)
        }
        let cannot = UserAccess.canAppend(probe, uid: uid, gid: gid)
            ? "QEMU (uid \(uid)) could not reopen \(process.logFile ?? "its stderr") afterwards"
            : "QEMU (uid \(uid)) cannot open a staging file in \(stagingParent)"
        unlink(probe); rmdir(staging)
        func regularFile(_ p: String) -> Bool {
            var st = stat()
            return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(p, R_OK) == 0
        }
        if let f = process.logFile, regularFile(f) {
            return .follow(path: f, why: "\(cannot): record reads the trace from QEMU's -D file \(f), which gets the trace lines while recording")
        }
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/\(pid)/fd/2", &buf, buf.count - 1)
        let behind = n > 0 ? String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        if behind.hasPrefix("/"), regularFile(behind) {
            return .follow(path: behind, why: "\(cannot): record reads the trace from the file behind QEMU's stderr, \(behind), which gets the trace lines while recording")
        }
        if let name = process.guestName {
            let log = (libvirtLogDirectory as NSString).appendingPathComponent("\(name).log")
            if regularFile(log) {
                return .follow(path: log, why: "\(cannot) (its stderr is libvirt's pipe to virtlogd): record reads the trace from libvirt's log of the domain, \(log), which gets the trace lines while recording")
            }
        }
        throw KVMScopeError.usage("\(cannot), and its log is not a file record could read instead (\(behind.isEmpty ? "stderr unknown" : behind)): nothing was changed. Start QEMU with -D FILE (a file its user may write), or run record where QEMU's log can be reopened")
    }
}

extension QEMUProcess {
    /// `-name guest=NAME,…` or `-name NAME`: the VM's name (libvirt's domain name).
    var guestName: String? {
        guard let spec = values(of: "name").last else { return nil }
        let first = spec.split(separator: ",", maxSplits: 1).first.map(String.init) ?? spec
        let name = first.hasPrefix("guest=") ? String(first.dropFirst(6)) : first
        return name.isEmpty || name.contains("/") ? nil : name
    }
}
