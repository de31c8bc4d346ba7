import KVMScopeGuestLog

/// A host matcher's verdict on one kernel message.
enum HostMatch {
    case noMatch
    case event(HostKernelEvent)
    /// Starts like one of these messages but its fields cannot be read: skipped and counted.
    case malformed
}

/// The messages only a host prints (its storage stack below QEMU), picked by the message's
/// first byte so that ordinary lines cost one switch. The messages a guest prints too (block
/// errors, buffer errors, ext4/XFS, SCSI results) are left to the guest log's matchers
/// (GuestLogMatchers), which HostKernelLogReader asks next. Formats are Linux 6.1's; each
/// matcher names its source file.
enum HostKernelMatchers {
    static func match(_ ctx: MatchContext) -> HostMatch {
        let line = ctx.line
        var s = ctx.start
        guard s < line.count else { return .noMatch }
        switch line[s] {
        case UInt8(ascii: "I"): return hungTask(ctx, s)
        case UInt8(ascii: "O"), UInt8(ascii: "M"): return oomKill(ctx, s)
        case UInt8(ascii: "d"): return deviceMapper(ctx, s)
        case UInt8(ascii: "m"): return mdRaid(ctx, s)
        case UInt8(ascii: "l"):
            if line.matches("libceph: ", at: s) { return ceph(ctx, s + 9) }
        case UInt8(ascii: "a"):
            if line.matches("ata", at: s) { return ata(ctx, s) }
        case UInt8(ascii: "B"):
            if line.matches("BTRFS", at: s) { return btrfs(ctx, s) }
        case UInt8(ascii: "E"):
            if line.matches("EXT4-fs (", at: s) { return ext4Extra(ctx, s) }
        case UInt8(ascii: " "), UInt8(ascii: "c"):
            // iSCSI class devices have no driver name, so dev_printk leaves a blank before them.
            if line[s] == 0x20 { s += 1 }
            guard s < line.count else { return .noMatch }
            if line.matches("connection", at: s) || line.matches("session", at: s) { return iscsi(ctx, s) }
        default: break
        }
        if line[s] == UInt8(ascii: "s"), line.matches("session", at: s) { return iscsi(ctx, s) }
        // "NAME: ..." — NVMe (nvme nvme0: / nvme0n1:), NFS (nfs: server ...), capacity changes.
        return named(ctx, s)
    }

    // MARK: - kernel/hung_task.c

    /// `INFO: task %s:%d blocked for more than %ld seconds.` — comm may hold ':' and blanks
    /// (QEMU's `CPU 0/KVM`), so the pid is the number after the last ':' before " blocked".
    static func hungTask(_ ctx: MatchContext, _ s: Int) -> HostMatch {
        let line = ctx.line
        guard line.matches("INFO: task ", at: s) else { return .noMatch }
        guard let blocked = line.find(" blocked for more than ", from: s + 11) else { return .noMatch }
        var colon = blocked - 1
        while colon > s + 11, line[colon] != UInt8(ascii: ":") { colon -= 1 }
        guard colon > s + 11, let (pid, pe) = line.decimal(at: colon + 1), pe == blocked, pid <= UInt64(Int32.max)
        else { return .malformed }
        var f = finding(.hungTask, nil, ctx)
        let comm = line.string((s + 11)..<colon)
        f.process = comm
        f.pid = Int(pid)
        f.isQEMU = isQEMU(comm)
        return .event(.finding(f))
    }

    // MARK: - mm/oom_kill.c

    /// `%s: Killed process %d (%s) total-vm:%lukB, ...` with `Out of memory` or `Memory cgroup
    /// out of memory`; ≤4.x printed `Out of memory: Kill process %d (%s) score %u or sacrifice child`.
    static func oomKill(_ ctx: MatchContext, _ s: Int) -> HostMatch {
        let line = ctx.line
        let after: Int
        if line.matches("Out of memory: ", at: s) { after = s + 15 }
        else if line.matches("Memory cgroup out of memory: ", at: s) { after = s + 29 }
        else { return .noMatch }
        let pidAt: Int
        if line.matches("Killed process ", at: after) { pidAt = after + 15 }
        else if line.matches("Kill process ", at: after) { pidAt = after + 13 }
        else { return .noMatch }
        guard let (pid, pe) = line.decimal(at: pidAt), pid <= UInt64(Int32.max), line.matches(" (", at: pe)
        else { return .malformed }
        // comm ends at the ") " before the statistics (comm itself may hold ')').
        var close: Int? = nil
        if let t = line.find(") total-vm:", from: pe + 2) { close = t }
        else if let t = line.find(") score ", from: pe + 2) { close = t }
        else if line.count > pe + 2, line[line.count - 1] == UInt8(ascii: ")") { close = line.count - 1 }
        guard let c = close, c > pe + 2, c - (pe + 2) <= 64 else { return .malformed }
        var f = finding(.oomKill, nil, ctx)
        let comm = line.string((pe + 2)..<c)
        f.process = comm
        f.pid = Int(pid)
        f.isQEMU = isQEMU(comm)
        return .event(.finding(f))
    }

