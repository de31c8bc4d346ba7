import Foundation
import KVMScopeCore
#if canImport(Glibc)
import Glibc
#endif

/// Where a guest's image lives on this host: the block device under its filesystem, what that
/// device is built on, the filesystem's free space, and the image's extents on the device —
/// so a host `I/O error, dev X, sector N` can be tied to the guest sector it holds, not only
/// by time. Read live (stat, statvfs, sysfs, FIEMAP); `nil` fields are what this host did not say.
public struct HostImageLocation: Sendable, Equatable, Encodable {
    public struct Extent: Sendable, Equatable, Encodable {
        /// Byte offsets in the file and on the filesystem's device, and the length (FIEMAP's
        /// fe_logical, fe_physical, fe_length).
        public var logical: UInt64
        public var physical: UInt64
        public var length: UInt64
        /// FIEMAP_EXTENT_UNWRITTEN (preallocated, reads as zeros) and the flags that make
        /// fe_physical meaningless (UNKNOWN, DELALLOC, ENCODED, DATA_INLINE, DATA_TAIL, NOT_ALIGNED).
        public var unwritten: Bool
        public var physicalKnown: Bool

        public init(logical: UInt64, physical: UInt64, length: UInt64, unwritten: Bool = false, physicalKnown: Bool = true) {
            self.logical = logical; self.physical = physical; self.length = length
            self.unwritten = unwritten; self.physicalKnown = physicalKnown
        }
    }

    public var path: String
    /// Where this came from: `this host` (looked up live) or the saved mount table's file name.
    public var from = "this host"
    /// The QEMU drive (`-drive id=`, node name) whose image this is, when the caller knows it.
    @NullEncoded public var drive: String? = nil
    /// Guest sector N is byte N × 512 of the file: a raw image (blkdebug and throttle filters
    /// pass offsets through); a qcow2's clusters are elsewhere in its file.
    public var guestOffsetsAreFileOffsets = false
    /// The filesystem's device as `MAJ:MIN` (stat's st_dev) and its kernel name (`vda`, `sda1`, `loop0`, `dm-2`).
    public var majorMinor: String
    @NullEncoded public var device: String? = nil
    /// The disk the kernel names in block errors for it (blk_print_req_error prints the disk:
    /// `sda` for `sda1`) and the partition's first 512-byte sector on it (0 for a whole disk).
    @NullEncoded public var disk: String? = nil
    public var partitionStart: UInt64 = 0
    /// What the device is built on, top first: `dm-2` → `sdb`, `sdc`; `loop0` → its backing file.
    public var below: [String] = []
    @NullEncoded public var filesystemSizeBytes: UInt64? = nil
    @NullEncoded public var filesystemFreeBytes: UInt64? = nil
    /// The image's first extents (up to `HostImageLocator.extentLimit`), and whether there were more.
    public var extents: [Extent] = []
    public var moreExtents = false
    /// Why the extents are missing (the filesystem has no FIEMAP: tmpfs, NFS, FUSE), when they are.
    @NullEncoded public var extentsUnavailable: String? = nil

    public init(path: String, majorMinor: String) {
        self.path = path; self.majorMinor = majorMinor
    }

    /// The sector on `disk` that holds byte `offset` of the image, when an extent maps it.
    public func diskSector(imageOffset offset: UInt64) -> UInt64? {
        for e in extents where e.physicalKnown && !e.unwritten && offset >= e.logical && offset - e.logical < e.length {
            let (byte, o1) = e.physical.addingReportingOverflow(offset - e.logical)
            guard !o1 else { return nil }
            return byte / 512 + partitionStart
        }
        return nil
    }
}

/// sysfs as a directory tree (the real /sys, or a test's copy of its shape).
public protocol SysfsSource {
    func read(_ path: String) -> String?
    func list(_ path: String) -> [String]
    /// The target of a symbolic link, as stored.
    func link(_ path: String) -> String?
}

public struct DirectorySysfs: SysfsSource {
    public let root: String
    public init(root: String = "/sys") { self.root = root }
    public func read(_ path: String) -> String? {
        guard let d = FileManager.default.contents(atPath: root + "/" + path) else { return nil }
        return String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    public func list(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root + "/" + path)) ?? []).sorted()
    }
    public func link(_ path: String) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: root + "/" + path)
    }
}

public enum HostImageLocator {
    public static let extentLimit = 256

    /// The images of a command line's drives that exist on this host (explain run on the VM's host).
    public static func locate(_ disks: QEMUDiskMap, sysfs: SysfsSource = DirectorySysfs()) -> [HostImageLocation] {
        locate(disks) { locate($0, sysfs: sysfs) }
    }

    /// The drives' images as `find` places them (live, or from saved mount tables), each
    /// labelled with its drive and whether guest offsets are file offsets.
    public static func locate(_ disks: QEMUDiskMap, with find: (String) -> HostImageLocation?) -> [HostImageLocation] {
        disks.disks.compactMap { d in
            guard let file = d.file, var loc = find(file) else { return nil }
            loc.drive = d.id ?? d.nodeName
            loc.guestOffsetsAreFileOffsets = offsetsMapDirectly(d)
            return loc
        }
    }

    /// Guest sector N is byte N × 512 of the drive's file: raw, with only filters that pass
    /// offsets through (block/blkdebug.c, block/throttle.c) above the file.
    public static func offsetsMapDirectly(_ d: QEMUDiskConfig) -> Bool {
        d.drivers.allSatisfy { ["raw", "file", "host_device", "blkdebug", "throttle"].contains($0) }
    }

