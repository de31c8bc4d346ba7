import Foundation
import Testing
@testable import KVMScopeHost
#if canImport(Glibc)
import Glibc
#endif

/// Where an image lives on the host: sysfs's device stack (a copy of its shape in a temporary
/// directory) and, live, the image's extents checked against the device's own bytes.
@Suite struct HostImageLocatorTests {
    /// A sysfs tree with the shapes the kernel makes: a loop device with its backing file, a
    /// partition of a disk, a device-mapper map over two disks.
    static func fakeSysfs() throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kvmscope-sysfs-\(UUID().uuidString)").path
        let fm = FileManager.default
        func file(_ p: String, _ text: String) throws {
            try fm.createDirectory(atPath: (root + "/" + p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: root + "/" + p, atomically: true, encoding: .utf8)
        }
        func link(_ p: String, _ to: String) throws {
            try fm.createDirectory(atPath: (root + "/" + p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try fm.createSymbolicLink(atPath: root + "/" + p, withDestinationPath: to)
        }
        try link("dev/block/7:0", "../../devices/virtual/block/loop0")
        try file("class/block/loop0/loop/backing_file", "/srv/fuse/backing\n")
        try link("dev/block/8:17", "../../devices/pci0000:00/0000:00:05.0/host0/target0:0:0/0:0:0:0/block/sdb/sdb1")
        try file("class/block/sdb1/partition", "1\n")
        try file("class/block/sdb1/start", "2048\n")
        try link("dev/block/253:2", "../../devices/virtual/block/dm-2")
        try fm.createDirectory(atPath: root + "/class/block/dm-2/slaves/sdc", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/class/block/dm-2/slaves/sdd", withIntermediateDirectories: true)
        return root
    }

    @Test func sysfsStacksAreRead() throws {
        let root = try Self.fakeSysfs()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let sys = DirectorySysfs(root: root)
        let loop = HostImageLocator.stack(majorMinor: "7:0", sysfs: sys)
        #expect(loop.device == "loop0" && loop.disk == "loop0" && loop.partitionStart == 0)
        #expect(loop.below == ["loop0 backing file /srv/fuse/backing"])
        let part = HostImageLocator.stack(majorMinor: "8:17", sysfs: sys)
        #expect(part.device == "sdb1" && part.disk == "sdb" && part.partitionStart == 2048)
        let dm = HostImageLocator.stack(majorMinor: "253:2", sysfs: sys)
        #expect(dm.device == "dm-2" && dm.below == ["sdc", "sdd"])
        let none = HostImageLocator.stack(majorMinor: "9:9", sysfs: sys)
        #expect(none.device == nil)
    }

    @Test func extentsMapImageOffsetsToDiskSectors() {
        var loc = HostImageLocation(path: "disk.img", majorMinor: "7:0")
        loc.device = "loop0"; loc.disk = "loop0"
        // The lab's FIEMAP (host-disk-eio run.txt): image bytes 1 MiB.. at loop0 byte 68157440 (sector 133120).
        loc.extents = [.init(logical: 1 << 20, physical: 68_157_440, length: 65_536, unwritten: false, physicalKnown: true),
                       .init(logical: 0, physical: 4096, length: 4096, unwritten: true, physicalKnown: true)]
        #expect(loc.diskSector(imageOffset: 2048 * 512) == 133_120)
        #expect(loc.diskSector(imageOffset: 2080 * 512) == 133_152)
        #expect(loc.diskSector(imageOffset: 0) == nil)          // unwritten: reads as zeros, no data there
        #expect(loc.diskSector(imageOffset: 1 << 30) == nil)    // a hole
        loc.partitionStart = 2048
        #expect(loc.diskSector(imageOffset: 2048 * 512) == 133_120 + 2048)
    }

    /// Live, as root on a filesystem with FIEMAP: a file's bytes are where its extents say on
    /// the disk the kernel would name in an I/O error.
    @Test(.enabled(if: geteuid() == 0)) func liveExtentsPointAtTheFilesBytesOnTheDisk() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kvmscope-fiemap-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("disk.img").path
        var pattern = [UInt8](repeating: 0, count: 1 << 20)
        for i in 0..<pattern.count { pattern[i] = UInt8(truncatingIfNeeded: (i / 512) &* 131 &+ i &* 7) }
        FileManager.default.createFile(atPath: path, contents: Data(pattern))
        let fd = open(path, O_RDWR)
        #expect(fsync(fd) == 0)
        close(fd)
        let loc = try #require(HostImageLocator.locate(path))
        #expect(loc.filesystemSizeBytes.map { $0 > 0 } == true)
        guard loc.extentsUnavailable == nil, let disk = loc.disk else {
            // tmpfs, overlayfs and FUSE have no FIEMAP: said, not guessed.
            #expect(loc.extents.isEmpty)
            return
        }
        #expect(!loc.extents.isEmpty)
        // O_DIRECT (not exported to Swift without _GNU_SOURCE): the disk's bytes, not a cached copy.
        #if arch(x86_64)
        let direct: Int32 = 0o40000
        #else
        let direct: Int32 = 0o200000
        #endif
        let dev = open("/dev/\(disk)", O_RDONLY | direct)
        guard dev >= 0 else { return }   // no device node for it (a container's /dev)
        defer { close(dev) }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { buffer.deallocate() }
        for offset in [0, 4096, 512 * 1024, (1 << 20) - 4096] {
            let sector = try #require(loc.diskSector(imageOffset: UInt64(offset)), "offset \(offset)")
            let n = pread(dev, buffer, 4096, off_t(sector * 512))
            #expect(n == 4096)
            let onDisk = [UInt8](UnsafeRawBufferPointer(start: buffer, count: 4096))
            #expect(onDisk == Array(pattern[offset..<offset + 4096]), "offset \(offset) → \(disk) sector \(sector)")
        }
    }
}