    /// QEMU's process name (comm is cut to 15 bytes: `qemu-system-x86`) or a QEMU vCPU thread.
    static func isQEMU(_ comm: String) -> Bool {
        if comm.hasPrefix("qemu-system-") || comm.hasPrefix("qemu-kvm") { return true }
        // -name debug-threads=on (libvirt sets it): "CPU 0/KVM", "CPU 3/TCG".
        guard comm.hasPrefix("CPU "), let slash = comm.firstIndex(of: "/") else { return false }
        let n = comm[comm.index(comm.startIndex, offsetBy: 4)..<slash]
        let accel = comm[comm.index(after: slash)...]
        return !n.isEmpty && n.allSatisfy(\.isNumber) && (accel == "KVM" || accel == "TCG")
    }

    // MARK: - drivers/md/dm-*.c ("device-mapper: <target>: " is DMERR/DMWARN/DMINFO's prefix)

    static func deviceMapper(_ ctx: MatchContext, _ s: Int) -> HostMatch {
        let line = ctx.line
        guard line.matches("device-mapper: ", at: s) else { return .noMatch }
        let t = s + 15
        if line.matches("multipath: ", at: t) {
            let m = t + 11
            // dm-mpath.c fail_path: DMWARN("%s: Failing path %s.", dm_table_device_name(...), p->path.dev->name)
            if let fp = line.find(": Failing path ", from: m) {
                let map = line.string(m..<fp)
                var end = line.count
                if end > fp + 15, line[end - 1] == UInt8(ascii: ".") { end -= 1 }
                guard end > fp + 15 else { return .malformed }
                var f = finding(.multipathFailingPath, map, ctx)
                f.peer = nil
                f.status = "failing path " + line.string((fp + 15)..<end)
                return .event(.finding(f))
            }
            // queue_if_no_path_timeout_work: DMWARN("queue_if_no_path timeout on %s, failing queued IO", ...)
            if line.matches("queue_if_no_path timeout on ", at: m) {
                let dev = line.token(at: m + 28, stop: UInt8(ascii: ","))
                var f = finding(.multipathQueueTimeout, dev.isEmpty ? nil : line.string(dev), ctx)
                f.errno = "EIO"
                return .event(.finding(f))
            }
            return .noMatch
        }
        if line.matches("thin: ", at: t) {
            let m = t + 6
            // notify_of_pool_mode_change: DMINFO("%s: switching pool to %s%s mode", dev, descs[mode], extra)
            if let sw = line.find(": switching pool to out-of-data-space", from: m) {
                var f = finding(.thinPoolOutOfSpace, line.string(m..<sw), ctx)
                f.status = "out of data space"
                f.errno = line.find("(error IO)", from: sw) != nil ? "ENOSPC" : nil
                return .event(.finding(f))
            }
            return .noMatch
        }
        if line.matches("crypt: ", at: t) {
            // dm-crypt.c: DMERR_LIMIT("%pg: INTEGRITY AEAD ERROR, sector %llu", ...), "%pg: Checksum ...",
            // DMERR("Failed to ..."): a message naming an error or failure.
            let m = t + 7
            guard line.find("ERROR", from: m) != nil || line.find("error", from: m) != nil
                    || line.find("Failed", from: m) != nil || line.find("failed", from: m) != nil else { return .noMatch }
            var dev: String? = nil
            let name = line.token(at: m, stop: UInt8(ascii: ":"))
            if !name.isEmpty, line.matches(": ", at: name.upperBound), name.count <= 32 { dev = line.string(name) }
            var f = finding(.dmCryptError, dev, ctx)
            if let sec = line.find(", sector ", from: m), let (v, _) = line.decimal(at: sec + 9) { f.sector = v }
            return .event(.finding(f))
        }
        return .noMatch
    }

    // MARK: - drivers/md/raid{1,10,5}.c