    /// The image's place on this host; nil when the path does not exist here (explain run
    /// elsewhere than on the VM's host).
    public static func locate(_ path: String, sysfs: SysfsSource = DirectorySysfs()) -> HostImageLocation? {
        guard path.hasPrefix("/") else { return nil }
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        // glibc's gnu_dev_major/gnu_dev_minor (sysdeps/unix/sysv/linux/sys/sysmacros.h).
        let dev = UInt64(st.st_dev)
        let major = ((dev & 0x0000_0000_000f_ff00) >> 8) | ((dev & 0xffff_f000_0000_0000) >> 32)
        let minor = (dev & 0x0000_0000_0000_00ff) | ((dev & 0x0000_0fff_fff0_0000) >> 12)
        var loc = stack(majorMinor: "\(major):\(minor)", sysfs: sysfs, path: path)
        var vfs = statvfs()
        if statvfs(path, &vfs) == 0 {
            loc.filesystemSizeBytes = UInt64(vfs.f_blocks).multipliedReportingOverflow(by: UInt64(vfs.f_frsize)).partialValue
            loc.filesystemFreeBytes = UInt64(vfs.f_bavail).multipliedReportingOverflow(by: UInt64(vfs.f_frsize)).partialValue
        }
        do {
            (loc.extents, loc.moreExtents) = try extents(path)
        } catch {
            loc.extentsUnavailable = "\(error)"
        }
        return loc
    }

    /// The device `MAJ:MIN` names and what it is built on, from sysfs: /sys/dev/block/MAJ:MIN
    /// links to the device; a partition has a `partition` file and its disk is the parent
    /// directory (block/partitions/core.c); dm and md list their members in `slaves/`; a loop
    /// device names its file in `loop/backing_file` (drivers/block/loop.c).
    public static func stack(majorMinor: String, sysfs: SysfsSource, path: String = "") -> HostImageLocation {
        var loc = HostImageLocation(path: path, majorMinor: majorMinor)
        guard let target = sysfs.link("dev/block/\(majorMinor)") else { return loc }
        let parts = target.split(separator: "/").map(String.init)
        guard let name = parts.last else { return loc }
        loc.device = name
        if sysfs.read("class/block/\(name)/partition") != nil, parts.count >= 2 {
            loc.disk = parts[parts.count - 2]
            loc.partitionStart = sysfs.read("class/block/\(name)/start").flatMap { UInt64($0) } ?? 0
        } else {
            loc.disk = name
        }
        var seen: Set<String> = [name]
        func below(_ dev: String, depth: Int) {
            guard depth < 8 else { return }
            if let f = sysfs.read("class/block/\(dev)/loop/backing_file") { loc.below.append("\(dev) backing file \(f)") }
            for s in sysfs.list("class/block/\(dev)/slaves") where seen.insert(s).inserted {
                loc.below.append(s)
                below(s, depth: depth + 1)
            }
        }
        below(loc.disk ?? name, depth: 0)
        return loc
    }

    struct FIEMAPError: Error, CustomStringConvertible {
        let errno: Int32
        var description: String { "FIEMAP failed: \(String(cString: strerror(errno)))" }
    }

    /// The file's extents (include/uapi/linux/fiemap.h, fs/ioctl.c ioctl_fiemap), synced first
    /// (FIEMAP_FLAG_SYNC) so delayed allocations have their place.
    public static func extents(_ path: String) throws -> ([HostImageLocation.Extent], Bool) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FIEMAPError(errno: errno) }
        defer { close(fd) }
        let header = 32, extentSize = 56, count = extentLimit + 1
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: header + extentSize * count, alignment: 8)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: header + extentSize * count)
        buffer.storeBytes(of: 0, toByteOffset: 0, as: UInt64.self)                 // fm_start
        buffer.storeBytes(of: UInt64.max, toByteOffset: 8, as: UInt64.self)        // fm_length: to the end
        buffer.storeBytes(of: 1, toByteOffset: 16, as: UInt32.self)                // fm_flags: FIEMAP_FLAG_SYNC
        buffer.storeBytes(of: UInt32(count), toByteOffset: 24, as: UInt32.self)    // fm_extent_count
        // FS_IOC_FIEMAP = _IOWR('f', 11, struct fiemap): dir 3 << 30 | size 32 << 16 | 'f' << 8 | 11.
        let request: UInt = (3 << 30) | (32 << 16) | (0x66 << 8) | 11
        guard ioctl(fd, request, buffer) == 0 else { throw FIEMAPError(errno: errno) }
        let mapped = Int(buffer.load(fromByteOffset: 20, as: UInt32.self))
        var out: [HostImageLocation.Extent] = []
        for i in 0..<min(mapped, count) {
            let e = header + i * extentSize
            let flags = buffer.load(fromByteOffset: e + 40, as: UInt32.self)
            // UNKNOWN 0x2, DELALLOC 0x4, ENCODED 0x8, NOT_ALIGNED 0x100, DATA_INLINE 0x200, DATA_TAIL 0x400.
            let unknown = flags & (0x2 | 0x4 | 0x8 | 0x100 | 0x200 | 0x400) != 0
            out.append(.init(logical: buffer.load(fromByteOffset: e, as: UInt64.self),
                             physical: buffer.load(fromByteOffset: e + 8, as: UInt64.self),
                             length: buffer.load(fromByteOffset: e + 16, as: UInt64.self),
                             unwritten: flags & 0x800 != 0, physicalKnown: !unknown))
        }
        let more = out.count > extentLimit
        return (Array(out.prefix(extentLimit)), more)
    }
}
