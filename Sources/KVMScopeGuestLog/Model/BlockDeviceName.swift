/// What a kernel block device name says about the device. Names only: nothing here reads /sys.
public enum BlockDeviceKind: Equatable, Sendable {
    case disk
    /// A partition; its sectors and blocks count from the partition's start, not the disk's.
    case partition(of: String)
    /// dm-N: LVM, dm-crypt, multipath...; its blocks map to disk sectors only through the
    /// device-mapper table, which the kernel log does not contain.
    case deviceMapper
    case md
    case loop
    case cdrom
    case floppy
    case network   // nbd, rbd

    public var label: String {
        switch self {
        case .disk: return "disk"
        case .partition: return "partition"
        case .deviceMapper: return "device-mapper"
        case .md: return "md-raid"
        case .loop: return "loop"
        case .cdrom: return "cdrom"
        case .floppy: return "floppy"
        case .network: return "network-block-device"
        }
    }

    public var parent: String? {
        if case .partition(let p) = self { return p }
        return nil
    }

    /// Classifies a name such as `vda`, `vda1`, `nvme0n1p2`, `dm-0`, `md127`, `sr0`.
    public init(name: String) {
        let u = Array(name.utf8)
        func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
        func isLower(_ c: UInt8) -> Bool { c >= 0x61 && c <= 0x7A }
        func allDigits(_ s: ArraySlice<UInt8>) -> Bool { !s.isEmpty && s.allSatisfy(isDigit) }
        // Trailing "p<digits>" partitions of names that end in a digit (nvme0n1p2, mmcblk0p1, loop0p1, md127p1, nbd0p1).
        if let p = u.lastIndex(of: UInt8(ascii: "p")), p > 0, allDigits(u[(p + 1)...]), isDigit(u[p - 1]) {
            let parent = String(decoding: u[..<p], as: UTF8.self)
            if parent.hasPrefix("nvme") || parent.hasPrefix("mmcblk") || parent.hasPrefix("loop")
                || parent.hasPrefix("md") || parent.hasPrefix("nbd") || parent.hasPrefix("rbd") {
                self = .partition(of: parent)
                return
            }
        }
        if name.hasPrefix("dm-"), allDigits(u[3...]) { self = .deviceMapper; return }
        if name.hasPrefix("md"), allDigits(u[2...]) { self = .md; return }
        if name.hasPrefix("loop"), allDigits(u[4...]) { self = .loop; return }
        if name.hasPrefix("sr"), allDigits(u[2...]) { self = .cdrom; return }
        if name.hasPrefix("fd"), allDigits(u[2...]) { self = .floppy; return }
        if (name.hasPrefix("nbd") || name.hasPrefix("rbd")), allDigits(u[3...]) { self = .network; return }
        // sda1, vdb2, hdc3, xvda1: letters of a disk name followed by a partition number.
        for prefix in ["sd", "vd", "hd", "xvd"] where name.hasPrefix(prefix) {
            let rest = u[prefix.utf8.count...]
            guard let firstDigit = rest.firstIndex(where: isDigit) else { break }
            let letters = rest[..<firstDigit]
            if !letters.isEmpty, letters.allSatisfy(isLower), allDigits(rest[firstDigit...]) {
                self = .partition(of: String(decoding: u[..<firstDigit], as: UTF8.self))
                return
            }
        }
        self = .disk
    }
}
