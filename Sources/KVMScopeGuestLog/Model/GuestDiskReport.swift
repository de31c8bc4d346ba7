/// The account of a guest kernel log: per device, what failed, where, how, when and with what
/// consequence. Built by GuestDiskAnalysis; the text and JSON renderers both read only this.
/// JSON keys are documented in the README (`kvmscope guest`); every key is always present,
/// with `null` where the log does not say.
public struct GuestDiskReport: Sendable, Encodable {
    /// The input's name (path or `<stdin>`).
    public var source: String
    public var input: GuestLogInputStats
    /// Block and buffer errors are listed individually up to this many in total; counts,
    /// ranges and everything else stay exact beyond it.
    public var detailLimit: Int
    public var devices: [GuestDeviceReport]
    public var suppressed: SuppressedSummary
    /// Events about devices beyond the analysis' device limit (256 names): counted, not analysed.
    public var eventsOverDeviceLimit: Int
    /// `INFO: task %s:%d blocked for more than %ld seconds.`: tasks stuck in D state. The line
    /// names no device, so these are not in `devices` (a jbd2 thread's name says its device).
    public var hungTasks: HungTaskSummary

    public init(source: String, input: GuestLogInputStats, detailLimit: Int, devices: [GuestDeviceReport],
                suppressed: SuppressedSummary, eventsOverDeviceLimit: Int, hungTasks: HungTaskSummary = HungTaskSummary()) {
        self.source = source; self.input = input; self.detailLimit = detailLimit
        self.devices = devices; self.suppressed = suppressed; self.eventsOverDeviceLimit = eventsOverDeviceLimit
        self.hungTasks = hungTasks
    }

    /// Whether the log shows any disk trouble (what `kvmscope guest` exits 1 for).
    public var hasDiskErrors: Bool { devices.contains { $0.hasErrors } || suppressed.total > 0 }

    enum CodingKeys: String, CodingKey {
        case source, input, boots, detailLimit, devices, suppressed, eventsOverDeviceLimit, hasDiskErrors, hungTasks
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(source, forKey: .source)
        try c.encode(input, forKey: .input)
        try c.encode(input.boots, forKey: .boots)
        try c.encode(detailLimit, forKey: .detailLimit)
        try c.encode(devices, forKey: .devices)
        try c.encode(suppressed, forKey: .suppressed)
        try c.encode(eventsOverDeviceLimit, forKey: .eventsOverDeviceLimit)
        try c.encode(hasDiskErrors, forKey: .hasDiskErrors)
        try c.encode(hungTasks, forKey: .hungTasks)
    }
}

/// One block device named in the log.
public struct GuestDeviceReport: Sendable, Encodable {
    public var name: String
    public var kind: BlockDeviceKind
    /// The latest size announcement (virtio_blk or sd), if the log has one.
    public var capacity: DiskCapacityEvent?

    public var blockErrors: [BlockErrorEvent]
    public var totalBlockErrors: Int
    /// Failed requests per operation; `unreported` for shapes that print none (≤4.20).
    public var operations: [String: Int]
    public var errorTypes: [String: Int]
    public var sectorRanges: [SectorRange]
    public var sectorRangesCoalesced: Bool
    public var sectorMergeGap: UInt64

    public var bufferErrors: [BufferErrorRecord]
    public var totalBufferErrors: Int
    public var lostBlocks: LostBlockCounts
    /// The filesystem block size implied by a buffer error naming block B right after a block
    /// error at sector S on the same device (S = B × size / 512), when all such pairs agree.
    public var inferredBlockSize: Int?

    public var filesystems: [FilesystemReport]
    public var scsi: SCSISummary?
    /// Timeouts, aborts and resets the guest's driver logged for this device (SCSI: the disk;
    /// NVMe: the controller, `nvme0`).
    public var timeouts: DeviceTimeoutSummary?
    /// SCSI commands the drive refused for want of a medium (an empty CD-ROM): not failures,
    /// and not in the counts above (nor their block and buffer errors).
    public var noMedium: NoMediumSummary?