    /// `md/raid1:%s: Disk failure on %pg, disabling device.` (raid10: `md/raid10:`, raid5: `md/raid:`).
    static func mdRaid(_ ctx: MatchContext, _ s: Int) -> HostMatch {
        let line = ctx.line
        guard line.matches("md/raid", at: s), let c = line.find(byte: UInt8(ascii: ":"), in: (s + 7)..<(s + 12))
        else { return .noMatch }
        guard let df = line.find(": Disk failure on ", from: c + 1) else { return .noMatch }
        let member = line.token(at: df + 18, stop: UInt8(ascii: ","))
        guard !member.isEmpty, line.matches(", disabling device", at: member.upperBound) else { return .malformed }
        var f = finding(.mdMemberFailed, line.string((c + 1)..<df), ctx)
        f.status = "member " + line.string(member) + " failed"
        return .event(.finding(f))
    }

    // MARK: - net/ceph/messenger.c, mon_client.c

    /// `libceph: %s%lld %s %s` — entity (`osd3`, `mon0`), address (`(1)10.0.0.3:6800`), then
    /// con->error_msg: `socket closed (con state OPEN)`, `socket error on write`, `connect error`, ...
    static func ceph(_ ctx: MatchContext, _ at: Int) -> HostMatch {
        let line = ctx.line
        let entity = line.token(at: at)
        guard !entity.isEmpty, entity.upperBound < line.count else { return .noMatch }
        let addr = line.token(at: entity.upperBound + 1)
        guard !addr.isEmpty, addr.upperBound < line.count else { return .noMatch }
        let rest = addr.upperBound + 1
        let failed = line.matches("socket ", at: rest) || line.matches("connect error", at: rest)
            || line.matches("session lost", at: rest) || line.matches("bad crc", at: rest)
            || line.find(" error", from: rest) != nil
        guard failed else { return .noMatch }
        var f = finding(.cephSocketError, line.string(entity), ctx)
        f.peer = line.string(entity) + " " + line.string(addr)
        f.status = line.string(from: rest)
        return .event(.finding(f))
    }

    // MARK: - drivers/ata/libata-eh.c (ata_dev_printk: "ata%u.%02u: ", ata_link_printk: "ata%u: ")

    static func ata(_ ctx: MatchContext, _ s: Int) -> HostMatch {
        let line = ctx.line
        guard let (_, e) = line.decimal(at: s + 3) else { return .noMatch }
        var i = e
        if line.matches(".", at: i), let (_, e2) = line.decimal(at: i + 1) { i = e2 }
        guard line.matches(": ", at: i) else { return .noMatch }
        let port = line.string(s..<i)
        let m = i + 2
        if line.matches("exception Emask ", at: m) {
            var f = finding(.ataError, port, ctx)
            f.status = line.string(from: m)
            return .event(.finding(f))
        }
        if line.matches("failed command: ", at: m) {
            var f = finding(.ataError, port, ctx)
            f.operation = line.string(from: m + 16)
            return .event(.finding(f))
        }
        // ata_eh_link_report: "error: { UNC }", "error: { ICRC ABRT }"
        if line.matches("error: { ", at: m) {
            var f = finding(.ataError, port, ctx)
            f.status = line.string(from: m)
            if line.find("UNC", from: m) != nil { f.errno = "EIO" }
            return .event(.finding(f))
        }
        if line.matches("hard resetting link", at: m) || line.matches("soft resetting link", at: m) {
            return .event(.finding(finding(.ataLinkReset, port, ctx)))
        }
        return .noMatch
    }

    // MARK: - fs/btrfs/super.c (6.1: btrfs_printk "BTRFS %s (device %s%s): ", __btrfs_handle_fs_error)

    static func btrfs(_ ctx: MatchContext, _ s: Int) -> HostMatch {
        let line = ctx.line
        var i = s + 5
        var level = ""
        if line.matches(": error (device ", at: i) {
            // "BTRFS: error (device %s%s) in %s:%d: errno=%d %s"
            i += 16
            level = "error"
        } else if line.matches(" ", at: i) {
            let word = line.token(at: i + 1)
            guard !word.isEmpty, line.matches(" (device ", at: word.upperBound) else { return .noMatch }
            level = line.string(word)
            i = word.upperBound + 9
        } else { return .noMatch }
        guard let close = line.find(byte: UInt8(ascii: ")"), in: i..<min(line.count, i + 80)) else { return .malformed }
        // "%s%s": the device, then ": state X" when the filesystem has state bits set.
        var devEnd = close
        if let colon = line.find(byte: UInt8(ascii: ":"), in: i..<close) { devEnd = colon }
        let device = line.string(i..<devEnd)
        let body = close + 1
        if line.find("forced readonly", from: body) != nil {
            return .event(.finding(finding(.filesystemReadOnly, device, ctx)))
        }
        var errnoValue: Int? = nil
        if let eq = line.find("errno=-", from: body), let (v, _) = line.decimal(at: eq + 7), v < 4096 { errnoValue = Int(v) }
        if errnoValue == 28 || (level != "info" && line.find("ENOSPC", from: body) != nil) {
            var f = finding(.filesystemFull, device, ctx)
            f.errno = "ENOSPC"
            return .event(.finding(f))
        }
        guard level == "error" || level == "critical" || level == "crit" || level == "emerg" || level == "alert"
        else { return .noMatch }
        var f = finding(.filesystemError, device, ctx)
        f.status = "BTRFS " + level
        if errnoValue == 5 { f.errno = "EIO" }
        return .event(.finding(f))
    }

