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
    var filesystemSlot = [-1, -1, -1, -1]
    /// SCSI command failures being assembled from their lines (SCSIFailureTracker.swift).
    var scsiFailures = SCSIFailureTracker()
    /// An `sdX` name: its block errors are kept for the SCSI tracker even before any SCSI line
    /// (a quiet console shows the block error first, the dmesg replay the SCSI lines later).
    let scsiDisk: Bool
    var timeouts: DeviceTimeoutSummary?
    var timeoutEvidenceKinds: UInt32 = 0

    /// Buffer errors on a SCSI device that came within 64 lines after one of its block errors:
    /// that block error's line, so that those of a no-medium command are taken out too (first 4096).
    var scsiBufferErrors: [(afterBlockLine: Int, line: Int, loss: BufferErrorLoss?)] = []
    let rangeLimit: Int

    init(name: String, rangeLimit: Int) {
        report = GuestDeviceReport(name: name)
        // sd disks and sr CD-ROM drives: both print the SCSI midlayer's lines for a failed command.
        scsiDisk = name.hasPrefix("sd") || name.hasPrefix("sr")
        ranges = SectorRangeSet(limit: rangeLimit)
        self.rangeLimit = rangeLimit
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
        if scsiDisk, let (_, line) = lastBlockError, e.location.line - line <= 64, scsiBufferErrors.count < 4096 {
            scsiBufferErrors.append((line, e.location.line, e.loss))
        }
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
        case .btrfs: group = 3
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
        if report.boots.last != l.boot, !report.boots.contains(l.boot), report.boots.count < 64 {
            report.boots.append(l.boot)
            report.boots.sort()
        }
        report.firstError = GuestLogLocation.earlier(report.firstError, l)
        report.lastError = GuestLogLocation.later(report.lastError, l)
    }

    func finished(modernKernel: Bool) -> GuestDeviceReport {
        var r = report
        var operationCounts = operationCounts
        var errorTypeCounts = errorTypeCounts
        var ranges = ranges
        if r.scsi != nil || scsiFailures.hasFailures {
            var s = r.scsi ?? SCSISummary()
            let noMedium = scsiFailures.finish(into: &s)
            if noMedium.commands > 0 {
                takeOut(noMedium, from: &r, scsi: &s, operationCounts: &operationCounts, errorTypeCounts: &errorTypeCounts,
                        ranges: &ranges)
            }
            r.scsi = s
        }
        for (i, n) in operationCounts.enumerated() where n > 0 {
            r.operations[i == 0 ? "unreported" : BlockIOOperation.allCases[i - 1].rawValue] = n
        }
        for (type, n) in errorTypeCounts where n > 0 { r.errorTypes[type.text, default: 0] += n }
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
        r.timeouts = timeouts
        // A drive whose only trouble was having no medium has no error to place.
        if r.noMedium != nil, !r.hasErrors {
            r.firstError = nil; r.lastError = nil; r.boots = []
        }
        return r
    }

    /// Takes a no-medium tally's lines out of the device's failures: the commands' per-line SCSI
    /// counts, their tied block errors (count, operation, type, detail, sector ranges) and the
    /// buffer errors that followed those; records them as `noMedium`.
    private func takeOut(_ m: SCSIFailureTracker.NoMediumTally, from r: inout GuestDeviceReport, scsi s: inout SCSISummary,
                         operationCounts: inout [Int], errorTypeCounts: inout [(type: BlockErrorType, count: Int)],
                         ranges: inout SectorRangeSet) {
        guard let first = m.first else { return }
        func decrement(_ dict: inout [String: Int], _ key: String?, _ n: Int) {
            guard let key else { return }
            let k = dict[key] != nil ? key : "other"
            guard let v = dict[k] else { return }
            if v > n { dict[k] = v - n } else { dict[k] = nil }
        }
        for l in m.lines {
            decrement(&s.results, l.result, l.count)
            decrement(&s.senseKeys, l.senseKey, l.count)
            decrement(&s.additionalSense, l.additionalSense, l.count)
        }
        var summary = NoMediumSummary(first: first.first, last: m.last ?? first.last)
        summary.count = m.commands
        summary.additionalSense = first.additionalSense
        summary.operation = first.cdb.map { $0.operation.rawValue } ?? first.blockOperation?.rawValue
        var lines = Set<Int>()
        for b in m.blockErrors where r.totalBlockErrors > 0 {
            lines.insert(b.line)
            r.totalBlockErrors -= 1
            operationCounts[b.operation.map { BlockIOOperationSet.index($0) + 1 } ?? 0] -= 1
            if let i = errorTypeCounts.firstIndex(where: { $0.type == b.errorType }) { errorTypeCounts[i].count -= 1 }
            summary.blockErrors += 1
        }
        if !lines.isEmpty {
            r.blockErrors.removeAll { lines.contains($0.location.line) }
            // The ranges hold no lines: rebuilt from the errors left when all are listed.
            if r.totalBlockErrors == 0 || r.blockErrors.count == r.totalBlockErrors {
                ranges = SectorRangeSet(limit: rangeLimit)
                for e in r.blockErrors where e.operation?.touchesSectors ?? true { ranges.insert(e.sector, operation: e.operation) }
            }
            var bufferLines = Set<Int>()
            for b in scsiBufferErrors where lines.contains(b.afterBlockLine) && r.totalBufferErrors > 0 {
                bufferLines.insert(b.line)
                r.totalBufferErrors -= 1
                summary.bufferErrors += 1
                switch b.loss {
                case .syncWrite?: r.lostBlocks.syncWrite = max(0, r.lostBlocks.syncWrite - 1)
                case .asyncWrite?: r.lostBlocks.asyncWrite = max(0, r.lostBlocks.asyncWrite - 1)
                case .asyncRead?: r.lostBlocks.asyncRead = max(0, r.lostBlocks.asyncRead - 1)
                case .write?: r.lostBlocks.write = max(0, r.lostBlocks.write - 1)
                case nil: r.lostBlocks.unknown = max(0, r.lostBlocks.unknown - 1)
                }
            }
            if !bufferLines.isEmpty { r.bufferErrors.removeAll { bufferLines.contains($0.event.location.line) } }
        }
        r.noMedium = summary
    }
}

