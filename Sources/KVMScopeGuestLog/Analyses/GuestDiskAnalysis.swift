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
    private var lastDevice = -1
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
    private var hungTasks = HungTaskSummary()

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
            devices[d].scsiFailures.logicalBlockSize = e.logicalBlockSize
        case .suppressed(let e): addSuppressed(e)
        case .hungTask(let e): addHungTask(e)
        case .deviceTimeout(let e): addTimeout(e)
        }
    }

    // MARK: - devices

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
        if devices[d].scsiDisk || devices[d].scsiFailures.hasFailures {
            devices[d].scsiFailures.blockError(e)
        }
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
        // In place: a copy of the summary would make every bump copy its dictionaries.
        if devices[d].report.scsi == nil { devices[d].report.scsi = SCSISummary() }
        if devices[d].report.scsi!.address != e.address { devices[d].report.scsi!.address = e.address }
        func bump(_ dict: inout [String: Int], _ key: String) {
            if dict.count < 32 || dict[key] != nil { dict[key, default: 0] += 1 } else { dict["other", default: 0] += 1 }
        }
        switch e.kind {
        case .result(let hb, let db): bump(&devices[d].report.scsi!.results, "hostbyte=\(hb) driverbyte=\(db)")
        case .senseKey(let k): bump(&devices[d].report.scsi!.senseKeys, k)
        case .additionalSense(let a): bump(&devices[d].report.scsi!.additionalSense, a)
        case .unhandled: devices[d].report.scsi!.unhandled += 1
        case .offline: devices[d].report.scsi!.offlineRejections += 1
        case .cdb: break
        }
        devices[d].scsiFailures.add(e)
        noteError(d, e.location)
    }

    // MARK: - hung tasks, timeouts

    private mutating func addHungTask(_ e: HungTaskEvent) {
        hungTasks.total += 1
        if hungTasks.tasks.count < HungTaskSummary.listLimit {
            hungTasks.tasks.append(HungTaskRecord(event: e))
        } else {
            hungTasks.tasksNotListed += 1
        }
        hungTasks.maxBlockedSeconds = max(hungTasks.maxBlockedSeconds ?? 0, e.blockedSeconds)
        hungTasks.first = GuestLogLocation.earlier(hungTasks.first, e.location)
        hungTasks.last = GuestLogLocation.later(hungTasks.last, e.location)
    }

    private mutating func addTimeout(_ e: DeviceTimeoutEvent) {
        var name = e.device
        if let address = e.address {
            if name.hasPrefix("sd ") || name.hasPrefix("sr ") { if let known = scsiAddresses[address] { name = known } }
            else if scsiAddresses.count < 256 { scsiAddresses[address] = name }
        }
        guard let d = device(name) else { return }
        var t = devices[d].timeouts ?? DeviceTimeoutSummary()
        t.total += 1
        t.counts[e.kind.rawValue, default: 0] += 1
        if let w = e.waitedSeconds { t.maxWaitedSeconds = max(t.maxWaitedSeconds ?? 0, w) }
        t.first = GuestLogLocation.earlier(t.first, e.location)
        t.last = GuestLogLocation.later(t.last, e.location)
        let bit = UInt32(1) << UInt32(DeviceTimeoutKind.allCases.firstIndex(of: e.kind) ?? 0)
        if devices[d].timeoutEvidenceKinds & bit == 0, t.evidence.count < DeviceTimeoutSummary.evidenceLimit {
            devices[d].timeoutEvidenceKinds |= bit
            t.evidence.append(EvidenceLine(location: e.location, message: e.message))
        }
        devices[d].timeouts = t
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
                               suppressed: copy.suppressed, eventsOverDeviceLimit: copy.eventsOverDeviceLimit,
                               hungTasks: copy.hungTasks)
    }
}
