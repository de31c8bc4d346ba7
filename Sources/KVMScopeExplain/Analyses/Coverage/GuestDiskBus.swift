import KVMScopeGuestLog

/// How a guest disk reaches QEMU, as far as the guest's own names and messages tell. The name
/// alone is not always enough: `sdX` is any SCSI disk the guest's SCSI layer drives
/// (virtio-scsi, but also SATA/AHCI through libata, and USB storage).
public enum GuestDiskBus: String, Sendable, Encodable, CaseIterable {
    /// `vdX`: drivers/block/virtio_blk.c.
    case virtioBlk = "virtio-blk"
    /// `sdX`: drivers/scsi/sd.c over virtio-scsi, libata (AHCI/IDE emulation) or usb-storage.
    case scsi
    /// `nvmeXnY`: drivers/nvme/host.
    case nvme
    /// `hdX`: the legacy IDE driver (before libata).
    case ide
    /// `xvdX`: Xen's blkfront; QEMU's virtio and SCSI events never cover it.
    case xen
    /// dm-N, mdN, loop, nbd/rbd inside the guest: built on other block devices.
    case stacked
    case unknown

    /// The whole-disk name: `vda1` → `vda`, `nvme0n1p2` → `nvme0n1`.
    public static func disk(of device: String) -> String {
        BlockDeviceKind(name: device).parent ?? device
    }

    public init(guestDevice: String) {
        let disk = Self.disk(of: guestDevice)
        switch BlockDeviceKind(name: disk) {
        case .deviceMapper, .md, .loop, .network:
            self = .stacked
            return
        default:
            break
        }
        if disk.hasPrefix("vd") { self = .virtioBlk }
        else if disk.hasPrefix("sd") { self = .scsi }
        else if disk.hasPrefix("nvme") { self = .nvme }
        else if disk.hasPrefix("hd") { self = .ide }
        else if disk.hasPrefix("xvd") { self = .xen }
        else { self = .unknown }
    }

    /// For sentences.
    public var words: String {
        switch self {
        case .virtioBlk: return "virtio-blk"
        case .scsi: return "SCSI (virtio-scsi, or SATA/AHCI through libata)"
        case .nvme: return "NVMe"
        case .ide: return "IDE"
        case .xen: return "Xen blkfront"
        case .stacked: return "a device built on other disks (device-mapper, md, loop or a network block device inside the guest)"
        case .unknown: return "an unknown bus"
        }
    }
}