    /// Messages the kernel's rate limiter dropped, attributed to this device (see SuppressedSummary).
    public var suppressed: Int
    public var suppressedByFunction: [String: Int]

    public var firstError: GuestLogLocation?
    public var lastError: GuestLogLocation?
    /// The boots (GuestBoot.index) in which this device had errors (first 64).
    public var boots: [Int] = []

    public init(name: String) {
        self.name = name
        kind = BlockDeviceKind(name: name)
        blockErrors = []; totalBlockErrors = 0; operations = [:]; errorTypes = [:]
        sectorRanges = []; sectorRangesCoalesced = false; sectorMergeGap = 8
        bufferErrors = []; totalBufferErrors = 0; lostBlocks = LostBlockCounts()
        filesystems = []; suppressed = 0; suppressedByFunction = [:]
    }

    public var hasErrors: Bool {
        totalBlockErrors > 0 || totalBufferErrors > 0 || suppressed > 0
            || filesystems.contains { $0.hasProblems } || (scsi?.hasProblems ?? false) || (timeouts?.total ?? 0) > 0
    }

    enum CodingKeys: String, CodingKey {
        case name, kind, parent, capacity, blockErrors, totalBlockErrors, blockErrorsTruncated, operations, errorTypes
        case sectorRanges, sectorRangesCoalesced, sectorMergeGap, bufferErrors, totalBufferErrors, bufferErrorsTruncated
        case lostBlocks, inferredBlockSize, filesystems, scsi, suppressed, suppressedByFunction, firstError, lastError
        case boots, hasErrors, timeouts, noMedium
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(kind.label, forKey: .kind)
        try c.encode(kind.parent, forKey: .parent)
        try c.encode(capacity, forKey: .capacity)
        try c.encode(blockErrors, forKey: .blockErrors)
        try c.encode(totalBlockErrors, forKey: .totalBlockErrors)
        try c.encode(blockErrors.count < totalBlockErrors, forKey: .blockErrorsTruncated)
        try c.encode(operations, forKey: .operations)
        try c.encode(errorTypes, forKey: .errorTypes)
        try c.encode(sectorRanges, forKey: .sectorRanges)
        try c.encode(sectorRangesCoalesced, forKey: .sectorRangesCoalesced)
        try c.encode(sectorMergeGap, forKey: .sectorMergeGap)
        try c.encode(bufferErrors, forKey: .bufferErrors)
        try c.encode(totalBufferErrors, forKey: .totalBufferErrors)
        try c.encode(bufferErrors.count < totalBufferErrors, forKey: .bufferErrorsTruncated)
        try c.encode(lostBlocks, forKey: .lostBlocks)
        try c.encode(inferredBlockSize, forKey: .inferredBlockSize)
        try c.encode(filesystems, forKey: .filesystems)
        try c.encode(scsi, forKey: .scsi)
        try c.encode(timeouts, forKey: .timeouts)
        try c.encode(noMedium, forKey: .noMedium)
        try c.encode(suppressed, forKey: .suppressed)
        try c.encode(suppressedByFunction, forKey: .suppressedByFunction)
        try c.encode(firstError, forKey: .firstError)
        try c.encode(lastError, forKey: .lastError)
        try c.encode(boots, forKey: .boots)
        try c.encode(hasErrors, forKey: .hasErrors)
    }
}

/// A buffer error as reported: the parsed event plus what the analysis concluded about loss.
public struct BufferErrorRecord: Sendable, Equatable, Encodable {
    public var event: BufferErrorEvent
    /// The line's own loss, or one the analysis resolved (`lossInferred` then says why).
    public var loss: BufferErrorLoss?
    /// nil when the line said it; otherwise the reason: `lost-page-write-line` (the next line
    /// was `lost page write due to I/O error on` the same device) or `ext4-writeback` (in a
    /// kernel ≥4.1 only ext4's writeback prints `Buffer I/O error on device`).
    public var lossInferred: String?

