import KVMScopeQMP
import KVMScopeTrace
import KVMScopeHost

/// Whether a QEMU command line can be the one of the VM the other inputs show: a command line
/// of another VM (a libvirt log of the wrong domain, an old `ps` copy) would lend its drives'
/// error policies and backends to the wrong disks. Checked on what both sides name: the buses
/// the trace and the guest show against the command line's device models, and the drives QMP's
/// BLOCK_IO_ERRORs name against its drive ids and node names.
enum CommandLineConsistency {
    /// The bus a `-device` model (or `if=`) attaches its drive to (QEMU's hw/block, hw/scsi,
    /// hw/nvme, hw/ide device names).
    static func bus(ofModel model: String) -> GuestDiskBus? {
        let m = model.lowercased()
        if m.hasPrefix("virtio-blk") || m == "if=virtio" || m == "virtio" { return .virtioBlk }
        if m.hasPrefix("scsi-") || m == "if=scsi" || m == "scsi" || m.hasPrefix("usb-storage") { return .scsi }
        if m.hasPrefix("nvme") { return .nvme }
        if m.hasPrefix("ide-") || m == "if=ide" || m == "ide" { return .ide }
        return nil
    }

    /// A sentence for INPUTS THAT DISAGREE when the command line cannot be this VM's; nil when
    /// nothing contradicts it.
    static func mismatch(disks: QEMUDiskMap, trace: TraceReport?, qmp: QMPTimeline?, guestDevices: [String],
                         source: String) -> String? {
        let lineBuses = Set(disks.disks.compactMap { $0.device.flatMap(bus(ofModel:)) })
        var shown: [(GuestDiskBus, String)] = []
        if let t = trace {
            if !t.devices.isEmpty || !t.failures.isEmpty { shown.append((.virtioBlk, "the trace shows virtio-blk requests")) }
            if !t.scsi.failures.isEmpty { shown.append((.scsi, "the trace shows SCSI requests")) }
        }
        for d in Set(guestDevices).sorted() {
            let b = GuestDiskBus(guestDevice: d)
            if b == .virtioBlk || b == .nvme || b == .ide { shown.append((b, "the guest's \(GuestDiskBus.disk(of: d)) is a \(b.rawValue) disk")) }
        }
        // Only buses the command line could have named: a line with no -device for its
        // drives says nothing either way.
        if !lineBuses.isEmpty, let missing = shown.first(where: { !lineBuses.contains($0.0) }) {
            let models = Set(disks.disks.compactMap(\.device)).sorted().joined(separator: ", ")
            return "The QEMU command line (\(source)) attaches its drives to \(models), but \(missing.1): it is the command line of another VM or another run, and its drives' settings are not used."
        }
        // QMP's BLOCK_IO_ERROR names the drive (`device`, the -drive id or libvirt's
        // `drive-virtio-disk0`) or the node (`node-name`, -blockdev's).
        let names = Set(disks.disks.flatMap { [$0.id, $0.nodeName].compactMap { $0 } })
        if !names.isEmpty, let e = qmp?.ioErrors.first(where: { e in
            let named = [e.device, e.nodeName ?? ""].filter { !$0.isEmpty }
            return !named.isEmpty && !named.contains(where: names.contains)
        }) {
            return "QMP's BLOCK_IO_ERROR (line \(e.line)) names \(e.device.isEmpty ? e.nodeName ?? "" : e.device), which the QEMU command line (\(source)) does not define (it defines \(names.sorted().joined(separator: ", "))): it is the command line of another VM or another run, and its drives' settings are not used."
        }
        return nil
    }
}