    // MARK: - fs/ext4/inode.c (what the guest log's ext4 matcher does not read)

    /// `EXT4-fs (%s): Delayed block allocation failed for inode %lu at logical offset %llu with
    /// max blocks %u with error %d` (mpage_map_and_submit_extent): error 28 is a full filesystem.
    static func ext4Extra(_ ctx: MatchContext, _ s: Int) -> HostMatch {
        let line = ctx.line
        guard let close = line.find(byte: UInt8(ascii: ")"), in: (s + 9)..<min(line.count, s + 50)),
              line.matches("): Delayed block allocation failed", at: close) else { return .noMatch }
        guard let we = line.find(" with error ", from: close), let (err, _) = line.decimal(at: we + 12)
        else { return .malformed }
        var f = finding(err == 28 ? .filesystemFull : .filesystemError, line.string((s + 9)..<close), ctx)
        if err == 28 { f.errno = "ENOSPC" } else if err == 5 { f.errno = "EIO" }
        f.status = "delayed allocation failed, error \(err)"
        return .event(.finding(f))
    }

    // MARK: - drivers/scsi/scsi_transport_iscsi.c (iscsi_cls_conn_printk / iscsi_cls_session_printk)

    static func iscsi(_ ctx: MatchContext, _ s: Int) -> HostMatch {
        let line = ctx.line
        let name = line.token(at: s, stop: UInt8(ascii: " "))
        guard name.count >= 2, line[name.upperBound - 1] == UInt8(ascii: ":") else { return .noMatch }
        let device = line.string(name.lowerBound..<(name.upperBound - 1))
        let m = name.upperBound + 1
        // iscsi_conn_error_event: iscsi_cls_conn_printk(KERN_INFO, conn, "detected conn error (%d)\n", error)
        if line.matches("detected conn error (", at: m) {
            guard let (code, _) = line.decimal(at: m + 21) else { return .malformed }
            var f = finding(.iscsiConnectionError, device, ctx)
            f.status = "conn error \(code)"
            return .event(.finding(f))
        }
        // session_recovery_timedout: "session recovery timed out after %d secs"
        if line.matches("session recovery timed out after ", at: m) {
            var f = finding(.iscsiSessionRecoveryTimeout, device, ctx)
            f.status = line.string(from: m)
            return .event(.finding(f))
        }
        return .noMatch
    }

    // MARK: - "NAME: ..." messages

    static func named(_ ctx: MatchContext, _ s: Int) -> HostMatch {
        let line = ctx.line
        let c = line[s]
        // Every message below starts with a lower-case device or program name.
        guard c >= 0x61 && c <= 0x7A else { return .noMatch }
        // The name may hold one blank ("nvme nvme0": dev_printk's driver and device names).
        guard let colon = line.find(byte: UInt8(ascii: ":"), in: (s + 1)..<(s + 33)),
              line.matches(": ", at: colon) else { return .noMatch }
        let name = s..<colon
        let m = colon + 2
        guard m < line.count else { return .noMatch }
        switch line[m] {
        case UInt8(ascii: "d"):
            // block/genhd.c set_capacity_and_notify: "%s: detected capacity change from %lld to %lld"
            if line.matches("detected capacity change from ", at: m) {
                return .event(.noise(.capacityChange, device: line.string(name), line: ctx.lineNumber))
            }
        case UInt8(ascii: "s"):
            // net/sunrpc/clnt.c: "%s: server %s not responding, still trying" / "timed out", "%s: server %s OK"
            if line.matches("server ", at: m) { return sunrpc(ctx, name, m + 7) }
        case UInt8(ascii: "I"), UInt8(ascii: "c"), UInt8(ascii: "R"), UInt8(ascii: "D"):
            if line.matches("nvme ", at: s) { return nvmeController(ctx, name, m) }
        default:
            break
        }
        if line.matches("nvme", at: s) { return nvmeCommand(ctx, name, m) }
        return .noMatch
    }