    public init(event: BufferErrorEvent, loss: BufferErrorLoss?, lossInferred: String? = nil) {
        self.event = event; self.loss = loss; self.lossInferred = lossInferred
    }

    enum CodingKeys: String, CodingKey {
        case logicalBlock, loss, lossInferred, shape, line, uptimeSeconds, wallClock, stampPrecisionMicroseconds, boot
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(event.logicalBlock, forKey: .logicalBlock)
        try c.encode(loss?.rawValue, forKey: .loss)
        try c.encode(lossInferred, forKey: .lossInferred)
        try c.encode(event.shape.rawValue, forKey: .shape)
        try c.encode(event.location.line, forKey: .line)
        try c.encode(event.location.time.uptimeSeconds, forKey: .uptimeSeconds)
        try c.encode(event.location.time.wallClock?.description, forKey: .wallClock)
        try c.encode(event.location.time.precisionMicroseconds, forKey: .stampPrecisionMicroseconds)
        try c.encode(event.location.boot, forKey: .boot)
    }
}

/// Blocks per kind of loss, from buffer errors.
public struct LostBlockCounts: Sendable, Equatable, Encodable {
    public var syncWrite = 0
    public var asyncWrite = 0
    public var asyncRead = 0
    /// `lost page write` (≤4.0): sync or async not stated.
    public var write = 0
    /// `Buffer I/O error on device` lines whose kind could not be told.
    public var unknown = 0
    public init() {}

    public var lostWrites: Int { syncWrite + asyncWrite + write }
}

/// A filesystem (or a journal without a recognised filesystem) on one device.
public struct FilesystemReport: Sendable, Encodable {
    /// `ext4`, `ext3`, `ext2`, `f2fs`, `xfs`, or `jbd2`/`jbd` when only journal messages named it.
    public var type: String
    public var device: String
    public var mounted = false
    public var readOnly = false
    public var readOnlyAt: GuestLogLocation?
    public var journalAborted = false
    public var journalAbortedAt: GuestLogLocation?
    public var shutdown = false
    public var shutdownAt: GuestLogLocation?
    public var errors = 0
    public var errorFunctions: [String: Int] = [:]
    public var superblockWriteErrors = 0
    public var journalSuperblockErrors = 0
    public var journalDataFlushErrors = 0
    public var inodeWriteErrors = 0
    /// Inodes whose data writeback failed (ext4_end_bio), first 16.
    public var inodesWithWriteErrors: [UInt64] = []
    /// blk_status_t / errno values printed with those failures, decoded.
    public var inodeWriteStatuses: [String: Int] = [:]
    public var metadataIOErrors = 0
    public var logIOErrors = 0
    public var dataLossMessages = 0
    public var firstProblem: GuestLogLocation?
    public var lastProblem: GuestLogLocation?
    /// The first line of each kind of problem, in log order (at most 12).
    public var evidence: [EvidenceLine] = []
    /// Reports of damaged metadata or data (all of them, whatever `corruption` could keep).
    public var corruptionReports = 0
    /// Those reports folded by structure, checksum and function (at most `corruptionFindingLimit`).
    public var corruption: [CorruptionFinding] = []
    /// Reports of further kinds once the list was full: counted here only.
    public var corruptionReportsNotListed = 0
    /// btrfs: the latest error counters of each device (at most 16 devices).
    public var btrfsDeviceStats: [BtrfsDeviceStatsRecord] = []

    public static let corruptionFindingLimit = 16

    public init(type: String, device: String) {
        self.type = type; self.device = device
    }

    public var hasProblems: Bool {
        readOnly || journalAborted || shutdown || errors > 0 || superblockWriteErrors > 0 || journalSuperblockErrors > 0
            || journalDataFlushErrors > 0 || inodeWriteErrors > 0 || metadataIOErrors > 0 || logIOErrors > 0
            || dataLossMessages > 0 || corruptionReports > 0 || btrfsDeviceStats.contains { $0.stats.hasErrors }
    }

