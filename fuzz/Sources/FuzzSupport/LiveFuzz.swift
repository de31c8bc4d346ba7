import Foundation
import KVMScope

/// What a QEMU monitor peer can send record: the greeting, replies and events, through the real
/// socket client (QMPSocketMonitor over a socketpair that the peer closes after its bytes).
/// The only outcomes are a monitor or a QMPError, never "taken" for a peer that closed; no
/// crash, no hang.
public enum QMPMonitorFuzz {
    public static func run(_ bytes: [UInt8]) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { return }
        defer { close(fds[1]) }
        // The peer's bytes, then end of stream (at most what the socket buffer takes at once).
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { send(fds[1], $0.baseAddress, min($0.count, 1 << 16), Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            off += n
        }
        shutdown(fds[1], Int32(SHUT_WR))
        do {
            let m = try QMPSocketMonitor(connectedDescriptor: fds[0], address: "fuzz", greetingTimeout: 0.2)
            FuzzCheck.require(!m.qemuVersion.isEmpty, "monitor: empty version")
            for command in ["query-status", "trace-event-get-state", "human-monitor-command"] {
                do { _ = try m.execute(command, arguments: nil, timeout: 0.2) } catch is QMPError { break }
            }
            while let events = try? m.takeEvents(waiting: 0), !events.isEmpty {
                for e in events { FuzzCheck.require(e.eventName != nil, "monitor: an event without a name") }
            }
            m.close()
        } catch let e as QMPError {
            // A peer that closed at once is no monitor held by someone else.
            if case .monitorTaken = e { FuzzCheck.require(false, "a closed peer was called a taken monitor") }
            _ = e.description
        } catch {
            FuzzCheck.require(false, "monitor: an error that is not a QMPError: \(error)")
        }
    }
}

/// What a capture directory gives explain and record: capture.json (refused with one line or
/// read, never naming a file outside its directory), a /dev/kmsg record (as dmesg-iso, which
/// the host reader reads back), a libvirt per-domain log's runs.
public enum CaptureFuzz {
    public static func run(_ bytes: [UInt8]) {
        do {
            let m = try CaptureManifest.decode(Data(bytes), path: "fuzz/capture.json")
            for n in m.files.trace + [m.files.qmpEvents] { FuzzCheck.require(!n.contains("/"), "manifest: a path out of the capture: \(n)") }
        } catch let e as KVMScopeError {
            guard case .unsupportedFormat = e else { FuzzCheck.require(false, "manifest: unexpected error \(e)"); return }
        } catch {
            FuzzCheck.require(false, "manifest: an error that is not a KVMScopeError: \(error)")
        }
        if let line = KernelMessageDevice.isoLine(record: ArraySlice(bytes.prefix(8192)), bootMicroseconds: 1_796_083_200_000_000) {
            // Bytes, not Characters: "\r\n" is one Character in Swift.
            FuzzCheck.require(line.utf8.last == 0x0A, "kmsg: a line without its newline")
            FuzzCheck.require(line.utf8.filter { $0 == 0x0A || $0 == 0x0D }.count == 1, "kmsg: a record became several lines")
        }
        do {
            let starts = try LibvirtDomainLog.starts(in: MemoryByteSource(bytes, name: "fuzz", maxChunk: 4096))
            FuzzCheck.require(zip(starts, starts.dropFirst()).allSatisfy { $0.line < $1.line }, "libvirt log: starts out of order")
        } catch {
            FuzzCheck.require(false, "libvirt log: threw on a memory stream: \(error)")
        }
    }
}