struct FilesystemState {
    var report: FilesystemReport
    /// Kinds of problem already quoted as evidence, one bit each.
    var evidenceKinds: UInt32 = 0

    enum Problem: UInt32 {
        case error = 1, journalAborted = 2, readOnly = 4, superblock = 8, journalSuperblock = 16
        case journalDataFlush = 32, inodeWrite = 64, dataLoss = 128, metadata = 256, log = 512, shutdown = 1024
        case corruption = 2048, deviceStats = 4096
    }

    /// Adds an event; returns the problem kind when it is one (nil for `mounted`).
    mutating func add(_ e: FilesystemEvent) -> Problem? {
        if report.type == "jbd2" || report.type == "jbd", !e.filesystem.isJournal {
            report.type = e.filesystem.rawValue
        }
        let l = e.location
        var problem: Problem? = nil
        var alsoAborted = false
        switch e.kind {
        case .mounted:
            report.mounted = true
        case .error(let function, let aborted):
            report.errors += 1
            if let function, report.errorFunctions.count < 16 || report.errorFunctions[function] != nil {
                report.errorFunctions[function, default: 0] += 1
            }
            problem = .error
            if aborted {
                if !report.journalAborted { report.journalAborted = true; report.journalAbortedAt = l }
                alsoAborted = true
            }
        case .journalAborted:
            if !report.journalAborted { report.journalAborted = true; report.journalAbortedAt = l }
            problem = .journalAborted
        case .remountedReadOnly:
            if !report.readOnly { report.readOnly = true; report.readOnlyAt = l }
            problem = .readOnly
        case .superblockWriteError:
            report.superblockWriteErrors += 1
            problem = .superblock
        case .journalSuperblockWriteError:
            report.journalSuperblockErrors += 1
            problem = .journalSuperblock
        case .journalDataFlushError:
            report.journalDataFlushErrors += 1
            problem = .journalDataFlush
        case .inodeWriteError(let inode, _, let status):
            report.inodeWriteErrors += 1
            if report.inodesWithWriteErrors.count < 16, !report.inodesWithWriteErrors.contains(inode) {
                report.inodesWithWriteErrors.append(inode)
            }
            report.inodeWriteStatuses[GuestDiskAnalysis.describeStatus(status), default: 0] += 1
            problem = .inodeWrite
        case .dataLoss:
            report.dataLossMessages += 1
            problem = .dataLoss
        case .metadataIOError:
            report.metadataIOErrors += 1
            problem = .metadata
        case .logIOError:
            report.logIOErrors += 1
            problem = .log
        case .shutdown:
            if !report.shutdown { report.shutdown = true; report.shutdownAt = l }
            problem = .shutdown
        case .corruption(let c):
            // A corruption report is an error too (ext4 prints it as `EXT4-fs error`).
            report.errors += 1
            if let function = c.function, report.errorFunctions.count < 16 || report.errorFunctions[function] != nil {
                report.errorFunctions[function, default: 0] += 1
            }
            addCorruption(c, e)
            if c.shutsDown, !report.shutdown { report.shutdown = true; report.shutdownAt = l }
            problem = .corruption
        case .btrfsDeviceStats(let stats):
            // Cumulative counters: the latest line per device is the state.
            if let i = report.btrfsDeviceStats.firstIndex(where: { $0.stats.bdev == stats.bdev }) {
                report.btrfsDeviceStats[i] = BtrfsDeviceStatsRecord(stats: stats, at: l)
            } else if report.btrfsDeviceStats.count < 16 {
                report.btrfsDeviceStats.append(BtrfsDeviceStatsRecord(stats: stats, at: l))
            }
            problem = stats.hasErrors ? .deviceStats : nil
        }
        guard let problem else { return nil }
        report.firstProblem = GuestLogLocation.earlier(report.firstProblem, l)
        report.lastProblem = GuestLogLocation.later(report.lastProblem, l)
        note(problem, e)
        if alsoAborted { note(.journalAborted, e) }
        // The shutdown is evidenced by the corruption line already quoted: not quoted twice.
        if case .corruption(let c) = e.kind, c.shutsDown { evidenceKinds |= Problem.shutdown.rawValue }
        return problem
    }

