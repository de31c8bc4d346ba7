import Foundation
import KVMScopeQMP
import KVMScopeTrace
import KVMScopeGuestLog
import KVMScopeHost

/// The evidence lines, the next steps and the notes on missing inputs.
extension ExplainStory {
    /// One line per match: guest line ↔ host request ↔ QMP event.
    func evidence() -> [String] {
        var lines: [String] = []
        for m in matches {
            let g = guestErrors[m.guest]
            let boot = bootClocks.isMultiBoot ? guestBoots[m.guest].map { " boot \($0)" } ?? "" : ""
            // The guest's own stamp: its uptime, or its wall clock as the log printed it
            // (guestErrors[].uptime holds that wall clock in epoch seconds, for matching only).
            let stamp = guestClock == .uptime ? g.uptime.map { String(format: " [%.6f]", $0) } : guestWallClock[m.guest].map { " [\($0)]" }
            var l = "guest line \(g.line)\(boot)" + (stamp ?? "")
                + " \(g.device) sector \(g.sector) \(g.operation?.rawValue ?? "(operation not logged)")"
            if let h = m.host {
                let f = failures[h]
                l += "  ↔  host " + (f.time.map(Self.clock) ?? "") + " \(f.operation.rawValue)"
                if let s = f.sector { l += " sector \(s)" + (f.sectors.map { "+\($0)" } ?? "") }
                if let e = f.errnoName { l += " \(e)" }
                l += " → guest \(f.guestStatus ?? "no answer") [\(f.cause.rawValue)]"
            }
            if let q = m.qmp, let e = qmp?.ioErrors[q] {
                l += "  ↔  QMP line \(e.line) BLOCK_IO_ERROR \(e.operation) \(e.action) \"\(e.reason ?? "")\""
            }
            lines.append(l)
        }
        lines += hostLayerEvidence()
        for p in qmp?.pauses ?? [] {
            lines.append("QMP line \(p.stopLine): VM paused (\(p.operation) error, \(p.reason ?? "no reason given"))"
                + (p.seconds.map { String(format: " for %.3f s", $0) } ?? ", still paused at the end")
                + (p.retrySucceeded.map { $0 ? "; retry succeeded" : "; retry failed again" } ?? ""))
        }
        return lines
    }

    /// The UTC day of a host-clock time, "2026-11-22" (nil past what a Date holds).
    static func day(_ t: Double) -> String? {
        guard t.isFinite, abs(t) < 2.5e11 else { return nil }
        return UTCDateFormat.string(.day, Date(timeIntervalSince1970: t))
    }

    /// A span of host-clock times with its date, for a reader who compares it with other logs:
    /// "2026-11-22 11:17:05.123456–11:17:23.000000", the end's date too when the span crosses a
    /// UTC midnight ("from … to …" with `joiner: " to "`).
    static func span(_ a: Double, _ b: Double, joiner: String = "–") -> String {
        let (da, db) = (day(a), day(b))
        let start = da.map { "\($0) \(clock(a))" } ?? clock(a)
        let end = db != nil && db != da ? "\(db!) \(clock(b))" : clock(b)
        return start + joiner + end
    }

    static func clock(_ t: Double) -> String {
        // Round to the microsecond the trace printed (a Double can hold 0.754735999...).
        // Readers keep times within year 9999, but a guest uptime plus a clock offset is
        // computed: anything no Int64 of microseconds holds is printed as plain seconds.
        let micros = (t * 1_000_000).rounded()
        guard micros.isFinite, abs(micros) < 9.2e18 else { return String(format: "%.6f s", t) }
        let totalMicros = Int64(micros)
        let seconds = Double(totalMicros / 1_000_000)
        return UTCDateFormat.string(.time, Date(timeIntervalSince1970: seconds)) + String(format: ".%06lld", totalMicros % 1_000_000)
    }

