import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeHost

/// QEMU command lines as admins have them: the lab's run.txt (bash `printf %q` quoting), a
/// /proc/PID/cmdline copy (NUL-separated), and libvirt's per-domain log (one option per line
/// ending in " \", JSON -blockdev/-device in single quotes, as libvirt 9's qemu_command.c
/// writes them).
@Suite struct QEMUCommandLineTests {
    func map(_ text: String, _ name: String = "cmdline") throws -> QEMUDiskMap {
        QEMUDiskMap(arguments: try QEMUCommandLineReader.arguments(in: Array(text.utf8), name: name))
    }

    @Test func labRunTxtNamesTheDrivePolicyAndImage() throws {
        let text = try String(contentsOfFile: LabFixtures.path("write-eio", "run.txt"), encoding: .utf8)
        let m = try map(text)
        let d = try #require(m.disks.first)
        #expect(m.disks.count == 1)
        #expect(d.id == "drive0" && d.device == "virtio-blk-pci")
        #expect(d.werror == "report" && d.rerror == "report")
        #expect(d.drivers == ["raw", "blkdebug"] && d.file == "$WORK/disk.img")
    }

    @Test func labNBDDriveNamesTheServer() throws {
        let text = try String(contentsOfFile: LabFixtures.path("nbd-server-killed", "run.txt"), encoding: .utf8)
        let d = try #require(try map(text).disks.first)
        #expect(d.drivers.first == "nbd" && d.export == "disk")
        #expect(d.server?.hasPrefix("127.0.0.1:") == true)
    }

    @Test func procCmdlineIsNULSeparated() throws {
        let args = ["/usr/bin/qemu-system-x86_64", "-drive", "if=none,id=d0,file=/var/lib/a,,b.img,format=qcow2,cache=none",
                    "-device", "scsi-hd,drive=d0,id=disk0", ""]
        let m = QEMUDiskMap(arguments: try QEMUCommandLineReader.arguments(in: Array(args.joined(separator: "\0").utf8), name: "cmdline"))
        let d = try #require(m.disks.first)
        #expect(d.file == "/var/lib/a,b.img")          // ",," is a literal comma (QEMU's option syntax)
        #expect(d.drivers == ["qcow2"] && d.cache == "none" && d.device == "scsi-hd")
        // No werror/rerror: QEMU's defaults (blockdev.c): enospc for writes, report for reads.
        #expect(d.policy(read: false) == ("enospc", true) && d.policy(read: true) == ("report", true))
    }

    @Test func libvirtLogWithJSONBlockdevAndDevice() throws {
        let log = """
        2026-12-01 10:00:00.000+0000: starting up libvirt version: 9.0.0, qemu version: 7.2.0
        LC_ALL=C \\
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin \\
        /usr/bin/qemu-system-x86_64 \\
        -name guest=vm1,debug-threads=on \\
        -blockdev '{"driver":"file","filename":"/var/lib/libvirt/images/vm1.qcow2","node-name":"libvirt-1-storage","auto-read-only":true,"discard":"unmap"}' \\
        -blockdev '{"node-name":"libvirt-1-format","read-only":false,"driver":"qcow2","file":"libvirt-1-storage"}' \\
        -device '{"driver":"virtio-blk-pci","bus":"pci.4","addr":"0x0","drive":"libvirt-1-format","id":"virtio-disk0","bootindex":1,"werror":"stop","rerror":"stop"}' \\
        -msg timestamp=on
        char device redirected to /dev/pts/3 (label charserial0)
        """
        let d = try #require(try map(log, "vm1.log").disks.first)
        #expect(d.nodeName == "libvirt-1-format" && d.id == "virtio-disk0" && d.device == "virtio-blk-pci")
        #expect(d.drivers == ["qcow2", "file"] && d.file == "/var/lib/libvirt/images/vm1.qcow2")
        #expect(d.werror == "stop" && d.rerror == "stop")
        #expect(try map(log).disk(named: "virtio-disk0") == d)
    }

    @Test func notACommandLineIsRefused() throws {
        #expect(throws: QEMUCommandLineReader.Failure.noCommandLine(path: "passwd")) {
            _ = try QEMUCommandLineReader.arguments(in: Array("root:x:0:0:root:/root:/bin/bash\n".utf8), name: "passwd")
        }
        #expect(throws: QEMUCommandLineReader.Failure.noCommandLine(path: "junk")) {
            _ = try QEMUCommandLineReader.arguments(in: [0xff, 0, 0x01, 0x02], name: "junk")
        }
        // Hostile but harmless: a huge option value, unterminated quotes, an option without value.
        let weird = "qemu-system-x86_64 -drive 'id=a,werror=stop -device \"x -blockdev {" + String(repeating: "a", count: 100_000)
        _ = try map(weird)
    }
}
