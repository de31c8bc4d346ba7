import KVMScopeCore
import KVMScopeQMP
import KVMScopeTrace
import KVMScopeGuestLog
import KVMScopeHost
/// `kvmscope explain`'s answer: the guest's story, the host's, the QMP events, how they line
/// up, and the verdict. Text and JSON are both rendered from this one value; the `guest` and
/// `host` parts are exactly what `kvmscope guest --json` and `kvmscope trace --json` print.
public struct ExplainReport: Sendable, Encodable {
    /// Where the failure started.
    public enum Origin: String, Sendable, Encodable {
        /// The storage under QEMU (image file, host filesystem, NBD/RBD/iSCSI...) failed.
        case hostStorage = "host-storage"
        /// QEMU refused the guest's request before touching storage.
        case qemuRejected = "qemu-rejected"
        /// The guest logged errors for which the host, watching the same disk over the same
        /// time, saw every request complete.
        case guestInternal = "guest-internal"
        /// The host inputs cannot see the disk with errors (its bus is not in the trace, the
        /// trace does not cover the time, or no host input was given): `coverage` says what would.
        case notCovered = "not-covered"
        /// Not enough evidence to tell.
        case unknown
    }

    public struct Verdict: Sendable, Encodable {
        public var origin: Origin
        /// The answer in a few sentences, for people.
        public var summary: String
        /// Below QEMU, the layer the host kernel log (or its silence) points at: one of
        /// HostLayerLink's `layer` values, when every linked failure agrees; null without a
        /// host log or when they differ.
        @NullEncoded public var layer: String? = nil
        /// The host device the host kernel named (`loop0`, `sdb`, `dm-3`), with `layer`.
        @NullEncoded public var hostDevice: String? = nil
    }

    /// A guest block error and the host request behind it.
    public struct Match: Sendable, Encodable, Equatable {
        /// Index into `guestBlockErrors` (all devices' listed block errors, in report order).
        public var guest: Int
        /// Index into `host.failures` (virtio-blk); nil when the match is to a SCSI request or
        /// to a QMP event only.
        public var host: Int?
        /// Index into `host.scsi.failures`: the last attempt of the SCSI request the guest logged.
        public var scsi: Int?
        /// How many times QEMU failed that SCSI request (the guest retried it `attempts - 1` times).
        public var attempts: Int?
        /// Index into `qmp.ioErrors` of the BLOCK_IO_ERROR QEMU sent for it, when there is one.
        public var qmp: Int?
        public var guestDevice: String
        public var hostDevice: String
        public var operation: String
        /// Host time minus (guest uptime + clock offset): how well the pair lines up in time.
        public var timeDeltaSeconds: Double?
    }

    /// A guest block error, flattened across devices so `matches[].guest` can point at it.
    public struct GuestBlockErrorRef: Sendable, Encodable, Equatable {
        public var device: String
        public var sector: UInt64
        public var operation: String?
        public var uptime: Double?
        public var line: Int
        /// The guest boot the error belongs to (1-based, as `guest.boots[]`), when known.
        public var boot: Int?
        /// The wall-clock stamp as the log printed it (ISO 8601 when it has a year), when it has one.
        public var wallClock: String?
    }

    /// Something that does not match one-to-one, and why.
    public struct Unmatched: Sendable, Encodable, Equatable {
        /// `guest` (index into guestBlockErrors), `host` (index into host.failures) or `qmp`
        /// (index into qmp.ioErrors).
        public var side: EvidenceSource
        public var index: Int
        public var reason: String
    }

