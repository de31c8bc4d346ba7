import Foundation

/// `kvmscope guest` output. Text and JSON both come from the same GuestDiskReport.
public enum GuestReportRenderer {
    public static func json(_ report: GuestDiskReport) throws -> String {
        try JSONReport.encode(report)
    }

    /// The human account: one section per device, errors first, healthy disks in one line each.
    /// `topRanges`: how many sector ranges to list per device (the JSON has all of them).
    public static func text(_ report: GuestDiskReport, style: TerminalStyle = .plain, topRanges: Int = 10) -> String {
        var out: [String] = []
        let troubled = report.devices.filter(\.hasErrors)
        let healthy = report.devices.filter { !$0.hasErrors }
        if troubled.isEmpty {
            out.append(style.green("No disk errors in \(report.source).") + " " + inputSummary(report.input))
        } else {
            let names = troubled.map(\.name).joined(separator: ", ")
            out.append(style.bold("Disk errors in \(report.source): \(names)") + " " + inputSummary(report.input))
        }
        if report.input.bootCount > 1 {
            out.append("")
            // Only a log with uptime stamps shows them restart; a wall-clock log's boots are told
            // apart by boot ids, `Linux version` lines and reboot messages.
            let clockNote = report.input.firstUptimeMicroseconds != nil ? " (uptime stamps restart with each)" : ""
            out.append("\(report.input.bootCount) boots in this log\(clockNote):")
            for b in report.input.boots { out.append("  " + bootLine(b)) }
            if report.input.boots.count < report.input.bootCount {
                out.append("  (\(report.input.bootCount - report.input.boots.count) more boots not listed)")
            }
        }
        for d in troubled {
            out.append("")
            out.append(contentsOf: deviceSection(d, report: report, style: style, topRanges: topRanges))
        }
        if !healthy.isEmpty {
            out.append("")
            for d in healthy {
                if let m = d.noMedium {
                    out.append("\(style.bold(d.name)): " + noMediumText(m) + " — not a failure")
                } else {
                    out.append("\(style.bold(d.name)) — \(deviceDescription(d)): no errors")
                }
            }
        }
        if report.suppressed.unattributed > 0 || report.suppressed.other > 0 {
            out.append("")
            var parts: [String] = []
            if report.suppressed.unattributed > 0 {
                parts.append("\(report.suppressed.unattributed) block/buffer messages dropped by the kernel's rate limiter before any message named a device")
            }
            if report.suppressed.other > 0 {
                let others = report.suppressed.byFunction.filter {
                    SuppressedMessagesEvent(function: $0.key, count: 0, location: GuestLogLocation(line: 0)).family == .other
                }.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                parts.append("\(report.suppressed.other) other rate-limited messages (\(others))")
            }
            out.append("Suppressed: " + parts.joined(separator: "; "))
        }
        if report.hungTasks.total > 0 {
            out.append("")
            out.append(contentsOf: hungTaskLines(report.hungTasks, style: style))
        }
        if report.eventsOverDeviceLimit > 0 {
            out.append(style.yellow("\(report.eventsOverDeviceLimit) events about further devices were counted but not analysed (device limit reached)."))
        }
        if let skipped = skippedSummary(report.input) { out.append(""); out.append(style.dim(skipped)) }
        return out.joined(separator: "\n") + "\n"
    }

    // MARK: - device

