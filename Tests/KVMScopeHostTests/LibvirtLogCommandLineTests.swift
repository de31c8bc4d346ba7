import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeHost

/// The QEMU command line in a real libvirt per-domain log: lab/libvirt-capture ran the lab guest
/// under libvirtd 9.0.0 + virtlogd (a transient type='qemu' domain) and kept
/// /var/log/libvirt/qemu/NAME.log. libvirt 9 writes the disk as two -blockdev JSON nodes
/// (libvirt-1-storage: the file; libvirt-1-format: the raw format on it) and a JSON -device
/// naming the format node, with <driver error_policy='report' rerror_policy='report'/> as the
/// device's werror/rerror (src/qemu/qemu_command.c); the log also holds libvirt's own lines,
/// the environment, and QEMU's stderr (trace events, the signal that ended it).
@Suite struct LibvirtLogCommandLineTests {
    static let log = LabFixtures.path("libvirt-fs-full", "libvirt-qemu.log")

    func map() throws -> QEMUDiskMap {
        QEMUDiskMap(arguments: try QEMUCommandLineReader.arguments(in: try FileByteSource(path: Self.log)))
    }

    @Test func theLogsCommandLineIsTheQEMUCommand() throws {
        let args = try QEMUCommandLineReader.arguments(in: try FileByteSource(path: Self.log))
        #expect(args.first == "/usr/bin/qemu-system-x86_64")
        // The environment lines before it (LC_ALL=C, PATH=…, HOME=…) are not arguments.
        #expect(!args.contains { $0.hasPrefix("LC_ALL=") || $0.hasPrefix("HOME=") })
        #expect(args.contains("-accel") && args[args.firstIndex(of: "-accel")! + 1] == "tcg")
        // The last argument is libvirt's, not a trace line or libvirt's "Domain id=1 is tainted".
        #expect(args.last == "timestamp=on")
        #expect(args.contains("virtio_blk_*"))   // the <qemu:commandline> -trace arguments, unquoted
    }

    @Test func diskMapNamesLibvirtsNodesDeviceAliasImageAndPolicy() throws {
        let m = try map()
        #expect(m.disks.count == 1)
        #expect(m.unreadOptions == 0)
        let d = try #require(m.disks.first)
        #expect(d.nodeName == "libvirt-1-format")     // what QMP's BLOCK_IO_ERROR names (node-name)
        #expect(d.id == "virtio-disk0")               // libvirt's alias: <alias name='virtio-disk0'/>
        #expect(d.device == "virtio-blk-pci")
        #expect(d.drivers == ["raw", "file"])         // format node over the storage node
        let file = try #require(d.file)
        #expect(file.hasPrefix("/tmp/kvmscope-lab.") && file.hasSuffix("/hostfs/disk.img"))
        #expect(d.werror == "report" && d.rerror == "report")
        #expect(d.policy(read: false) == ("report", false) && d.policy(read: true) == ("report", false))
        // BLOCK_IO_ERROR from this run says device "" and node-name "libvirt-1-format".
        #expect(m.disk(named: "libvirt-1-format") == d && m.disk(named: "virtio-disk0") == d)
        // The serial console is a -chardev file on an fd set, not a disk.
        #expect(!m.disks.contains { $0.file?.contains("fdset") == true })
    }
}
