import Foundation
import KVMScopeCore

/// The host kernel's log as it is written, from /dev/kmsg, turned into the lines
/// `dmesg --time-format iso` prints — the format `kvmscope host` and `explain --host-log` read
/// with wall-clock stamps, so the host layer ties to QEMU's clock without estimating.
///
/// Each read(2) of /dev/kmsg returns one record `PRIO,SEQ,USEC,FLAGS[,…];TEXT\n` followed by
/// ` KEY=VALUE` continuation lines (Documentation/ABI/testing/dev-kmsg); USEC is the
/// printk clock, which dmesg converts with the boot time (REALTIME − BOOTTIME), as here.
/// EPIPE means records were overwritten before they were read: counted, reading goes on.
public final class KernelMessageDevice {
    public let path: String
    private var fd: Int32
    private var bootMicroseconds: Int64
    /// The text and write time of the last mark, until its record is read back.
    private var pendingMark: (text: String, wallMicroseconds: Int64)?
    /// True once a mark's record gave the exact printk → wall-clock offset.
    public private(set) var calibrated = false
    public private(set) var records = 0
    public private(set) var lostRecordRuns = 0
    /// Keep only the kernel's own records (facility 0, LOG_KERN), as `watch --host-kernel`
    /// does: anything in user space that may write /dev/kmsg (systemd, a root shell's `echo`)
    /// gets another facility (devkmsg_write in kernel/printk/printk.c makes it LOG_USER when
    /// none is given, and refuses to make it LOG_KERN), so such a line cannot pass as a
    /// kernel error. Off by default: `record` keeps every line, as `dmesg` shows them.
    public var kernelOnly = false
    /// Records left out by `kernelOnly`.
    public private(set) var userRecordsSkipped = 0

    /// Opens the device positioned after the last record: only messages from now on.
    public init(path: String = "/dev/kmsg", fromNow: Bool = true) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            throw KVMScopeError.cannotOpen(path: path, reason: KVMScopeError.systemMessage(e)
                + (e == EACCES || e == EPERM ? " (needs root or CAP_SYSLOG; kernel.dmesg_restrict)" : ""))
        }
        if fromNow { lseek(fd, 0, SEEK_END) }
        var real = timespec(), boot = timespec()
        clock_gettime(CLOCK_REALTIME, &real)
        clock_gettime(CLOCK_BOOTTIME, &boot)
        bootMicroseconds = (Int64(real.tv_sec) - Int64(boot.tv_sec)) * 1_000_000 + (Int64(real.tv_nsec) - Int64(boot.tv_nsec)) / 1000
    }

    deinit { if fd >= 0 { close(fd) } }

    public var pollDescriptor: Int32 { fd }

    /// Writes a line into the kernel log (as `logger -k`/systemd do through /dev/kmsg), so the
    /// captured log shows by its own stamps from when to when it was recorded: a silent log
    /// then says "nothing happened here", not "not looked at". Root only; false if refused.
    @discardableResult
    public func mark(_ text: String) -> Bool {
        let w = open(path, O_WRONLY | O_CLOEXEC)
        guard w >= 0 else { return false }
        defer { close(w) }
        let line = Array(("<14>" + text + "\n").utf8)   // facility user, level info
        var before = timespec(); clock_gettime(CLOCK_REALTIME, &before)
        guard line.withUnsafeBytes({ write(w, $0.baseAddress, $0.count) }) == line.count else { return false }
        var after = timespec(); clock_gettime(CLOCK_REALTIME, &after)
        let mid = (Int64(before.tv_sec) + Int64(after.tv_sec)) * 500_000 + (Int64(before.tv_nsec) + Int64(after.tv_nsec)) / 2000
        if !calibrated { pendingMark = (text, mid) }
        return true
    }

    /// Every record waiting now, as dmesg-iso lines (each ending in a newline); never blocks.
    public func readAvailable(limit: Int = 4096) -> [String] {
        var out: [String] = []
        var buf = [UInt8](repeating: 0, count: 8192)   // a record is at most 8 KiB (CONSOLE_EXT_LOG_MAX... printk.c)
        while out.count < limit {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EPIPE { lostRecordRuns += 1; continue }
                break   // EAGAIN: nothing more now
            }
            if n == 0 { break }
            // Our own mark: printk stamped it while write(2) ran, so its stamp and the wall
            // time of the write give the offset exactly (dmesg's boot-time estimate drifts:
            // printk's clock is not the one CLOCK_BOOTTIME reads).
            if let mark = pendingMark, let r = Self.fields(buf[..<n]), r.text == mark.text {
                bootMicroseconds = mark.wallMicroseconds - r.usec
                calibrated = true
                pendingMark = nil
            }
            if kernelOnly, let facility = Self.facility(buf[..<n]), facility != 0 { userRecordsSkipped += 1; continue }
            if let line = Self.isoLine(record: buf[..<n], bootMicroseconds: bootMicroseconds) { out.append(line); records += 1 }
        }
        return out
    }

    /// `6,339,5140900,-;text` → `2026-12-01T16:50:00,123456+00:00 text\n` (UTC). Records of
    /// every facility are kept, as plain `dmesg` prints them (user space's /dev/kmsg lines,
    /// the recorder's own begin/end marks among them); nil for what is not a record.
    /// A record's printk stamp and its first line of text.
    /// The syslog facility of a record: its PRIO field is `facility << 3 | level`
    /// (Documentation/ABI/testing/dev-kmsg); nil when the record has no readable one.
    static func facility(_ record: ArraySlice<UInt8>) -> Int? {
        guard let comma = record.firstIndex(of: UInt8(ascii: ",")), comma - record.startIndex <= 10,
              let prio = Int(String(decoding: record[..<comma], as: UTF8.self)), prio >= 0 else { return nil }
        return prio >> 3
    }

    static func fields(_ record: ArraySlice<UInt8>) -> (usec: Int64, text: String)? {
        guard let semi = record.firstIndex(of: UInt8(ascii: ";")) else { return nil }
        let fields = record[..<semi].split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
        guard fields.count >= 3, let prio = Int(String(decoding: fields[0], as: UTF8.self)), prio >= 0,
              let usec = Int64(String(decoding: fields[2], as: UTF8.self)), usec >= 0, usec < 1 << 53 else { return nil }
        var textEnd = record.endIndex
        if let nl = record[(semi + 1)...].firstIndex(of: 0x0A) { textEnd = nl }
        // The kernel escapes control bytes in /dev/kmsg text as \xNN (printk.c msg_print_ext_body);
        // escape any that come anyway, so one record is always one line.
        var text: [UInt8] = []
        for b in record[(semi + 1)..<textEnd] {
            if b < 0x20 && b != 0x09 || b == 0x7F { text += Array(String(format: "\\x%02x", b).utf8) } else { text.append(b) }
        }
        return (usec, String(decoding: text, as: UTF8.self))
    }

    public static func isoLine(record: ArraySlice<UInt8>, bootMicroseconds: Int64) -> String? {
        guard let (usec, text) = fields(record) else { return nil }
        let t = bootMicroseconds + usec
        var secs = time_t(t / 1_000_000)
        let micros = Int(t % 1_000_000)
        var tm = tm()
        gmtime_r(&secs, &tm)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d,%06d+00:00 ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                      tm.tm_hour, tm.tm_min, tm.tm_sec, micros) + text + "\n"
    }
}