    /// What the guest's times are: its uptime, or a wall clock (journalctl, dmesg -T) whose
    /// zone may be unknown.
    public enum GuestClock: Equatable, Sendable, Encodable {
        case uptime
        case wall(zoneKnown: Bool)
        public var label: String { if case .uptime = self { return "uptime" }; return "wall-clock" }
        /// JSON: `"uptime"` or `"wall-clock"`.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            try c.encode(label)
        }
    }

    public struct Inputs: Sendable, Encodable {
        public var guest: String?
        public var trace: String?
        public var qmp: String?
        public var qemuCommandLine: String?
        /// The host's own kernel log (`--host-log`, or `host-dmesg*`/`host-kern*`/`host-journal*`
        /// in a capture directory).
        public var hostLog: String?
        /// Inputs left out, and why (a directory's console with no kernel line, a host log).
        public var notes: [String] = []
        /// How much of each input was understood, one entry per input read.
        public var understood: [ExplainInputUnderstanding] = []
    }

    public var inputs: Inputs
    public var guest: GuestDiskReport?
    public var host: TraceReport?
    public var qmp: QMPTimeline?
    public var guestBlockErrors: [GuestBlockErrorRef]
    public var matches: [Match]
    public var unmatched: [Unmatched]
    /// `uptime` or `wall-clock`: what the guest log's times are (null without guest times).
    public var guestClock: GuestClock?
    /// Host wall clock minus guest uptime (≈ when the guest booted, seconds since the epoch),
    /// estimated from the matches; nil when nothing matched in time.
    public var clockOffsetSeconds: Double?
    /// Largest difference between the matches' own offsets: small when the matches agree.
    public var clockOffsetSpreadSeconds: Double?
    /// How finely the guest's stamps resolve time (1 for journalctl short / syslog stamps,
    /// 0.000001 for printk's): the offset is known no better than this.
    public var guestStampPrecisionSeconds: Double?
    /// Per guest boot with a clock of its own (a log with several boots): when it started by
    /// the host's clock (host time − its uptime), from its own matches.
    public var bootClockOffsets: [BootClockOffset]
    /// Per guest disk with trouble: what the host inputs can say about it.
    public var coverage: [DeviceCoverage]
    /// The disks QEMU's command line defines (null when no command line was given).
    public var qemuDisks: [QEMUDiskConfig]?
    /// The werror/rerror policies the evidence allows, per drive and operation.
    public var errorPolicies: [ErrorPolicyEvidence]
    /// Whether the VM was still paused when the inputs end (QMP STOP/RESUME, trace runstate);
    /// nil when they do not say.
    public var vmPausedAtEnd: Bool?
    /// The host's kernel log, read as `kvmscope host --json` reads it (null when not given).
    public var hostKernel: HostKernelReport?
    /// Per failure QEMU got from its storage: the chain guest → QEMU → host kernel.
    public var layers: [HostLayerLink] = []
    /// Where the command line's images are on this host (explain run on the VM's host): the
    /// device under each, its stack, free space and extents.
    public var hostImages: [HostImageLocation] = []
    /// QEMU's clock minus the host kernel log's, estimated from the failures tied across the
    /// two (both are this machine's clocks: far from 0 means dmesg's wall-clock conversion
    /// drifted, or the log is of another time); null when nothing tied.
    public var hostClockOffsetSeconds: Double?
    /// How the host log's stamps were read: `wall-clock`, `wall-clock-no-zone` or `uptime`.
    public var hostClockBasis: String?
    public var verdict: Verdict
    /// The matched story, one line per guest error ↔ host request ↔ QMP event.
    public var evidence: [String]
    /// Guest, host and QMP events merged in time order on the host's clock (first 200).
    public var timeline: [ExplainTimelineEntry]
    public var nextSteps: [String]
    /// What each input that was not given would have told.
    public var missing: [String]
    /// Inputs that disagree (another VM, another disk, clocks far apart): said plainly.
    public var disagreements: [String]

    /// Exit status of `kvmscope explain`: 1 when there is anything to explain.
    public var hasFindings: Bool {
        !guestBlockErrors.isEmpty || (guest?.hasDiskErrors ?? false) || (host?.exitStatus ?? 0) != 0
            || (host?.failuresTotal ?? 0) > 0 || !(qmp?.ioErrors.isEmpty ?? true)
    }

    enum CodingKeys: String, CodingKey {
        case inputs, guest, host, qmp, guestBlockErrors, matches, unmatched, guestClock, clockOffsetSeconds
        case clockOffsetSpreadSeconds, guestStampPrecisionSeconds, bootClockOffsets, coverage, qemuDisks, errorPolicies, vmPausedAtEnd
        case hostKernel, layers, hostImages, hostClockOffsetSeconds, hostClockBasis
        case verdict, evidence, timeline, nextSteps, missing, disagreements
    }

    /// Every documented key is always present (`null` when an input was not given).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(inputs, forKey: .inputs)
        try c.encode(guest, forKey: .guest)
        try c.encode(host, forKey: .host)
        try c.encode(qmp, forKey: .qmp)
        try c.encode(guestBlockErrors, forKey: .guestBlockErrors)
        try c.encode(matches, forKey: .matches)
        try c.encode(unmatched, forKey: .unmatched)
        try c.encode(guestClock, forKey: .guestClock)
        try c.encode(clockOffsetSeconds, forKey: .clockOffsetSeconds)
        try c.encode(clockOffsetSpreadSeconds, forKey: .clockOffsetSpreadSeconds)
        try c.encode(guestStampPrecisionSeconds, forKey: .guestStampPrecisionSeconds)
        try c.encode(bootClockOffsets, forKey: .bootClockOffsets)
        try c.encode(coverage, forKey: .coverage)
        try c.encode(qemuDisks, forKey: .qemuDisks)
        try c.encode(errorPolicies, forKey: .errorPolicies)
        try c.encode(vmPausedAtEnd, forKey: .vmPausedAtEnd)
        try c.encode(hostKernel, forKey: .hostKernel)
        try c.encode(layers, forKey: .layers)
        try c.encode(hostImages, forKey: .hostImages)
        try c.encode(hostClockOffsetSeconds, forKey: .hostClockOffsetSeconds)
        try c.encode(hostClockBasis, forKey: .hostClockBasis)
        try c.encode(verdict, forKey: .verdict)
        try c.encode(evidence, forKey: .evidence)
        try c.encode(timeline, forKey: .timeline)
        try c.encode(nextSteps, forKey: .nextSteps)
        try c.encode(missing, forKey: .missing)
        try c.encode(disagreements, forKey: .disagreements)
    }
}

