/// The disk buses a QEMU trace can show, named by the device models that emit their events.
public enum TraceBus: String, Sendable, Codable, CaseIterable {
    /// virtio-blk-pci / virtio-blk-device (hw/block/virtio-blk.c).
    case virtioBlk = "virtio-blk"
    /// virtio-scsi with scsi-hd / scsi-block / scsi-cd disks (hw/scsi/virtio-scsi.c,
    /// scsi-bus.c, scsi-disk.c). Other SCSI HBAs (lsi, megasas, pvscsi…) also emit the
    /// `scsi_req_*`/`scsi_disk_*` events and are counted here.
    case virtioScsi = "virtio-scsi"
    /// nvme (hw/nvme).
    case nvme
    /// ide-hd / ide-cd on the PIIX/ICH9 IDE controllers and AHCI (hw/ide).
    case ideAhci = "ide-ahci"

    public var words: String {
        switch self {
        case .virtioBlk: return "virtio-blk"
        case .virtioScsi: return "virtio-scsi/SCSI"
        case .nvme: return "NVMe"
        case .ideAhci: return "IDE/AHCI"
        }
    }
}

/// The one place that says which QEMU trace events show what: which event names belong to
/// which bus, and which `-trace` patterns a user must enable for kvmscope to analyse a bus.
/// `kvmscope trace` uses it for its coverage report and hints, `explain` for "not covered".
/// Patterns are QEMU's `-trace` patterns (`*` matches any run of characters).
public enum TraceCoverage {
    /// The events a bus's device model emits (what detection counts). From QEMU 7.2's
    /// hw/block/trace-events, hw/scsi/trace-events, hw/nvme/trace-events, hw/ide/trace-events.
    public static func eventPatterns(of bus: TraceBus) -> [String] {
        switch bus {
        case .virtioBlk: return ["virtio_blk_*"]
        case .virtioScsi: return ["virtio_scsi_*", "scsi_req_*", "scsi_disk_*"]
        case .nvme: return ["pci_nvme_*"]
        case .ideAhci: return ["ide_*", "ahci_*"]
        }
    }

    /// Events outside any bus that the request analyses read: when the guest handed a request
    /// over and got it back (hw/virtio/trace-events), device resets, and VM stops on I/O errors
    /// (runstate_set, system/trace-events).
    public static let virtqueuePatterns = ["virtqueue_pop", "virtqueue_fill"]
    public static let sharedPatterns = ["virtio_set_status", "runstate_set"]

    /// What names the storage under the device: the NBD client's connection and requests
    /// (block/trace-events, nbd/trace-events), qcow2 and file-posix activity, and the block
    /// backend's per-request coroutines (blk_co_preadv/pwritev). The last three print a line
    /// per request: enable them when the backend is in question.
    public static let backendPatterns = ["nbd_*", "qcow2_*", "file_*", "blk_co_*"]

    /// Whether kvmscope rebuilds the bus's requests (else its events are only counted).
    public static func isAnalysed(_ bus: TraceBus) -> Bool {
        bus == .virtioBlk || bus == .virtioScsi
    }

    /// Every `-trace` pattern the analysis of `bus` needs, in the order to write them.
    public static func tracePatterns(for bus: TraceBus) -> [String] {
        switch bus {
        case .virtioBlk: return eventPatterns(of: bus) + virtqueuePatterns + sharedPatterns
        // virtio-scsi requests are keyed by tag from its own events; no virtqueue events needed.
        case .virtioScsi: return eventPatterns(of: bus) + ["runstate_set"]
        case .nvme, .ideAhci: return eventPatterns(of: bus) + ["runstate_set"]
        }
    }

    /// All patterns for `buses` (each once, in order), plus the backend's when asked.
    public static func tracePatterns(for buses: [TraceBus], backend: Bool = false) -> [String] {
        var out: [String] = []
        for p in buses.flatMap(tracePatterns(for:)) + (backend ? backendPatterns : []) where !out.contains(p) {
            out.append(p)
        }
        return out
    }

    /// The QEMU command-line options: `-trace 'virtio_blk_*' -trace virtqueue_pop …` (patterns
    /// with `*` quoted for the shell).
    public static func qemuOptions(for buses: [TraceBus], backend: Bool = false) -> String {
        tracePatterns(for: buses, backend: backend)
            .map { $0.contains("*") ? "-trace '\($0)'" : "-trace \($0)" }
            .joined(separator: " ")
    }

