import KVMScopeTrace

/// The guest's view of a bus ↔ the trace's (KVMScopeTrace's TraceCoverage is the one table
/// of which events and `-trace` patterns cover which bus).
enum TraceBusEvents {
    static func traceBus(_ bus: GuestDiskBus) -> TraceBus? {
        switch bus {
        case .virtioBlk: return .virtioBlk
        // sdX is virtio-scsi or another HBA through QEMU's SCSI layer (scsi-disk), or SATA
        // through libata (then the AHCI events would show it); the SCSI layer's events are the
        // ones that can.
        case .scsi: return .virtioScsi
        case .nvme: return .nvme
        case .ide: return .ideAhci
        case .xen, .stacked, .unknown: return nil
        }
    }

    /// The `-trace` patterns that turn on what the analysis needs for the bus.
    static func patterns(_ bus: GuestDiskBus) -> [String] {
        traceBus(bus).map { TraceCoverage.tracePatterns(for: $0) } ?? []
    }

    /// Buses whose requests kvmscope rebuilds from the trace.
    static func supported(_ bus: GuestDiskBus) -> Bool {
        traceBus(bus).map(TraceCoverage.isAnalysed) ?? false
    }

    /// Whether the trace holds any event of the bus.
    static func present(_ bus: GuestDiskBus, in host: TraceReport) -> Bool {
        traceBus(bus).flatMap { host.coverage.bus($0)?.covered } ?? false
    }

    static func analysedAndPresent(_ bus: GuestDiskBus, in host: TraceReport) -> Bool {
        supported(bus) && present(bus, in: host)
    }
}
