/// Turns a stream of guest-log events into a per-device GuestDiskReport, in one pass and with
/// bounded memory: individual block and buffer errors are kept up to `detailLimit` in total,
/// sector ranges up to `rangeLimit` per device (then coalesced), devices up to `deviceLimit`;
/// every count stays exact.
public struct GuestDiskAnalysis: GuestLogEventSink {
    public let detailLimit: Int
    public let deviceLimit: Int
    public let rangeLimit: Int

    private var devices: [DeviceState] = []
    private var deviceIndex: [String: Int] = [:]
    private var eventsOverDeviceLimit = 0
    private var blockDetail = 0
    private var bufferDetail = 0
    private var suppressed = SuppressedSummary()
    private var pendingSuppressed: [SuppressedFamily: [String: Int]] = [:]
    private var lastDeviceFor: [SuppressedFamily: Int] = [:]
    /// Set once a line shape that only kernels ≥4.1 print has been seen.
    private var modernKernel = false
    private var scsiAddresses: [String: String] = [:]

    public init(detailLimit: Int = 10_000, deviceLimit: Int = 256, rangeLimit: Int = 4096) {
        self.detailLimit = max(0, detailLimit)
        self.deviceLimit = max(1, deviceLimit)
        self.rangeLimit = max(2, rangeLimit)
    }

    public mutating func consume(_ event: GuestLogEvent) {
        switch event {
        case .blockError(let e): addBlockError(e)
        case .bufferError(let e): addBufferError(e)
        case .filesystem(let e): addFilesystem(e)
        case .scsi(let e): addSCSI(e)
        case .capacity(let e):
            guard let d = device(e.device) else { return }
            devices[d].report.capacity = e
        case .suppressed(let e): addSuppressed(e)
        }
    }

    // MARK: - devices

    private mutating func device(_ name: String) -> Int? {
        if let i = deviceIndex[name] { return i }
        guard devices.count < deviceLimit else { eventsOverDeviceLimit += 1; return nil }
        devices.append(DeviceState(name: name, rangeLimit: rangeLimit))
        deviceIndex[name] = devices.count - 1
        return devices.count - 1
    }

    private mutating func noteError(_ d: Int, _ location: GuestLogLocation) {
        devices[d].noteError(location)
    }

    private mutating func attributeSuppressed(_ family: SuppressedFamily, to d: Int) {
        lastDeviceFor[family] = d
        guard let pending = pendingSuppressed.removeValue(forKey: family) else { return }
        for (function, n) in pending {
            devices[d].report.suppressed += n
            devices[d].report.suppressedByFunction[function, default: 0] += n
        }
    }

    // MARK: - block errors

    private mutating func addBlockError(_ e: BlockErrorEvent) {
        if e.shape != .endRequest && e.shape != .blkUpdateRequest { modernKernel = true }
        guard let d = device(e.device) else { return }
        attributeSuppressed(.blockErrors, to: d)
        noteError(d, e.location)
        var dev = devices[d]
        dev.report.totalBlockErrors += 1
        if blockDetail < detailLimit {
            dev.report.blockErrors.append(e)
            blockDetail += 1
        }
        let op = e.operation
        dev.report.operations[op?.rawValue ?? "unreported", default: 0] += 1
        dev.report.errorTypes[e.errorType.text, default: 0] += 1
        if op?.touchesSectors ?? true {
            dev.ranges.insert(e.sector, operation: op)
        }
        dev.lastBlockError = (e.sector, e.location.line)
        devices[d] = dev
    }

    // MARK: - buffer errors

