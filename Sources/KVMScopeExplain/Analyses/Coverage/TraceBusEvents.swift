import KVMScopeTrace

/// Which QEMU trace events speak for which guest bus (event names from QEMU 7.2's
/// hw/block/trace-events, hw/scsi/trace-events, hw/nvme/trace-events, hw/ide/trace-events).
enum TraceBusEvents {
    static func prefixes(_ bus: GuestDiskBus) -> [String] {
        switch bus {
        case .virtioBlk: return ["virtio_blk_"]
        case .scsi: return ["virtio_scsi_", "scsi_req_", "scsi_disk_"]
        case .nvme: return ["pci_nvme_"]
        case .ide: return ["ide_", "ahci_"]
        case .xen, .stacked, .unknown: return []
        }
    }

    /// The `-trace` patterns that turn on what the analysis needs for the bus.
    static func patterns(_ bus: GuestDiskBus) -> [String] {
        switch bus {
        case .virtioBlk: return ["virtio_blk_*", "virtqueue_pop", "virtqueue_fill", "virtio_set_status", "runstate_set"]
        case .scsi: return ["virtio_scsi_*", "scsi_req_*", "scsi_disk_*", "runstate_set"]
        case .nvme: return ["pci_nvme_*"]
        case .ide: return ["ide_*", "ahci_*"]
        case .xen, .stacked, .unknown: return []
        }
    }

    /// Buses whose requests kvmscope rebuilds from the trace.
    static func supported(_ bus: GuestDiskBus) -> Bool { bus == .virtioBlk }

    /// Whether the trace holds any event of the bus.
    static func present(_ bus: GuestDiskBus, in host: TraceReport) -> Bool {
        let p = prefixes(bus)
        return host.input.stats.eventCounts.contains { name, n in n > 0 && p.contains { name.hasPrefix($0) } }
    }
}