    enum CodingKeys: String, CodingKey {
        case type, device, mounted, readOnly, readOnlyAt, journalAborted, journalAbortedAt, shutdown, shutdownAt
        case errors, errorFunctions, superblockWriteErrors, journalSuperblockErrors, journalDataFlushErrors
        case inodeWriteErrors, inodesWithWriteErrors, inodeWriteStatuses, metadataIOErrors, logIOErrors
        case dataLossMessages, firstProblem, lastProblem, evidence
        case corruptionReports, corruption, corruptionReportsNotListed, btrfsDeviceStats
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        try c.encode(device, forKey: .device)
        try c.encode(mounted, forKey: .mounted)
        try c.encode(readOnly, forKey: .readOnly)
        try c.encode(readOnlyAt, forKey: .readOnlyAt)
        try c.encode(journalAborted, forKey: .journalAborted)
        try c.encode(journalAbortedAt, forKey: .journalAbortedAt)
        try c.encode(shutdown, forKey: .shutdown)
        try c.encode(shutdownAt, forKey: .shutdownAt)
        try c.encode(errors, forKey: .errors)
        try c.encode(errorFunctions, forKey: .errorFunctions)
        try c.encode(superblockWriteErrors, forKey: .superblockWriteErrors)
        try c.encode(journalSuperblockErrors, forKey: .journalSuperblockErrors)
        try c.encode(journalDataFlushErrors, forKey: .journalDataFlushErrors)
        try c.encode(inodeWriteErrors, forKey: .inodeWriteErrors)
        try c.encode(inodesWithWriteErrors, forKey: .inodesWithWriteErrors)
        try c.encode(inodeWriteStatuses, forKey: .inodeWriteStatuses)
        try c.encode(metadataIOErrors, forKey: .metadataIOErrors)
        try c.encode(logIOErrors, forKey: .logIOErrors)
        try c.encode(dataLossMessages, forKey: .dataLossMessages)
        try c.encode(firstProblem, forKey: .firstProblem)
        try c.encode(lastProblem, forKey: .lastProblem)
        try c.encode(evidence, forKey: .evidence)
        try c.encode(corruptionReports, forKey: .corruptionReports)
        try c.encode(corruption, forKey: .corruption)
        try c.encode(corruptionReportsNotListed, forKey: .corruptionReportsNotListed)
        try c.encode(btrfsDeviceStats, forKey: .btrfsDeviceStats)
    }
}

/// A log line kept verbatim as evidence.
public struct EvidenceLine: Sendable, Equatable, Encodable {
    public var location: GuestLogLocation
    public var message: String

    public init(location: GuestLogLocation, message: String) {
        self.location = location; self.message = message
    }

    enum CodingKeys: String, CodingKey { case line, uptimeSeconds, wallClock, stampPrecisionMicroseconds, boot, message }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(location.line, forKey: .line)
        try c.encode(location.time.uptimeSeconds, forKey: .uptimeSeconds)
        try c.encode(location.time.wallClock?.description, forKey: .wallClock)
        try c.encode(location.time.precisionMicroseconds, forKey: .stampPrecisionMicroseconds)
        try c.encode(location.boot, forKey: .boot)
        try c.encode(message, forKey: .message)
    }
}

/// What the SCSI disk driver said about failed commands on one disk.
public struct SCSISummary: Sendable, Equatable, Encodable {
    public var address: String?
    /// `hostbyte=... driverbyte=...` → count.
    public var results: [String: Int] = [:]
    public var senseKeys: [String: Int] = [:]
    public var additionalSense: [String: Int] = [:]
    public var unhandled = 0
    public var offlineRejections = 0
    /// Failed commands (`FAILED Result:` groups, or sense/CDB lines without one) logged.
    public var commandFailures = 0
    /// Those failures per request (same operation and first block), each with its decoded
    /// result, sense, CDB and tied block-layer error; at most `failedRequestLimit`.
    public var failedRequests: [SCSICommandFailure] = []
    /// Failures of further requests once the list was full: counted here only.
    public var failuresNotListed = 0
    /// Listed requests the guest logged failing more than once.
    public var retriedRequests = 0