    static func deviceSection(_ d: GuestDeviceReport, report: GuestDiskReport, style: TerminalStyle, topRanges: Int) -> [String] {
        var out: [String] = ["\(style.bold(d.name)) — \(deviceDescription(d))"]
        if d.totalBlockErrors > 0 {
            let ops = d.operations.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            let opText: String
            if ops.count == 1 {
                opText = ops[0].key == "unreported" ? "operation not printed by this kernel" : "all \(ops[0].key)"
            } else {
                opText = ops.map { "\($0.key == "unreported" ? "not stated" : $0.key) \($0.value)" }.joined(separator: ", ")
            }
            let types = d.errorTypes.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            let typeText: String
            if types.count == 1 {
                let errno = BlockErrorType(text: types[0].key).errnoName.map { " (errno \($0))" } ?? ""
                typeText = "all \"\(types[0].key)\" errors\(errno)"
            } else {
                typeText = types.map { t in
                    "\"\(t.key)\" \(t.value)" + (BlockErrorType(text: t.key).errnoName.map { " (\($0))" } ?? "")
                }.joined(separator: ", ")
            }
            out.append("  " + style.red("\(d.totalBlockErrors) failed request\(d.totalBlockErrors == 1 ? "" : "s")") + ": \(opText); \(typeText)")
            if let first = d.blockErrors.first {
                out.append("    printed by a \(first.shape.kernels) kernel (`\(first.shape.rawValue)` line shape)")
            }
            if let flushes = d.operations["flush"], flushes > 0 {
                out.append("    \(flushes) failed cache flush\(flushes == 1 ? "" : "es"): data fsync() was making durable may not be on the disk, whatever sector the line names")
            }
            out.append(contentsOf: rangeLines(d, topRanges: topRanges))
        }
        if d.totalBufferErrors > 0 {
            out.append(contentsOf: bufferLines(d, style: style))
        }
        for fs in d.filesystems {
            out.append(contentsOf: filesystemLines(fs, style: style))
        }
        if let s = d.scsi, s.hasProblems {
            out.append(contentsOf: scsiLines(s))
            out.append(contentsOf: scsiFailureLines(s))
        }
        if let t = d.timeouts, t.total > 0 {
            out.append(contentsOf: timeoutLines(t, style: style))
        }
        if let m = d.noMedium {
            out.append("  also " + noMediumText(m) + ": not a failure, not counted above")
        }
        if let first = d.firstError, let last = d.lastError {
            out.append(first == last ? "  at \(place(first))" : "  first at \(place(first)), last at \(place(last))")
        }
        if report.input.bootCount > 1, !d.boots.isEmpty {
            out.append("  in boot\(d.boots.count == 1 ? "" : "s") " + d.boots.map(String.init).joined(separator: ", "))
        }
        if d.suppressed > 0 {
            let fns = d.suppressedByFunction.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            out.append("  " + style.yellow("+\(d.suppressed) messages dropped by the kernel's rate limiter") + " (\(fns)): the counts above are lower bounds")
        }
        out.append(contentsOf: notes(d).map { "  " + style.dim("note: " + $0) })
        if d.blockErrors.count < d.totalBlockErrors || d.bufferErrors.count < d.totalBufferErrors {
            out.append("  " + style.dim("(individual errors listed in --json up to \(report.detailLimit) in total; counts and ranges are exact)"))
        }
        return out
    }

    static func deviceDescription(_ d: GuestDeviceReport) -> String {
        var kind: String
        switch d.kind {
        case .partition(let parent): kind = "partition of \(parent)"
        case .deviceMapper: kind = "device-mapper device"
        case .disk:
            if d.capacity?.driver == "virtio_blk" || d.name.hasPrefix("vd") { kind = "virtio disk" }
            else if d.capacity?.driver == "sd" || d.name.hasPrefix("sd") { kind = "SCSI disk" }
            else if d.name.hasPrefix("nvme"), d.name.dropFirst(4).allSatisfy(\.isNumber), d.name.count > 4 {
                kind = "NVMe controller (its namespaces are \(d.name)n1, ...)"
            }
            else { kind = "disk" }
        default: kind = d.kind.label
        }
        if let c = d.capacity, let bytes = c.bytes {
            kind += ", \(formatSize(bytes)) (\(c.logicalBlocks) × \(c.logicalBlockSize)-byte blocks)"
        }
        return kind
    }

    /// `no medium in the drive (2 reads refused: Medium not present)`.
    static func noMediumText(_ m: NoMediumSummary) -> String {
        let what = m.operation.map { $0 == "other" ? "command" : $0 } ?? "command"
        let words = m.additionalSense.map { ": \($0)" } ?? ""
        return "no medium in the drive (\(m.count) \(what)\(m.count == 1 ? "" : "s") refused\(words))"
    }

    static func rangeLines(_ d: GuestDeviceReport, topRanges: Int) -> [String] {
        guard !d.sectorRanges.isEmpty else { return [] }
        var out: [String] = []
        let how = d.sectorRangesCoalesced
            ? "more ranges than kept: neighbours within \(d.sectorMergeGap) sectors merged"
            : "start sectors of failed requests; neighbours within \(d.sectorMergeGap) sectors merged"
        out.append("    sectors (\(how)):")
        let top = d.sectorRanges.sorted { $0.errors != $1.errors ? $0.errors > $1.errors : $0.first < $1.first }.prefix(max(0, topRanges))
        let width = top.map { rangeText($0).count }.max() ?? 0
        for r in top {
            let text = rangeText(r)
            let ops = r.operations.operations.map(\.rawValue).joined(separator: "+")
            out.append("      \(text)\(String(repeating: " ", count: width - text.count))  \(r.errors)×" + (ops.isEmpty ? "" : " \(ops)"))
        }
        if d.sectorRanges.count > top.count {
            out.append("      … and \(d.sectorRanges.count - top.count) more range\(d.sectorRanges.count - top.count == 1 ? "" : "s") (--json lists all)")
        }
        return out
    }