    /// The HMP commands that turn the same events on in a running VM
    /// (`virsh qemu-monitor-command VM --hmp 'trace-event NAME on'`).
    public static func hmpCommands(for buses: [TraceBus], backend: Bool = false) -> [String] {
        tracePatterns(for: buses, backend: backend).map { "trace-event \($0) on" }
    }

    /// The bus whose device model emits `name`, or nil.
    public static func bus(ofEvent name: String) -> TraceBus? {
        for bus in TraceBus.allCases where eventPatterns(of: bus).contains(where: { TracePattern.matches($0, name) }) {
            return bus
        }
        return nil
    }

    /// The backend family (`nbd`, `qcow2`, `file`, `blk_co`) of `name`, or nil.
    public static func backendFamily(ofEvent name: String) -> String? {
        for p in backendPatterns where TracePattern.matches(p, name) { return String(p.dropLast(2)) }
        return nil
    }

    /// Every pattern coverage counts events by: the buses', the virtqueue and shared ones,
    /// the backend's. Disjoint, so that an event counts under one pattern at most.
    public static let countedPatterns: [String] = {
        var out: [String] = []
        for p in TraceBus.allCases.flatMap(eventPatterns(of:)) + virtqueuePatterns + sharedPatterns + backendPatterns
        where !out.contains(p) { out.append(p) }
        return out
    }()

    /// The counted pattern `name` matches, or nil. What the decoder counts unknown names by.
    static func countedPattern(ofEvent name: String) -> String? {
        countedPatterns.first { TracePattern.matches($0, name) }
    }
}

/// What one trace shows of one bus.
public struct TraceBusCoverage: Sendable, Equatable, Codable {
    public var bus: TraceBus
    /// Events of the bus's device model in this trace (known and unknown names).
    public var events: Int
    /// The trace has events of this bus.
    public var covered: Bool
    /// kvmscope rebuilds this bus's requests (`virtio-blk`, `virtio-scsi`); the others are
    /// only detected and counted.
    public var analysed: Bool
    /// Every `-trace` pattern the analysis of this bus needs (TraceCoverage.tracePatterns).
    public var tracePatterns: [String]
    /// Of those, the ones no event of this trace matches (not enabled, or nothing happened).
    public var patternsWithoutEvents: [String]
}

/// Which buses and which supporting events a trace holds: what it can and cannot say.
public struct TraceCoverageReport: Sendable, Equatable, Codable {
    /// Every bus, in `TraceBus.allCases` order, with or without events.
    public var buses: [TraceBusCoverage]
    /// virtqueue_pop / virtqueue_fill seen: when a virtio request was handed over and returned.
    public var virtqueueEvents: Int
    /// runstate_set seen: VM stops and resumes are visible.
    public var runstateEvents: Int
    /// Events per backend family (`nbd`, `qcow2`, `file`, `blk_co`), only those seen.
    public var backendEvents: [String: Int]

    /// The coverage of `bus`.
    public func bus(_ bus: TraceBus) -> TraceBusCoverage? { buses.first { $0.bus == bus } }

    /// Built from the reader's per-name counts of known events and its per-pattern counts of
    /// unknown names (events no definition knew are still counted, exactly).
    public init(stats: TraceReadStats) {
        var perPattern: [String: Int] = [:]
        for (name, count) in stats.eventCounts where count > 0 {
            if let p = TraceCoverage.countedPattern(ofEvent: name) { perPattern[p, default: 0] += count }
        }
        for (p, count) in stats.unknownEventsByPattern where count > 0 { perPattern[p, default: 0] += count }
        buses = TraceBus.allCases.map { bus in
            let n = TraceCoverage.eventPatterns(of: bus).reduce(0) { $0 + (perPattern[$1] ?? 0) }
            let patterns = TraceCoverage.tracePatterns(for: bus)
            return TraceBusCoverage(
                bus: bus, events: n, covered: n > 0, analysed: TraceCoverage.isAnalysed(bus),
                tracePatterns: patterns, patternsWithoutEvents: patterns.filter { (perPattern[$0] ?? 0) == 0 })
        }
        virtqueueEvents = TraceCoverage.virtqueuePatterns.reduce(0) { $0 + (perPattern[$1] ?? 0) }
        runstateEvents = perPattern["runstate_set"] ?? 0
        var backend: [String: Int] = [:]
        for p in TraceCoverage.backendPatterns { if let n = perPattern[p], n > 0 { backend[String(p.dropLast(2)), default: 0] += n } }
        backendEvents = backend
    }
}