    /// Folds a corruption report into the finding of its structure, checksum flag and function.
    mutating func addCorruption(_ c: FilesystemCorruptionEvent, _ e: FilesystemEvent) {
        report.corruptionReports += 1
        let i: Int
        if let found = report.corruption.firstIndex(where: {
            $0.structure == c.structure && $0.checksum == c.checksum && $0.function == c.function
        }) {
            i = found
        } else if report.corruption.count < FilesystemReport.corruptionFindingLimit {
            report.corruption.append(CorruptionFinding(structure: c.structure, checksum: c.checksum, function: c.function,
                                                       first: EvidenceLine(location: e.location, message: e.message)))
            i = report.corruption.count - 1
        } else {
            report.corruptionReportsNotListed += 1
            return
        }
        // In place (report.corruption[i]....): a copy of the finding would copy its lists on every report.
        report.corruption[i].count += 1
        report.corruption[i].last = GuestLogLocation.later(report.corruption[i].last, e.location)
        if GuestLogLocation.ordered(e.location, report.corruption[i].first.location) {
            report.corruption[i].first = EvidenceLine(location: e.location, message: e.message)
        }
        // No closure: one capturing `missed` would be boxed on the heap for every report.
        let missedInode = Self.keep(c.inode, &report.corruption[i].inodes)
        let missedBlock = Self.keep(c.block, &report.corruption[i].blocks)
        let missedGroup = Self.keep(c.group, &report.corruption[i].groups)
        let missed = missedInode || missedBlock || missedGroup
        if c.block != nil, report.corruption[i].blockUnit == nil { report.corruption[i].blockUnit = c.blockUnit }
        if missed { report.corruption[i].valuesNotListed += 1 }
        if let p = c.process, report.corruption[i].processes.count < CorruptionFinding.valueLimit,
           !report.corruption[i].processes.contains(p) {
            report.corruption[i].processes.append(p)
        }
    }

    /// Adds `v` to `list` unless there or the list is full; true when it did not fit.
    static func keep(_ v: UInt64?, _ list: inout [UInt64]) -> Bool {
        guard let v, !list.contains(v) else { return false }
        if list.count < CorruptionFinding.valueLimit { list.append(v); return false }
        return true
    }

    mutating func note(_ kind: Problem, _ e: FilesystemEvent) {
        guard evidenceKinds & kind.rawValue == 0, report.evidence.count < 12 else { return }
        evidenceKinds |= kind.rawValue
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
        // Uptimes restart with each boot: only compare them within one.
        if a.boot != b.boot { return a.boot < b.boot }
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