    public static let failedRequestLimit = 64

    public init() {}

    public var hasProblems: Bool {
        !results.isEmpty || !senseKeys.isEmpty || !additionalSense.isEmpty || unhandled > 0 || offlineRejections > 0
            || commandFailures > 0
    }

    enum CodingKeys: String, CodingKey {
        case address, results, senseKeys, additionalSense, unhandled, offlineRejections
        case commandFailures, failedRequests, failuresNotListed, retriedRequests
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(address, forKey: .address)
        try c.encode(results, forKey: .results)
        try c.encode(senseKeys, forKey: .senseKeys)
        try c.encode(additionalSense, forKey: .additionalSense)
        try c.encode(unhandled, forKey: .unhandled)
        try c.encode(offlineRejections, forKey: .offlineRejections)
        try c.encode(commandFailures, forKey: .commandFailures)
        try c.encode(failedRequests, forKey: .failedRequests)
        try c.encode(failuresNotListed, forKey: .failuresNotListed)
        try c.encode(retriedRequests, forKey: .retriedRequests)
    }
}

/// A drive with no medium: its SCSI commands failed with NOT READY / MEDIUM NOT PRESENT
/// (ASC 3A), which is what an empty (virtual) CD-ROM answers when something reads it.
public struct NoMediumSummary: Sendable, Equatable, Encodable {
    /// Commands refused (each `FAILED Result:` group with that sense).
    public var count = 0
    /// The kernel's words for the first (`Medium not present`, `… - tray open`).
    public var additionalSense: String?
    /// `read`, `write`, … of the first command's CDB (nil without one).
    public var operation: String?
    /// The block-layer and buffer error lines that went with them (not counted as failures).
    public var blockErrors = 0
    public var bufferErrors = 0
    public var first: GuestLogLocation
    public var last: GuestLogLocation

    public init(first: GuestLogLocation, last: GuestLogLocation) { self.first = first; self.last = last }

    enum CodingKeys: String, CodingKey { case count, additionalSense, operation, blockErrors, bufferErrors, firstLine, first, last }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(count, forKey: .count)
        try c.encode(additionalSense, forKey: .additionalSense)
        try c.encode(operation, forKey: .operation)
        try c.encode(blockErrors, forKey: .blockErrors)
        try c.encode(bufferErrors, forKey: .bufferErrors)
        try c.encode(first.line, forKey: .firstLine)
        try c.encode(first, forKey: .first)
        try c.encode(last, forKey: .last)
    }
}

/// Rate-limited messages for the whole log. `%s: %d callbacks suppressed` names the function,
/// not the device: suppressed block/buffer messages are attributed to the device of the next
/// message of the same kind (the limiter prints the count just before letting one through),
/// or of the previous one at the end of the log; with neither they stay `unattributed`.
public struct SuppressedSummary: Sendable, Equatable, Encodable {
    public var total = 0
    public var byFunction: [String: Int] = [:]
    public var blockErrors = 0
    public var bufferErrors = 0
    public var other = 0
    public var unattributed = 0
    public init() {}
}

// MARK: - JSON for the event types the report embeds

extension BlockErrorEvent: Encodable {
    enum CodingKeys: String, CodingKey {
        case sector, operation, reportedOperation, errorType, errno, uptimeSeconds, wallClock, stampPrecisionMicroseconds
        case boot, line, opCode, flags, physSegments, prioClass, caller, kernelShape, kernels
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(sector, forKey: .sector)
        try c.encode(operation?.rawValue, forKey: .operation)
        try c.encode(reportedOperation?.rawValue, forKey: .reportedOperation)
        try c.encode(errorType.text, forKey: .errorType)
        try c.encode(errorType.errnoName, forKey: .errno)
        try c.encode(location.time.uptimeSeconds, forKey: .uptimeSeconds)
        try c.encode(location.time.wallClock?.description, forKey: .wallClock)
        try c.encode(location.time.precisionMicroseconds, forKey: .stampPrecisionMicroseconds)
        try c.encode(location.boot, forKey: .boot)
        try c.encode(location.line, forKey: .line)
        try c.encode(opCode, forKey: .opCode)
        try c.encode(flags, forKey: .flags)
        try c.encode(physSegments, forKey: .physSegments)
        try c.encode(prioClass, forKey: .prioClass)
        try c.encode(caller, forKey: .caller)
        try c.encode(shape.rawValue, forKey: .kernelShape)
        try c.encode(shape.kernels, forKey: .kernels)
    }
}

