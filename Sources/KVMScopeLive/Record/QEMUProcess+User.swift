import Foundation

extension QEMUProcess {
    /// The user QEMU runs as (the real uid of /proc/PID/status's `Uid:` line; proc(5)), for the
    /// owner of the staging files QEMU must open: libvirt runs QEMU as its own user
    /// (libvirt-qemu on Debian), and over libvirt there is no socket peer to ask.
    public func userID(procRoot: String = "/proc") -> UInt32? {
        guard let pid, let data = FileManager.default.contents(atPath: "\(procRoot)/\(pid)/status"), data.count < 1 << 16 else { return nil }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix("Uid:") {
            return line.dropFirst(4).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { UInt32($0) }
        }
        return nil
    }
}