    static func sunrpc(_ ctx: MatchContext, _ program: Range<Int>, _ at: Int) -> HostMatch {
        let line = ctx.line
        let server = line.token(at: at)
        guard !server.isEmpty else { return .malformed }
        let m = server.upperBound + 1
        let kind: HostFindingKind
        if line.matches("not responding, ", at: m) { kind = .nfsNotResponding }
        else if line.matches("OK", at: m), m + 2 == line.count { kind = .nfsRecovered }
        else { return .noMatch }
        var f = finding(kind, nil, ctx)
        f.peer = line.string(server)
        f.status = line.string(program) + ": " + line.string(from: m)
        if line.matches("not responding, timed out", at: m) { f.errno = "EIO" }
        return .event(.finding(f))
    }

    /// drivers/nvme/host/pci.c, through dev_warn on the controller: `nvme nvme0: ...`.
    static func nvmeController(_ ctx: MatchContext, _ name: Range<Int>, _ m: Int) -> HostMatch {
        let line = ctx.line
        // "nvme nvme0": driver name, then the controller's device name.
        let ctrl = line.string(name)
        let device = ctrl.hasPrefix("nvme ") ? String(ctrl.dropFirst(5)) : ctrl
        if line.matches("I/O ", at: m) {
            // nvme_timeout: "I/O %d QID %d timeout, aborting" / ", reset controller" (6.1);
            // later kernels: "I/O tag %d (%04x) opcode %#x (%s) QID %d timeout, ..."
            guard let to = line.find(" timeout, ", from: m) else { return .noMatch }
            if line.matches("reset controller", at: to + 10) {
                var f = finding(.nvmeReset, device, ctx)
                f.status = "command timeout, controller reset"
                return .event(.finding(f))
            }
            if line.matches("aborting", at: to + 10) || line.matches("completion polled", at: to + 10) {
                var f = finding(.nvmeTimeout, device, ctx)
                f.status = line.string(m..<to) + " timeout"
                return .event(.finding(f))
            }
            return .noMatch
        }
        // nvme_timeout / nvme_reset_work: "controller is down; will reset: CSTS=0x%x, PCI_STATUS=0x%hx"
        if line.matches("controller is down; will reset", at: m) {
            var f = finding(.nvmeReset, device, ctx)
            f.status = line.string(from: m)
            return .event(.finding(f))
        }
        // nvme_remove_dead_ctrl: "Removing after probe failure status: %d"
        if line.matches("Removing after probe failure", at: m) || line.matches("Device not ready; aborting reset", at: m)
            || line.matches("Disabling device after reset failure", at: m) {
            var f = finding(.nvmeReset, device, ctx)
            f.status = line.string(from: m)
            f.errno = "ENODEV"
            return .event(.finding(f))
        }
        return .noMatch
    }

    /// drivers/nvme/host/core.c nvme_log_error (6.1):
    /// `%s: %s(0x%x) @ LBA %llu, %llu blocks, %s (sct 0x%x / sc 0x%x) %s%s` — the disk, the
    /// opcode's name (`Read`, `Write`; `I/O Cmd` without CONFIG_NVME_VERBOSE_ERRORS), the LBA in
    /// the namespace's blocks, the status words, `MORE`/`DNR`.
    static func nvmeCommand(_ ctx: MatchContext, _ name: Range<Int>, _ m: Int) -> HostMatch {
        let line = ctx.line
        guard let at = line.find("(0x", from: m), at - m <= 40, let (_, he) = line.hex(at: at + 1),
              line.matches(") @ LBA ", at: he) else { return .noMatch }
        guard let (lba, le) = line.decimal(at: he + 8), line.matches(", ", at: le),
              let (_, be) = line.decimal(at: le + 2), line.matches(" blocks, ", at: be),
              let sct = line.find(" (sct 0x", from: be + 9) else { return .malformed }
        var f = finding(.nvmeCommandError, line.string(name), ctx)
        f.operation = line.string(m..<at)
        f.sector = lba
        f.sectorIsLBA = true
        var end = line.count
        while end > sct, line[end - 1] == 0x20 { end -= 1 }
        f.status = line.string((be + 9)..<sct) + line.string(sct..<end)
        return .event(.finding(f))
    }

    // MARK: - pieces

    @inline(__always)
    static func finding(_ kind: HostFindingKind, _ device: String?, _ ctx: MatchContext) -> HostKernelFinding {
        // The message is filled in by the reader, only when its sink keeps it.
        HostKernelFinding(kind: kind, device: device, time: ctx.time, line: ctx.lineNumber, message: "")
    }
}
