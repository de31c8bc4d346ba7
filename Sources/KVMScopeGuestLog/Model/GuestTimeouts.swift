/// `INFO: task %s:%d blocked for more than %ld seconds.` (kernel/hung_task.c hung_task_info):
/// a task stayed in uninterruptible sleep (D state), usually waiting for I/O, longer than
/// kernel.hung_task_timeout_secs (120 by default). The line names no device; a journal thread
/// (`jbd2/vda1-8`) names its device in its task name.
public struct HungTaskEvent: Equatable, Sendable {
    /// The task's comm (at most 15 bytes in the kernel; may contain blanks and `/`).
    public var task: String
    public var pid: Int
    public var blockedSeconds: UInt64
    public var location: GuestLogLocation

    public init(task: String, pid: Int, blockedSeconds: UInt64, location: GuestLogLocation) {
        self.task = task; self.pid = pid; self.blockedSeconds = blockedSeconds; self.location = location
    }

    /// The block device a jbd2 journal thread's name carries (`jbd2/vda1-8` → `vda1`), or nil.
    public var journalDevice: String? {
        guard task.hasPrefix("jbd2/"), let dash = task.lastIndex(of: "-") else { return nil }
        let name = task[task.index(task.startIndex, offsetBy: 5)..<dash]
        return name.isEmpty ? nil : String(name)
    }
}

/// A guest driver giving up waiting for a device, or recovering from it: SCSI aborts and
/// resets, commands timed out by the SCSI midlayer, NVMe timeouts and controller resets.
/// These come from the guest's side: the device (QEMU) did not answer in time, or the guest
/// decided it had not. Formats are quoted in SCSIMatcher and NVMeMatcher.
public struct DeviceTimeoutEvent: Equatable, Sendable {
    /// `sda` for SCSI disk lines that name it, `sd H:C:T:L` when only the address is printed,
    /// the NVMe controller (`nvme0`, not a namespace) for NVMe lines.
    public var device: String
    /// SCSI `H:C:T:L`, when the line has one.
    public var address: String?
    public var kind: DeviceTimeoutKind
    /// The request's tag (`tag#%d`, NVMe `I/O %d`).
    public var tag: Int?
    /// NVMe queue (`QID %d`; 0 is the admin queue).
    public var queue: Int?
    /// `timing out command, waited %lus`.
    public var waitedSeconds: UInt64?
    public var message: String
    public var location: GuestLogLocation

    public init(device: String, address: String? = nil, kind: DeviceTimeoutKind, tag: Int? = nil, queue: Int? = nil,
                waitedSeconds: UInt64? = nil, message: String, location: GuestLogLocation) {
        self.device = device; self.address = address; self.kind = kind; self.tag = tag; self.queue = queue
        self.waitedSeconds = waitedSeconds; self.message = message; self.location = location
    }
}

public enum DeviceTimeoutKind: String, CaseIterable, Sendable, Codable {
    /// virtio_scsi's eh_abort_handler: `[sdX] tag#%d abort` (drivers/scsi/virtio_scsi.c virtscsi_abort):
    /// the midlayer timed the command out and asked the device to abort it.
    case scsiAbort = "scsi-abort"
    /// virtio_scsi's eh_device_reset_handler: `device reset` (virtscsi_device_reset).
    case scsiDeviceReset = "scsi-device-reset"
    /// `[sdX] tag#%d timing out command, waited %lus` (drivers/scsi/scsi_lib.c
    /// scsi_cmd_runtime_exceeced): the command's whole retry budget ran out.
    case scsiCommandTimeout = "scsi-command-timeout"
    /// `Device offlined - not ready after error recovery` (scsi_error.c scsi_eh_offline_sdevs):
    /// error handling failed; every later request is rejected.
    case scsiDeviceOfflined = "scsi-device-offlined"
    /// NVMe `I/O %d QID %d timeout, aborting` (drivers/nvme/host/pci.c nvme_timeout).
    case nvmeAbort = "nvme-abort"
    /// NVMe `I/O %d QID %d timeout, reset controller`.
    case nvmeControllerReset = "nvme-controller-reset"
    /// NVMe `I/O %d QID %d timeout, disable controller`.
    case nvmeControllerDisable = "nvme-controller-disable"
}

/// Hung-task reports of the whole log.
public struct HungTaskSummary: Sendable, Equatable, Encodable {
    public static let listLimit = 16

    public var total = 0
    /// The first `listLimit` reports, in log order.
    public var tasks: [HungTaskRecord] = []
    public var tasksNotListed = 0
    public var maxBlockedSeconds: UInt64?
    public var first: GuestLogLocation?
    public var last: GuestLogLocation?

    public init() {}
}

public struct HungTaskRecord: Sendable, Equatable, Encodable {
    public var event: HungTaskEvent

    public init(event: HungTaskEvent) { self.event = event }

    enum CodingKeys: String, CodingKey { case task, pid, blockedSeconds, journalDevice, at }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(event.task, forKey: .task)
        try c.encode(event.pid, forKey: .pid)
        try c.encode(event.blockedSeconds, forKey: .blockedSeconds)
        try c.encode(event.journalDevice, forKey: .journalDevice)
        try c.encode(event.location, forKey: .at)
    }
}

/// Timeouts, aborts and resets on one device.
public struct DeviceTimeoutSummary: Sendable, Equatable, Encodable {
    public static let evidenceLimit = 8

    public var total = 0
    /// Per DeviceTimeoutKind raw value.
    public var counts: [String: Int] = [:]
    public var maxWaitedSeconds: UInt64?
    public var first: GuestLogLocation?
    public var last: GuestLogLocation?
    /// The first line of each kind, in log order (at most `evidenceLimit`).
    public var evidence: [EvidenceLine] = []

    public init() {}
}

// Hand-written encoders: synthesized ones leave nil optionals out, and the JSON contract has
// every key present, null when unknown.
extension HungTaskSummary {
    enum CodingKeys: String, CodingKey { case total, tasks, tasksNotListed, maxBlockedSeconds, first, last }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(total, forKey: .total)
        try c.encode(tasks, forKey: .tasks)
        try c.encode(tasksNotListed, forKey: .tasksNotListed)
        try c.encode(maxBlockedSeconds, forKey: .maxBlockedSeconds)
        try c.encode(first, forKey: .first)
        try c.encode(last, forKey: .last)
    }
}

extension DeviceTimeoutSummary {
    enum CodingKeys: String, CodingKey { case total, counts, maxWaitedSeconds, first, last, evidence }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(total, forKey: .total)
        try c.encode(counts, forKey: .counts)
        try c.encode(maxWaitedSeconds, forKey: .maxWaitedSeconds)
        try c.encode(first, forKey: .first)
        try c.encode(last, forKey: .last)
        try c.encode(evidence, forKey: .evidence)
    }
}