    /// What to look at next, most useful first.
    func nextSteps() -> [String] {
        var steps: [String] = []
        let errnos = Set(backendFailures.compactMap(\.errnoName) + (qmp?.ioErrors.compactMap(\.errnoName) ?? []))
        switch origin {
        case .hostStorage:
            if errnos.contains("ENOSPC") || errnos.contains("EDQUOT") {
                let resume: String
                switch vmPausedAtEnd {
                case true?: resume = "; then resume the VM, which is still paused (`virsh resume VM` or QMP `{\"execute\": \"cont\"}`): QEMU retries the failed request"
                case false?: resume = ""
                case nil: resume = "; if the VM is paused (`virsh domstate VM --reason`), resume it afterwards (`virsh resume VM` or QMP `cont`)"
                }
                steps.append("Free space where the image lives: `df -h` on the host filesystem (and quotas), `qemu-img info IMAGE` for its allocation\(resume).")
            }
            if let step = hostLogRateLimitedStep() { steps.append(step) }
            if let nbd = host?.backend.nbd, host?.backend.kind == "nbd" {
                steps.append(nbdStep(nbd))
            } else if nbdServedDisk != nil {
                // The command line says the failing drive is an NBD client: the host's disks are
                // the server's business, wherever it runs.
                steps.append(nbdStep(nil))
            } else if errnos.contains("EIO") || errnos.isEmpty {
                if let h = host, h.backend.kind == "unknown", disks == nil {
                    steps.append("The inputs do not show what serves the disk (the trace has no `nbd_*`, `qcow2_*` or `file_*` events and no QEMU command line was given): find the drive's backend first (`virsh domblklist VM`, `--qemu-cmdline /proc/PID/cmdline`); if it is a network disk (NBD, iSCSI, Ceph), its server comes before the host's disks.")
                }
                if let step = hostLayerStep(image: disks?.disks.compactMap(\.file).first) {
                    steps.append(step)
                } else if hostKernel == nil {
                    steps.append("Look under the image: the host's own kernel log (`dmesg --time-format iso` on the host; give it to explain with --host-log), the disk's health (`smartctl -a`), RAID/SAN/NFS status; for qcow2 images `qemu-img check IMAGE`.")
                } else {
                    steps.append("Look under the image: the disk's health (`smartctl -a`), RAID/SAN/NFS status, `findmnt -T IMAGE` for the filesystem that holds it; for qcow2 images `qemu-img check IMAGE`.")
                }
            }
            let unusual = errnos.subtracting(["EIO", "ENOSPC", "EDQUOT"]).sorted()
            if !unusual.isEmpty {
                steps.append("\(unusual.joined(separator: "/")) is not what a local disk returns: it comes from a network or special block driver (NBD, RBD, iSCSI, gluster) or from an injected fault (blkdebug, `kvmscope nbd serve`). Check that layer's logs.")
            }
            if failures.contains(where: { $0.cause == .backendError && $0.guestStatus == "IOERR" }) || (host == nil && (qmp?.ioErrors.contains { $0.action == .report } ?? false)) {
                steps.append("To keep the guest from seeing such errors while you investigate, set `werror=stop,rerror=stop` on the drive (libvirt: `<driver ... error_policy='stop' rerror_policy='stop'/>`): QEMU then pauses the VM instead of failing the request, and `cont` retries it.")
            }
        case .qemuRejected:
            steps.append("Compare the disk size and block size the guest sees (`blockdev --getsize64 --getss /dev/vdX` in the guest) with the image (`qemu-img info IMAGE`) and the device's logical_block_size/physical_block_size properties.")
        case .guestInternal:
            if !guestErrors.isEmpty {
                steps.append("Look inside the guest: device-mapper, md or dm-crypt layers above the disk (`lsblk`, `dmsetup table`), I/O timeouts (`/sys/block/\(guestErrors[0].device)/queue/io_timeout`), and the guest kernel's own messages around the errors.")
            }
        case .notCovered:
            for c in coverage where !c.covered {
                for r in c.toCover { steps.append("To see the host side of \(c.guestDevice): \(r).") }
            }
        case .unknown:
            break
        }
        for d in guest?.devices ?? [] {
            for fs in d.filesystems where fs.errors > 0 || fs.readOnly || fs.journalAborted || fs.shutdown {
                let check = fs.type == "xfs" ? "`xfs_repair -n /dev/\(fs.device)` first (no changes), then `xfs_repair`"
                    : fs.type == "btrfs" ? "`btrfs check --readonly /dev/\(fs.device)` (and `btrfs scrub` when mounted)"
                    : "`e2fsck -fn /dev/\(fs.device)` first (no changes), then `e2fsck -f`"
                let whereText = fs.corruptionReports > 0 ? " (damaged: \(Self.corruptionWhere(fs)))"
                    : fs.errorFunctions.isEmpty ? "" : " (the kernel's checks failed in \(fs.errorFunctions.keys.sorted().prefix(4).joined(separator: ", ")))"
                switch origin {
                case .hostStorage:
                    steps.append("After the host side is fixed: unmount the filesystem on \(fs.device) in the guest and check it with \(check), then remount it read-write; data of lost writes must come back from the applications or backups.")
                case .guestInternal:
                    steps.append("Before repairing \(fs.type) on \(fs.device)\(whereText): keep a copy of the disk image as it is (shut the VM down or pause it, then `qemu-img convert -O qcow2 IMAGE copy.qcow2`, or take a snapshot) so the repair can be undone and the corruption studied; then check it with \(check) from the guest with the filesystem unmounted (or from a rescue system).")
                default:
                    steps.append("The filesystem on \(fs.device) needs checking once the cause is known: unmount it and run \(check) (keep a copy of the image first: a repair cannot be undone).")
                }
            }
        }
        return steps
    }