extension GuestLogLocation: Encodable {
    enum CodingKeys: String, CodingKey { case line, uptimeSeconds, wallClock, stampPrecisionMicroseconds, boot }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(line, forKey: .line)
        try c.encode(time.uptimeSeconds, forKey: .uptimeSeconds)
        try c.encode(time.wallClock?.description, forKey: .wallClock)
        try c.encode(time.precisionMicroseconds, forKey: .stampPrecisionMicroseconds)
        try c.encode(boot, forKey: .boot)
    }
}

extension DiskCapacityEvent: Encodable {
    enum CodingKeys: String, CodingKey { case driver, logicalBlocks, logicalBlockSize, bytes, sectors, resized, line }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(driver, forKey: .driver)
        try c.encode(logicalBlocks, forKey: .logicalBlocks)
        try c.encode(logicalBlockSize, forKey: .logicalBlockSize)
        try c.encode(bytes, forKey: .bytes)
        try c.encode(sectors, forKey: .sectors)
        try c.encode(resized, forKey: .resized)
        try c.encode(location.line, forKey: .line)
    }
}

extension SectorRange: Encodable {
    enum CodingKeys: String, CodingKey { case first, last, errors, operations }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(first, forKey: .first)
        try c.encode(last, forKey: .last)
        try c.encode(errors, forKey: .errors)
        try c.encode(operations.operations.map(\.rawValue), forKey: .operations)
    }
}

extension GuestLogInputStats: Encodable {
    enum CodingKeys: String, CodingKey {
        case bytes, lines, styles, stampedLines, recognisedKernelLines, notKernelLines, unrecognisedLines
        case skippedLines, binaryLines, overlongLines, malformedLines
        case firstMalformedLine, duplicateEvents, endedMidLine, firstUptimeSeconds, lastUptimeSeconds, bootCount
        case midLineStamps, journalRecords, skippedJournalRecords, journalLines
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(bytes, forKey: .bytes)
        try c.encode(lines, forKey: .lines)
        try c.encode(Dictionary(uniqueKeysWithValues: styles.map { ($0.key.rawValue, $0.value) }), forKey: .styles)
        try c.encode(stampedLines, forKey: .stampedLines)
        try c.encode(recognisedKernelLines, forKey: .recognisedKernelLines)
        try c.encode(notKernelLines, forKey: .notKernelLines)
        try c.encode(unrecognisedLines, forKey: .unrecognisedLines)
        try c.encode(skippedLines, forKey: .skippedLines)
        try c.encode(binaryLines, forKey: .binaryLines)
        try c.encode(overlongLines, forKey: .overlongLines)
        try c.encode(malformedLines, forKey: .malformedLines)
        try c.encode(firstMalformedLine, forKey: .firstMalformedLine)
        try c.encode(duplicateEvents, forKey: .duplicateEvents)
        try c.encode(endedMidLine, forKey: .endedMidLine)
        try c.encode(firstUptimeMicroseconds.map { Double($0) / 1e6 }, forKey: .firstUptimeSeconds)
        try c.encode(lastUptimeMicroseconds.map { Double($0) / 1e6 }, forKey: .lastUptimeSeconds)
        try c.encode(bootCount, forKey: .bootCount)
        try c.encode(midLineStamps, forKey: .midLineStamps)
        try c.encode(journalRecords, forKey: .journalRecords)
        try c.encode(skippedJournalRecords, forKey: .skippedJournalRecords)
        try c.encode(journalLines, forKey: .journalLines)
    }
}