    private mutating func addBufferError(_ e: BufferErrorEvent) {
        if e.shape == .onDev { modernKernel = true }
        guard let d = device(e.device) else { return }
        attributeSuppressed(.bufferErrors, to: d)
        noteError(d, e.location)
        var dev = devices[d]
        defer { devices[d] = dev }

        if e.shape == .lostPageWrite {
            // ≤4.0 printed this right after the `Buffer I/O error on device` line of the same
            // buffer: it tells that line's kind rather than being a second lost block.
            if dev.unpairedOnDevice {
                dev.unpairedOnDevice = false
                dev.report.lostBlocks.unknown -= 1
                dev.report.lostBlocks.write += 1
                if let i = dev.lastOnDeviceDetail {
                    dev.report.bufferErrors[i].loss = .write
                    dev.report.bufferErrors[i].lossInferred = "lost-page-write-line"
                }
                dev.lastOnDeviceDetail = nil
                return
            }
            dev.report.totalBufferErrors += 1
            dev.report.lostBlocks.write += 1
            if bufferDetail < detailLimit {
                dev.report.bufferErrors.append(BufferErrorRecord(event: e, loss: .write))
                bufferDetail += 1
            }
            return
        }

        dev.report.totalBufferErrors += 1
        switch e.loss {
        case .syncWrite?: dev.report.lostBlocks.syncWrite += 1
        case .asyncWrite?: dev.report.lostBlocks.asyncWrite += 1
        case .asyncRead?: dev.report.lostBlocks.asyncRead += 1
        case .write?: dev.report.lostBlocks.write += 1
        case nil: dev.report.lostBlocks.unknown += 1
        }
        dev.unpairedOnDevice = e.shape == .onDevice && e.loss == nil
        dev.lastOnDeviceDetail = nil
        if bufferDetail < detailLimit {
            dev.report.bufferErrors.append(BufferErrorRecord(event: e, loss: e.loss))
            bufferDetail += 1
            if dev.unpairedOnDevice { dev.lastOnDeviceDetail = dev.report.bufferErrors.count - 1 }
        }
        // Block size: a buffer error for block B right after a block error at sector S on the
        // same device means S = B × (block size / 512).
        if let block = e.logicalBlock, block > 0, let (sector, line) = dev.lastBlockError, sector > 0,
           e.location.line - line <= 64 {
            var k: UInt64 = 1
            while k <= 128 {
                if block.multipliedReportingOverflow(by: k) == (sector, false) {
                    dev.blockSizeVotes[Int(k) * 512, default: 0] += 1
                    break
                }
                k *= 2
            }
        }
    }

    // MARK: - filesystems

    private mutating func addFilesystem(_ e: FilesystemEvent) {
        guard let d = device(e.device) else { return }
        let group: String
        switch e.filesystem {
        case .xfs: group = "xfs"
        case .f2fs: group = "f2fs"
        default: group = "ext"
        }
        var dev = devices[d]
        defer { devices[d] = dev }
        var fs = dev.filesystems[group] ?? FilesystemState(report: FilesystemReport(type: e.filesystem.rawValue, device: e.device))
        if fs.report.type == "jbd2" || fs.report.type == "jbd", !e.filesystem.isJournal {
            fs.report.type = e.filesystem.rawValue
        }
        var r = fs.report
        let l = e.location
        var problem: String? = nil
        var alsoAborted = false
        switch e.kind {
        case .mounted:
            r.mounted = true
        case .error(let function, let aborted):
            r.errors += 1
            if let function, r.errorFunctions.count < 16 || r.errorFunctions[function] != nil {
                r.errorFunctions[function, default: 0] += 1
            }
            problem = "error"
            if aborted {
                if !r.journalAborted { r.journalAborted = true; r.journalAbortedAt = l }
                alsoAborted = true
            }
        case .journalAborted:
            if !r.journalAborted { r.journalAborted = true; r.journalAbortedAt = l }
            problem = "journal-aborted"
        case .remountedReadOnly:
            if !r.readOnly { r.readOnly = true; r.readOnlyAt = l }
            problem = "read-only"
        case .superblockWriteError:
            r.superblockWriteErrors += 1
            problem = "superblock"
        case .journalSuperblockWriteError:
            r.journalSuperblockErrors += 1
            problem = "journal-superblock"
        case .journalDataFlushError:
            r.journalDataFlushErrors += 1
            problem = "journal-data-flush"
        case .inodeWriteError(let inode, _, let status):
            r.inodeWriteErrors += 1
            if r.inodesWithWriteErrors.count < 16, !r.inodesWithWriteErrors.contains(inode) {
                r.inodesWithWriteErrors.append(inode)
            }
            r.inodeWriteStatuses[Self.describeStatus(status), default: 0] += 1
            dev.ext4WritebackErrors = true
            problem = "inode-write"
        case .dataLoss:
            r.dataLossMessages += 1
            problem = "data-loss"
        case .metadataIOError:
            r.metadataIOErrors += 1
            problem = "metadata"
        case .logIOError:
            r.logIOErrors += 1
            problem = "log"
        case .shutdown:
            if !r.shutdown { r.shutdown = true; r.shutdownAt = l }
            problem = "shutdown"
        }
        if let problem {
            r.firstProblem = GuestLogLocation.earlier(r.firstProblem, l)
            r.lastProblem = GuestLogLocation.later(r.lastProblem, l)
            fs.report = r
            fs.note(problem, e)
            if alsoAborted { fs.note("journal-aborted", e) }
            dev.noteError(l)
        } else {
            fs.report = r
        }
        dev.filesystems[group] = fs
        if dev.filesystemOrder.last != group, !dev.filesystemOrder.contains(group) { dev.filesystemOrder.append(group) }
    }