    /// The disk is an NBD export: the server and the network, not a local disk, come first.
    /// The failing drive, when QEMU's command line shows it is an NBD client: the only drive, or
    /// the one QMP's BLOCK_IO_ERRORs name.
    var nbdServedDisk: QEMUDiskConfig? {
        guard let disks else { return nil }
        let named = Set(qmp?.ioErrors.flatMap { [$0.device, $0.nodeName ?? ""] }.filter { !$0.isEmpty } ?? [])
        let failing = disks.disks.count == 1 ? disks.disks : disks.disks.filter { !Set($0.names).isDisjoint(with: named) }
        guard failing.count == 1, failing[0].drivers.contains("nbd") else { return nil }
        return failing[0]
    }

    func nbdStep(_ nbd: NbdClientAccount?) -> String {
        let fromCommandLine = disks?.disks.first { $0.drivers.contains("nbd") }
        let address = nbd?.server ?? fromCommandLine?.server
        let server = address.map { "the NBD server at \($0)" } ?? "the NBD server (its address is in QEMU's command line: `-blockdev driver=nbd,server.host=…` or libvirt's `<source protocol='nbd'>`)"
        var t = "The disk is served by \(server)\((nbd?.export ?? fromCommandLine?.export).map { ", export \($0)" } ?? ""): check that the server process is running and reachable from the host (`nbdinfo nbd://HOST:PORT/EXPORT`), and its own log; an error it returned came from its own storage, which the host's kernel log and disks show only when the server runs on this host"
        if let nbd, nbd.reconnectAttempts > 0 {
            t += "; QEMU reconnects by itself while `reconnect-delay` lasts, and requests fail with EIO after it"
        }
        return t + "."
    }

    /// What each input that was not given would have added, and how to get it.
    func missing() -> [String] {
        var m: [String] = []
        if host == nil {
            // The buses of the guest's troubled disks (virtio-blk when it names none), and the
            // backend's events: TraceCoverage is the one list of what each analysis needs.
            var buses: [TraceBus] = []
            for c in coverage { if let b = TraceBusEvents.traceBus(c.bus), !buses.contains(b) { buses.append(b) } }
            if buses.isEmpty { buses = [.virtioBlk] }
            let options = TraceCoverage.qemuOptions(for: buses, backend: true)
            let hmp = TraceCoverage.hmpCommands(for: buses, backend: true).map { "'\($0)'" }.joined(separator: ", ")
            m.append("A QEMU trace would show the host errno behind each guest error and which layer failed. Start QEMU with `\(options) -D /var/log/qemu-trace.log -msg timestamp=on`, or turn the events on in a running VM with `virsh qemu-monitor-command VM --hmp` and each of \(hmp) (QMP: `trace-event-set-state`); the log backend writes to QEMU's stderr (under libvirt: /var/log/libvirt/qemu/VM.log).")
        }
        if qmp == nil && !qmpSetAside {
            m.append("QMP events would show every host I/O error with its errno text (BLOCK_IO_ERROR) and every pause it caused: `virsh qemu-monitor-event VM --loop --pretty --timestamp > qmp-events.log`, or QEMU's `-qmp unix:/run/qmp.sock,server=on,wait=off` with any QMP client.")
        }
        if hostKernel == nil && origin == .hostStorage {
            m.append("The host's kernel log would show whether a host device failed below QEMU at that moment (the disk, loop device, multipath map or filesystem holding the image): `dmesg --time-format iso > host-dmesg.log` (or `journalctl -k -o short-iso-precise`) on the host, given with --host-log.")
        }
        if guest == nil {
            m.append("The guest's kernel log would show what the guest made of it (which requests failed, lost writes, filesystems going read-only): `dmesg -T` or `journalctl -k -b` in the guest, or its serial console.")
        }
        return m
    }
}