extension ExplainReport.Inputs {
    enum CodingKeys: String, CodingKey { case guest, trace, qmp, qemuCommandLine, hostLog, notes, understood }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(guest, forKey: .guest)
        try c.encode(trace, forKey: .trace)
        try c.encode(qmp, forKey: .qmp)
        try c.encode(qemuCommandLine, forKey: .qemuCommandLine)
        try c.encode(hostLog, forKey: .hostLog)
        try c.encode(notes, forKey: .notes)
        try c.encode(understood, forKey: .understood)
    }
}

extension ExplainReport.Match {
    enum CodingKeys: String, CodingKey { case guest, host, scsi, attempts, qmp, guestDevice, hostDevice, operation, timeDeltaSeconds }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(guest, forKey: .guest)
        try c.encode(host, forKey: .host)
        try c.encode(scsi, forKey: .scsi)
        try c.encode(attempts, forKey: .attempts)
        try c.encode(qmp, forKey: .qmp)
        try c.encode(guestDevice, forKey: .guestDevice)
        try c.encode(hostDevice, forKey: .hostDevice)
        try c.encode(operation, forKey: .operation)
        try c.encode(timeDeltaSeconds, forKey: .timeDeltaSeconds)
    }
}

extension ExplainReport.GuestBlockErrorRef {
    enum CodingKeys: String, CodingKey { case device, sector, operation, uptime = "uptimeSeconds", line, boot, wallClock }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(device, forKey: .device)
        try c.encode(sector, forKey: .sector)
        try c.encode(operation, forKey: .operation)
        try c.encode(uptime, forKey: .uptime)
        try c.encode(line, forKey: .line)
        try c.encode(boot, forKey: .boot)
        try c.encode(wallClock, forKey: .wallClock)
    }
}

public struct BootClockOffset: Sendable, Encodable, Equatable {
    public var boot: Int
    public var clockOffsetSeconds: Double
}

/// Which input a piece of explain's evidence came from.
public enum EvidenceSource: String, Sendable, Codable, CustomStringConvertible {
    /// The guest's kernel log.
    case guest
    /// QEMU's trace (the host side of each request).
    case host
    /// The QMP event stream.
    case qmp
    /// The host's own kernel log (timeline entries only).
    case hostKernel = "host-kernel"
    public var description: String { rawValue }
}