    static func rangeText(_ r: SectorRange) -> String {
        r.first == r.last ? "\(r.first)" : "\(r.first)–\(r.last)"
    }

    static func bufferLines(_ d: GuestDeviceReport, style: TerminalStyle) -> [String] {
        var out: [String] = []
        let l = d.lostBlocks
        var kinds: [String] = []
        if l.syncWrite > 0 { kinds.append("\(l.syncWrite) lost sync write\(l.syncWrite == 1 ? "" : "s")") }
        if l.asyncWrite > 0 {
            let inferred = d.bufferErrors.contains { $0.lossInferred == "ext4-writeback" }
            kinds.append("\(l.asyncWrite) lost async write\(l.asyncWrite == 1 ? "" : "s")\(inferred ? " (ext4 writeback)" : "")")
        }
        if l.write > 0 { kinds.append("\(l.write) lost write\(l.write == 1 ? "" : "s") (sync or async not stated)") }
        if l.asyncRead > 0 { kinds.append("\(l.asyncRead) failed read\(l.asyncRead == 1 ? "" : "s")") }
        if l.unknown > 0 { kinds.append("\(l.unknown) of unstated kind") }
        out.append("  " + style.red("\(d.totalBufferErrors) buffer error\(d.totalBufferErrors == 1 ? "" : "s")") + ": " + kinds.joined(separator: ", "))
        if l.asyncWrite > 0 {
            out.append("    async: the program that wrote this data was probably never told: write() had already returned, and only a later fsync() reports the loss (`sync` without arguments reports nothing)")
        }
        if l.syncWrite > 0 {
            out.append("    sync: the waiting writer (fsync, O_SYNC, the journal) got the error")
        }
        let blocks = d.bufferErrors.compactMap { $0.event.logicalBlock }
        if let lo = blocks.min(), let hi = blocks.max() {
            var line = "    logical block\(lo == hi ? " \(lo)" : "s \(lo)–\(hi)")"
            if let size = d.inferredBlockSize {
                line += " of \(formatSize(UInt64(size))) (block size inferred from a block error at the matching sector)"
            } else {
                line += " (filesystem blocks on \(d.name), size not stated in the log)"
            }
            out.append(line)
        }
        return out
    }

    static func filesystemLines(_ fs: FilesystemReport, style: TerminalStyle) -> [String] {
        var out: [String] = []
        var states: [String] = []
        if fs.journalAborted, let at = fs.journalAbortedAt { states.append("journal aborted at \(place(at))") }
        if fs.readOnly, let at = fs.readOnlyAt { states.append(style.red("remounted read-only") + " at \(place(at))") }
        if fs.shutdown, let at = fs.shutdownAt { states.append(style.red("shut down") + " at \(place(at))") }
        let head = "  \(fs.type) on \(fs.device)"
        guard fs.hasProblems else {
            out.append(head + (fs.mounted ? ": mounted, no errors" : ": no errors"))
            return out
        }
        out.append(head + (states.isEmpty ? "" : ": " + states.joined(separator: "; ")))
        var counts: [String] = []
        if fs.errors > 0 {
            let fns = fs.errorFunctions.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                .prefix(4).map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            counts.append("\(fs.errors) error\(fs.errors == 1 ? "" : "s")" + (fns.isEmpty ? "" : " (\(fns))"))
        }
        if fs.inodeWriteErrors > 0 {
            let inodes = fs.inodesWithWriteErrors.map(String.init).joined(separator: ", ")
            let statuses = fs.inodeWriteStatuses.sorted { $0.key < $1.key }.map(\.key).joined(separator: ", ")
            counts.append("\(fs.inodeWriteErrors) file-data writeback failure\(fs.inodeWriteErrors == 1 ? "" : "s") (inode \(inodes); \(statuses))")
        }
        if fs.superblockWriteErrors > 0 { counts.append("\(fs.superblockWriteErrors) superblock write error\(fs.superblockWriteErrors == 1 ? "" : "s")") }
        if fs.journalSuperblockErrors > 0 { counts.append("\(fs.journalSuperblockErrors) journal superblock write error\(fs.journalSuperblockErrors == 1 ? "" : "s")") }
        if fs.journalDataFlushErrors > 0 { counts.append("\(fs.journalDataFlushErrors) journal data-flush error\(fs.journalDataFlushErrors == 1 ? "" : "s")") }
        if fs.metadataIOErrors > 0 { counts.append("\(fs.metadataIOErrors) metadata I/O error\(fs.metadataIOErrors == 1 ? "" : "s")") }
        if fs.logIOErrors > 0 { counts.append("\(fs.logIOErrors) log I/O error\(fs.logIOErrors == 1 ? "" : "s")") }
        if fs.dataLossMessages > 0 { counts.append(style.red("\(fs.dataLossMessages) data-loss message\(fs.dataLossMessages == 1 ? "" : "s")")) }
        if !counts.isEmpty { out.append("    " + counts.joined(separator: "; ")) }
        out.append(contentsOf: corruptionLines(fs, style: style))
        for e in fs.evidence {
            out.append("    " + style.dim("line \(e.location.line) [\(stamp(e.location))] ") + e.message)
        }
        return out
    }