    /// ext4's `I/O error %d`: a blk_status_t since 4.13 (positive), an errno before (negative).
    static func describeStatus(_ status: Int?) -> String {
        guard let status else { return "unknown" }
        if status < 0 {
            return ErrnoTable.standard.entry(number: Int64(status)).map { "-\($0.name)" } ?? "errno \(status)"
        }
        return BlockStatus.name(status) ?? "blk_status \(status)"
    }

    // MARK: - SCSI

    private mutating func addSCSI(_ e: SCSIEvent) {
        var name = e.device
        if name == "?" { name = scsiAddresses[e.address] ?? "sd \(e.address)" }
        else if scsiAddresses.count < 256 { scsiAddresses[e.address] = name }
        guard let d = device(name) else { return }
        var s = devices[d].report.scsi ?? SCSISummary()
        s.address = e.address
        func bump(_ dict: inout [String: Int], _ key: String) {
            if dict.count < 32 || dict[key] != nil { dict[key, default: 0] += 1 } else { dict["other", default: 0] += 1 }
        }
        switch e.kind {
        case .result(let hb, let db): bump(&s.results, "hostbyte=\(hb) driverbyte=\(db)")
        case .senseKey(let k): bump(&s.senseKeys, k)
        case .additionalSense(let a): bump(&s.additionalSense, a)
        case .unhandled: s.unhandled += 1
        case .offline: s.offlineRejections += 1
        }
        devices[d].report.scsi = s
        noteError(d, e.location)
    }

    // MARK: - suppressed

    private mutating func addSuppressed(_ e: SuppressedMessagesEvent) {
        let n = Int(clamping: e.count)
        suppressed.total += n
        if suppressed.byFunction.count < 64 || suppressed.byFunction[e.function] != nil {
            suppressed.byFunction[e.function, default: 0] += n
        } else {
            suppressed.byFunction["other", default: 0] += n
        }
        switch e.family {
        case .blockErrors: suppressed.blockErrors += n
        case .bufferErrors: suppressed.bufferErrors += n
        case .other: suppressed.other += n; return
        }
        pendingSuppressed[e.family, default: [:]][e.function, default: 0] += n
    }

    // MARK: - report

