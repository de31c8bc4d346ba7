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
    /// Per family (block, buffer): counts waiting for the next message that names a device,
    /// and the device of the last such message. Arrays: touched on every error event.
    private var pendingSuppressed: [[String: Int]] = [[:], [:]]
    private var hasPendingSuppressed = [false, false]
    private var lastDeviceFor = [-1, -1]
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

    private var lastDevice = -1

    private mutating func device(_ name: String) -> Int? {
        // Consecutive events are nearly always about the same device: compare before hashing.
        if lastDevice >= 0, devices[lastDevice].report.name == name { return lastDevice }
        if let i = deviceIndex[name] { lastDevice = i; return i }
        guard devices.count < deviceLimit else { eventsOverDeviceLimit += 1; return nil }
        devices.append(DeviceState(name: name, rangeLimit: rangeLimit))
        deviceIndex[name] = devices.count - 1
        lastDevice = devices.count - 1
        return devices.count - 1
    }

    private mutating func noteError(_ d: Int, _ location: GuestLogLocation) {
        devices[d].noteError(location)
    }

    private mutating func attributeSuppressed(_ family: Int, to d: Int) {
        lastDeviceFor[family] = d
        guard hasPendingSuppressed[family] else { return }
        for (function, n) in pendingSuppressed[family] {
            devices[d].report.suppressed += n
            devices[d].report.suppressedByFunction[function, default: 0] += n
        }
        pendingSuppressed[family] = [:]
        hasPendingSuppressed[family] = false
    }

    // MARK: - block errors

    private mutating func addBlockError(_ e: BlockErrorEvent) {
        if e.shape != .endRequest && e.shape != .blkUpdateRequest { modernKernel = true }
        guard let d = device(e.device) else { return }
        attributeSuppressed(0, to: d)
        let keep = blockDetail < detailLimit
        if keep { blockDetail += 1 }
        // Mutate in place (devices[d].…): copying the element out and back would copy its
        // detail arrays on every append.
        devices[d].addBlockError(e, keepDetail: keep)
    }

    // MARK: - buffer errors

    private mutating func addBufferError(_ e: BufferErrorEvent) {
        if e.shape == .onDev { modernKernel = true }
        guard let d = device(e.device) else { return }
        attributeSuppressed(1, to: d)
        let keep = bufferDetail < detailLimit
        if devices[d].addBufferError(e, keepDetail: keep) { bufferDetail += 1 }
    }

    // MARK: - filesystems

    private mutating func addFilesystem(_ e: FilesystemEvent) {
        guard let d = device(e.device) else { return }
        devices[d].addFilesystem(e)
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
        let family: Int
        switch e.family {
        case .blockErrors: suppressed.blockErrors += n; family = 0
        case .bufferErrors: suppressed.bufferErrors += n; family = 1
        case .other: suppressed.other += n; return
        }
        pendingSuppressed[family][e.function, default: 0] += n
        hasPendingSuppressed[family] = true
    }

    // MARK: - report

    public func report(source: String, input: GuestLogInputStats) -> GuestDiskReport {
        var copy = self
        // Suppressed counts with no later message of their kind go to the previous one's device.
        for (family, pending) in copy.pendingSuppressed.enumerated() where copy.hasPendingSuppressed[family] {
            let d = copy.lastDeviceFor[family]
            if d >= 0 {
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
    /// Index 0: operation not reported; i + 1: BlockIOOperation.allCases[i]. Arrays, not
    /// dictionaries: this runs once per error line.
    var operationCounts = [Int](repeating: 0, count: BlockIOOperation.allCases.count + 1)
    var errorTypeCounts: [(type: BlockErrorType, count: Int)] = []
    var blockSizeVotes: [Int: Int] = [:]
    var unpairedOnDevice = false
    var lastOnDeviceDetail: Int?
    var ext4WritebackErrors = false
    /// In order of first appearance; `filesystemSlot` maps a group (ext, xfs, f2fs) to its index.
    var filesystems: [FilesystemState] = []
    var filesystemSlot = [-1, -1, -1]

    init(name: String, rangeLimit: Int) {
        report = GuestDeviceReport(name: name)
        ranges = SectorRangeSet(limit: rangeLimit)
    }

    /// First and last by uptime when both lines have one (a dmesg replayed after a console
    /// capture comes later in the file but not later in time), by position otherwise.
    mutating func addBlockError(_ e: BlockErrorEvent, keepDetail: Bool) {
        noteError(e.location)
        report.totalBlockErrors += 1
        if keepDetail { report.blockErrors.append(e) }
        let op = e.operation
        operationCounts[op.map { BlockIOOperationSet.index($0) + 1 } ?? 0] += 1
        if let i = errorTypeCounts.firstIndex(where: { $0.type == e.errorType }) {
            errorTypeCounts[i].count += 1
        } else if errorTypeCounts.count < 32 {
            errorTypeCounts.append((e.errorType, 1))
        } else {
            errorTypeCounts[errorTypeCounts.count - 1].count += 1   // past 32 distinct names: lumped with the last
        }
        if op?.touchesSectors ?? true {
            ranges.insert(e.sector, operation: op)
        }
        lastBlockError = (e.sector, e.location.line)
    }

    /// Returns whether the event was kept in the detail list.
    mutating func addBufferError(_ e: BufferErrorEvent, keepDetail: Bool) -> Bool {
        noteError(e.location)
        if e.shape == .lostPageWrite {
            // ≤4.0 printed this right after the `Buffer I/O error on device` line of the same
            // buffer: it tells that line's kind rather than being a second lost block.
            if unpairedOnDevice {
                unpairedOnDevice = false
                report.lostBlocks.unknown -= 1
                report.lostBlocks.write += 1
                if let i = lastOnDeviceDetail {
                    report.bufferErrors[i].loss = .write
                    report.bufferErrors[i].lossInferred = "lost-page-write-line"
                }
                lastOnDeviceDetail = nil
                return false
            }
            report.totalBufferErrors += 1
            report.lostBlocks.write += 1
            if keepDetail { report.bufferErrors.append(BufferErrorRecord(event: e, loss: .write)) }
            return keepDetail
        }

        report.totalBufferErrors += 1
        switch e.loss {
        case .syncWrite?: report.lostBlocks.syncWrite += 1
        case .asyncWrite?: report.lostBlocks.asyncWrite += 1
        case .asyncRead?: report.lostBlocks.asyncRead += 1
        case .write?: report.lostBlocks.write += 1
        case nil: report.lostBlocks.unknown += 1
        }
        unpairedOnDevice = e.shape == .onDevice && e.loss == nil
        lastOnDeviceDetail = nil
        if keepDetail {
            report.bufferErrors.append(BufferErrorRecord(event: e, loss: e.loss))
            if unpairedOnDevice { lastOnDeviceDetail = report.bufferErrors.count - 1 }
        }
        // Block size: a buffer error for block B right after a block error at sector S on the
        // same device means S = B × (block size / 512).
        if let block = e.logicalBlock, block > 0, let (sector, line) = lastBlockError, sector > 0,
           e.location.line - line <= 64 {
            var k: UInt64 = 1
            while k <= 128 {
                let (product, overflow) = block.multipliedReportingOverflow(by: k)
                if !overflow && product == sector {
                    blockSizeVotes[Int(k) * 512, default: 0] += 1
                    break
                }
                k *= 2
            }
        }
        return keepDetail
    }

    mutating func addFilesystem(_ e: FilesystemEvent) {
        // ext2/3/4 share their jbd/jbd2 journal's records; XFS and f2fs stand alone.
        let group: Int
        switch e.filesystem {
        case .xfs: group = 1
        case .f2fs: group = 2
        default: group = 0
        }
        if filesystemSlot[group] < 0 {
            filesystemSlot[group] = filesystems.count
            filesystems.append(FilesystemState(report: FilesystemReport(type: e.filesystem.rawValue, device: e.device)))
        }
        if case .inodeWriteError = e.kind { ext4WritebackErrors = true }
        if filesystems[filesystemSlot[group]].add(e) != nil { noteError(e.location) }
    }

    mutating func noteError(_ l: GuestLogLocation) {
        report.firstError = GuestLogLocation.earlier(report.firstError, l)
        report.lastError = GuestLogLocation.later(report.lastError, l)
    }

    func finished(modernKernel: Bool) -> GuestDeviceReport {
        var r = report
        for (i, n) in operationCounts.enumerated() where n > 0 {
            r.operations[i == 0 ? "unreported" : BlockIOOperation.allCases[i - 1].rawValue] = n
        }
        for (type, n) in errorTypeCounts { r.errorTypes[type.text, default: 0] += n }
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
        r.filesystems = filesystems.map { $0.finished() }
        return r
    }
}

struct FilesystemState {
    var report: FilesystemReport
    var evidenceKinds: Set<String> = []

    /// Adds an event; returns the problem kind when it is one (nil for `mounted`).
    mutating func add(_ e: FilesystemEvent) -> String? {
        if report.type == "jbd2" || report.type == "jbd", !e.filesystem.isJournal {
            report.type = e.filesystem.rawValue
        }
        let l = e.location
        var problem: String? = nil
        var alsoAborted = false
        switch e.kind {
        case .mounted:
            report.mounted = true
        case .error(let function, let aborted):
            report.errors += 1
            if let function, report.errorFunctions.count < 16 || report.errorFunctions[function] != nil {
                report.errorFunctions[function, default: 0] += 1
            }
            problem = "error"
            if aborted {
                if !report.journalAborted { report.journalAborted = true; report.journalAbortedAt = l }
                alsoAborted = true
            }
        case .journalAborted:
            if !report.journalAborted { report.journalAborted = true; report.journalAbortedAt = l }
            problem = "journal-aborted"
        case .remountedReadOnly:
            if !report.readOnly { report.readOnly = true; report.readOnlyAt = l }
            problem = "read-only"
        case .superblockWriteError:
            report.superblockWriteErrors += 1
            problem = "superblock"
        case .journalSuperblockWriteError:
            report.journalSuperblockErrors += 1
            problem = "journal-superblock"
        case .journalDataFlushError:
            report.journalDataFlushErrors += 1
            problem = "journal-data-flush"
        case .inodeWriteError(let inode, _, let status):
            report.inodeWriteErrors += 1
            if report.inodesWithWriteErrors.count < 16, !report.inodesWithWriteErrors.contains(inode) {
                report.inodesWithWriteErrors.append(inode)
            }
            report.inodeWriteStatuses[GuestDiskAnalysis.describeStatus(status), default: 0] += 1
            problem = "inode-write"
        case .dataLoss:
            report.dataLossMessages += 1
            problem = "data-loss"
        case .metadataIOError:
            report.metadataIOErrors += 1
            problem = "metadata"
        case .logIOError:
            report.logIOErrors += 1
            problem = "log"
        case .shutdown:
            if !report.shutdown { report.shutdown = true; report.shutdownAt = l }
            problem = "shutdown"
        }
        guard let problem else { return nil }
        report.firstProblem = GuestLogLocation.earlier(report.firstProblem, l)
        report.lastProblem = GuestLogLocation.later(report.lastProblem, l)
        note(problem, e)
        if alsoAborted { note("journal-aborted", e) }
        return problem
    }

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