    static func scsiLines(_ s: SCSISummary) -> [String] {
        func list(_ d: [String: Int]) -> String {
            d.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: "; ")
        }
        var out = ["  SCSI" + (s.address.map { " target \($0)" } ?? "") + ":"]
        if !s.results.isEmpty { out.append("    results: " + list(s.results)) }
        if !s.senseKeys.isEmpty { out.append("    sense keys: " + list(s.senseKeys)) }
        if !s.additionalSense.isEmpty { out.append("    additional sense: " + list(s.additionalSense)) }
        if s.unhandled > 0 { out.append("    \(s.unhandled) unhandled error code\(s.unhandled == 1 ? "" : "s")") }
        if s.offlineRejections > 0 { out.append("    \(s.offlineRejections) I/O rejected: device offline") }
        return out
    }

    // MARK: - guest-internal findings

    static func corruptionLines(_ fs: FilesystemReport, style: TerminalStyle) -> [String] {
        guard fs.corruptionReports > 0 || fs.btrfsDeviceStats.contains(where: { $0.stats.hasErrors }) else { return [] }
        var out: [String] = []
        if fs.corruptionReports > 0 {
            out.append("    " + style.red("\(fs.corruptionReports) corruption report\(fs.corruptionReports == 1 ? "" : "s")")
                       + ": the filesystem read bytes that are wrong (the read itself succeeded)")
        }
        for f in fs.corruption {
            var what = f.structure.rawValue + (f.checksum ? " checksum mismatch" : " damaged")
            if let fn = f.function { what += " (\(fn))" }
            var parts = ["\(f.count)×"]
            if !f.inodes.isEmpty { parts.append("inode" + (f.inodes.count == 1 ? " " : "s ") + f.inodes.map(String.init).joined(separator: ", ")) }
            if !f.groups.isEmpty { parts.append("group" + (f.groups.count == 1 ? " " : "s ") + f.groups.map(String.init).joined(separator: ", ")) }
            if !f.blocks.isEmpty {
                let unit: String
                switch f.blockUnit {
                case .sector512?: unit = "daddr (512-byte sectors)"
                case .logicalByte?: unit = "logical byte address"
                default: unit = "block"
                }
                parts.append(unit + " " + f.blocks.map(String.init).joined(separator: ", "))
            }
            if f.valuesNotListed > 0 { parts.append("+\(f.valuesNotListed) reports naming others") }
            if !f.processes.isEmpty { parts.append("seen by " + f.processes.joined(separator: ", ")) }
            out.append("      \(what): " + parts.joined(separator: "; "))
        }
        if fs.corruptionReportsNotListed > 0 {
            out.append("      … and \(fs.corruptionReportsNotListed) reports of further kinds (counted only)")
        }
        if fs.corruptionReports > 0 {
            // Read-only checks first: a repair rewrites metadata and can lose what it cannot place.
            let check: String?
            switch fs.type {
            case "ext4", "ext3", "ext2": check = "e2fsck -fn /dev/\(fs.device)"
            case "xfs": check = "xfs_repair -n /dev/\(fs.device)"
            case "btrfs": check = "btrfs check --readonly /dev/\(fs.device)"
            default: check = nil
            }
            if let check {
                out.append("      " + style.dim("check it unmounted with `\(check)` (changes nothing); copy the disk image before any repair"))
            }
        }
        for r in fs.btrfsDeviceStats where r.stats.hasErrors {
            let s = r.stats
            out.append("      btrfs error counters of \(s.bdev) at \(place(r.at)): write \(s.writeErrors), read \(s.readErrors), flush \(s.flushErrors), corrupt \(s.corruptionErrors), generation \(s.generationErrors)")
        }
        return out
    }

    static func scsiFailureLines(_ s: SCSISummary) -> [String] {
        guard !s.failedRequests.isEmpty else { return [] }
        var out = ["    \(s.commandFailures) failed command\(s.commandFailures == 1 ? "" : "s") logged, \(s.failedRequests.count) distinct request\(s.failedRequests.count == 1 ? "" : "s")"
                   + (s.retriedRequests > 0 ? ", \(s.retriedRequests) logged failing more than once" : "") + ":"]
        for f in s.failedRequests.prefix(8) {
            var parts: [String] = []
            if let c = f.cdb {
                var cmd = c.name
                if let r = c.blockRange { cmd += " LBA \(r.lba) × \(r.blocks)" }
                parts.append(cmd)
            } else if let op = f.blockOperation {
                parts.append(op.rawValue)
            }
            if let sector = f.sector ?? f.blockErrorSector { parts.append("sector \(sector)" + (f.sectors.map { "+\($0)" } ?? "")) }
            if let k = f.senseKey { parts.append(k + (f.additionalSense.map { " / \($0)" } ?? "")) }
            else if let hb = f.hostbyte { parts.append("hostbyte=\(hb)") }
            if f.loggedFailures > 1 { parts.append("logged \(f.loggedFailures)×") }
            if let n = f.silentRetriesUpTo, n > 0 {
                parts.append("each after up to \(n) silent retries (the host sees up to \(n + 1) attempts)")
            }
            out.append("      " + parts.joined(separator: "; ") + " — \(place(f.first))")
        }
        if s.failedRequests.count > 8 { out.append("      … and \(s.failedRequests.count - 8) more (--json lists them)") }
        if s.failuresNotListed > 0 { out.append("      … and \(s.failuresNotListed) failures of further requests (counted only)") }
        return out
    }

    static func timeoutLines(_ t: DeviceTimeoutSummary, style: TerminalStyle) -> [String] {
        let kinds = t.counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        var out = ["  " + style.red("\(t.total) timeout/abort/reset message\(t.total == 1 ? "" : "s")") + " from the guest's driver: \(kinds)"
                   + (t.maxWaitedSeconds.map { "; waited up to \($0) s" } ?? "")]
        for e in t.evidence {
            out.append("    " + style.dim("line \(e.location.line) [\(stamp(e.location))] ") + e.message)
        }
        return out
    }

    static func hungTaskLines(_ h: HungTaskSummary, style: TerminalStyle) -> [String] {
        var out = [style.bold("Hung tasks") + ": \(h.total) report\(h.total == 1 ? "" : "s") of a task blocked in D state"
                   + (h.maxBlockedSeconds.map { " (longest: more than \($0) s)" } ?? "")
                   + "; the line names no device"]
        for t in h.tasks.prefix(8) {
            let e = t.event
            out.append("  \(e.task) (pid \(e.pid)) blocked for more than \(e.blockedSeconds) s at \(place(e.location))"
                       + (e.journalDevice.map { " — the journal thread of \($0)" } ?? ""))
        }
        let more = h.total - min(8, h.tasks.count)
        if more > 0 { out.append("  … and \(more) more") }
        return out
    }

    static func notes(_ d: GuestDeviceReport) -> [String] {
        var notes: [String] = []
        switch d.kind {
        case .partition(let parent):
            notes.append("\(d.name) is a partition: its logical blocks count from the start of \(d.name); block-layer lines name \(parent) with sectors from the start of the disk")
        case .deviceMapper:
            notes.append("\(d.name) is a device-mapper device (LVM, dm-crypt, multipath): its logical blocks are filesystem blocks on \(d.name), not disk sectors; only the device-mapper table (dmsetup table) maps them to a disk")
        case .floppy:
            if d.totalBlockErrors > 0 { notes.append("errors on \(d.name) at boot usually mean a floppy controller without a drive, not a disk problem") }
        default: break
        }
        let virtio = d.capacity?.driver == "virtio_blk" || (d.name.hasPrefix("vd") && d.kind == .disk)
        if virtio, d.totalBlockErrors > 0 {
            notes.append("virtio-blk hands every host-side failure to the guest as \"I/O\" (or \"operation not supported\"): the host's errno (ENOSPC, EIO, ...) is visible only on the host, in QEMU's trace events or QMP BLOCK_IO_ERROR")
        }
        return notes
    }

    // MARK: - input

    static func inputSummary(_ s: GuestLogInputStats) -> String {
        let styles = s.styles.filter { $0.key != .bare }.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue) \($0.value)" }
        var text = "(\(s.lines) line\(s.lines == 1 ? "" : "s"): \(s.recognisedKernelLines) kernel message\(s.recognisedKernelLines == 1 ? "" : "s")"
        if s.notKernelLines > 0 { text += ", \(s.notKernelLines) from other programs" }
        if s.unrecognisedLines > 0 { text += ", \(s.unrecognisedLines) not understood" }
        if s.skippedLines > 0 { text += ", \(s.skippedLines) skipped" }
        if !styles.isEmpty { text += "; kernel messages by stamp: " + styles.joined(separator: ", ") }
        if s.duplicateEvents > 0 { text += "; \(s.duplicateEvents) repeated event\(s.duplicateEvents == 1 ? "" : "s") counted once" }
        return text + ")"
    }

    static func skippedSummary(_ s: GuestLogInputStats) -> String? {
        var parts: [String] = []
        if s.binaryLines > 0 { parts.append("\(s.binaryLines) binary") }
        if s.overlongLines > 0 { parts.append("\(s.overlongLines) over 64 KiB") }
        if s.malformedLines > 0 { parts.append("\(s.malformedLines) unreadable (first at line \(s.firstMalformedLine ?? 0))") }
        var text = parts.isEmpty ? "" : "Skipped lines: " + parts.joined(separator: ", ") + "."
        if s.endedMidLine { text += (text.isEmpty ? "" : " ") + "The input ended in the middle of a line." }
        return text.isEmpty ? nil : text
    }

    // MARK: - formatting

    static func stamp(_ l: GuestLogLocation) -> String {
        if let us = l.time.uptimeMicroseconds { return GuestLogTime.formatUptime(us) }
        if let wc = l.time.wallClock { return wc.description }
        return "-"
    }

    static func place(_ l: GuestLogLocation) -> String {
        var parts: [String] = []
        if let us = l.time.uptimeMicroseconds { parts.append(GuestLogTime.formatUptime(us) + " s") }
        if let wc = l.time.wallClock { parts.append(wc.description) }
        parts.append("line \(l.line)")
        if l.boot > 1 { parts.append("boot \(l.boot)") }
        return parts.joined(separator: ", ")
    }

    static func bootLine(_ b: GuestBoot) -> String {
        var t = "boot \(b.index): lines \(b.firstLine)–\(b.lastLine), \(b.kernelMessages) kernel messages"
        if let v = b.kernelVersion { t += ", Linux \(v)" }
        if let id = b.bootId { t += ", boot id \(id)" }
        if let f = b.firstUptimeMicroseconds, let l = b.lastUptimeMicroseconds {
            t += ", uptime \(GuestLogTime.formatUptime(f))–\(GuestLogTime.formatUptime(l)) s"
        }
        if let f = b.firstTime?.wallClock, let l = b.lastTime?.wallClock { t += ", \(f) – \(l)" }
        switch b.startedBy {
        case .startOfLog: break
        case .linuxVersion: t += " (a new `Linux version` line)"
        case .uptimeReset: t += " (uptime went back)"
        case .bootId: t += " (a new _BOOT_ID)"
        case .reboot: t += " (after the kernel's reboot message)"
        }
        return t
    }

    static func formatSize(_ bytes: UInt64) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var v = Double(bytes)
        var i = 0
        while v >= 1024, i < units.count - 1 { v /= 1024; i += 1 }
        if i == 0 { return "\(bytes) bytes" }
        return v == v.rounded() && v < 10_000 ? String(format: "%.0f %@", v, units[i]) : String(format: "%.1f %@", v, units[i])
    }
}