    public func report(source: String, input: GuestLogInputStats) -> GuestDiskReport {
        var copy = self
        // Suppressed counts with no later message of their kind go to the previous one's device.
        for (family, pending) in copy.pendingSuppressed {
            if let d = copy.lastDeviceFor[family] {
                for (function, n) in pending {
                    copy.devices[d].report.suppressed += n
                    copy.devices[d].report.suppressedByFunction[function, default: 0] += n
                }
            } else {
                copy.suppressed.unattributed += pending.values.reduce(0, +)
            }
        }
        let reports = copy.devices.map { $0.finished(modernKernel: copy.modernKernel) }
        return GuestDiskReport(source: source, input: input, detailLimit: detailLimit, devices: reports,
                               suppressed: copy.suppressed, eventsOverDeviceLimit: copy.eventsOverDeviceLimit)
    }
}

/// Per-device accumulation state; `report` fills as events arrive.
struct DeviceState {
    var report: GuestDeviceReport
    var ranges: SectorRangeSet
    var lastBlockError: (sector: UInt64, line: Int)?
    var blockSizeVotes: [Int: Int] = [:]
    var unpairedOnDevice = false
    var lastOnDeviceDetail: Int?
    var ext4WritebackErrors = false
    var filesystems: [String: FilesystemState] = [:]
    var filesystemOrder: [String] = []

    init(name: String, rangeLimit: Int) {
        report = GuestDeviceReport(name: name)
        ranges = SectorRangeSet(limit: rangeLimit)
    }

    /// First and last by uptime when both lines have one (a dmesg replayed after a console
    /// capture comes later in the file but not later in time), by position otherwise.
    mutating func noteError(_ l: GuestLogLocation) {
        report.firstError = GuestLogLocation.earlier(report.firstError, l)
        report.lastError = GuestLogLocation.later(report.lastError, l)
    }

    func finished(modernKernel: Bool) -> GuestDeviceReport {
        var r = report
        var set = ranges
        r.sectorRanges = set.ranges
        set = ranges
        r.sectorRangesCoalesced = set.coalesced
        r.sectorMergeGap = set.mergeGap
        if blockSizeVotes.count == 1, let (size, _) = blockSizeVotes.first { r.inferredBlockSize = size }
        // `Buffer I/O error on device` without a `lost page write` line: in a kernel that prints
        // the 4.1+ buffer shapes, only ext4's writeback path still prints it.
        if r.lostBlocks.unknown > 0, modernKernel || ext4WritebackErrors {
            r.lostBlocks.asyncWrite += r.lostBlocks.unknown
            r.lostBlocks.unknown = 0
            for i in r.bufferErrors.indices where r.bufferErrors[i].loss == nil && r.bufferErrors[i].event.shape == .onDevice {
                r.bufferErrors[i].loss = .asyncWrite
                r.bufferErrors[i].lossInferred = "ext4-writeback"
            }
        }
        r.filesystems = filesystemOrder.compactMap { filesystems[$0]?.finished() }
        return r
    }
}

struct FilesystemState {
    var report: FilesystemReport
    var evidenceKinds: Set<String> = []

    mutating func note(_ kind: String, _ e: FilesystemEvent) {
        guard report.evidence.count < 12, evidenceKinds.insert(kind).inserted else { return }
        report.evidence.append(EvidenceLine(location: e.location, message: e.message))
    }

    func finished() -> FilesystemReport {
        var r = report
        r.evidence.sort { GuestLogLocation.ordered($0.location, $1.location) }
        return r
    }
}

extension GuestLogLocation {
    /// Time order when both have an uptime, line order otherwise.
    static func ordered(_ a: GuestLogLocation, _ b: GuestLogLocation) -> Bool {
        if let ta = a.time.uptimeMicroseconds, let tb = b.time.uptimeMicroseconds, ta != tb { return ta < tb }
        return a.line < b.line
    }

    static func earlier(_ current: GuestLogLocation?, _ new: GuestLogLocation) -> GuestLogLocation {
        guard let current else { return new }
        return ordered(new, current) ? new : current
    }

    static func later(_ current: GuestLogLocation?, _ new: GuestLogLocation) -> GuestLogLocation {
        guard let current else { return new }
        return ordered(current, new) ? new : current
    }
}
