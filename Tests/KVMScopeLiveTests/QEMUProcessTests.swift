import XCTest
@testable import KVMScopeLive
@testable import KVMScopeHost
import KVMScopeGuestLog

final class QEMUProcessTests: XCTestCase {
    func testLogFileTimestampsAndMonitors() {
        // libvirt 9's form (lab/scenarios/libvirt-fs-full/libvirt-qemu.log) and a plain -qmp.
        let p = QEMUProcess(pid: 7, arguments: [
            "/usr/bin/qemu-system-x86_64", "-name", "guest=lab,debug-threads=on",
            "-chardev", "socket,id=charmonitor,fd=30,server=on,wait=off",
            "-chardev", "socket,id=kvmscope,path=/run/vm1-kvmscope.qmp,server=on,wait=off",
            "-mon", "chardev=charmonitor,id=monitor,mode=control",
            "-mon", "chardev=kvmscope,mode=control",
            "-qmp", "unix:/run/vm1.qmp,server=on,wait=off",
            "-msg", "timestamp=on", "-D", "/var/log/qemu/vm1-own.log"])
        XCTAssertTrue(p.isQEMU)
        XCTAssertTrue(p.logsTimestamps)
        XCTAssertEqual(p.logFile, "/var/log/qemu/vm1-own.log")
        // fd=30 (libvirt's own, passed in) has no path: not one kvmscope can connect to.
        XCTAssertEqual(p.qmpAddresses, [.unix(path: "/run/vm1.qmp"), .unix(path: "/run/vm1-kvmscope.qmp")])
        let bare = QEMUProcess(pid: 8, arguments: ["qemu-kvm", "-m", "256"])
        XCTAssertNil(bare.logFile)
        XCTAssertFalse(bare.logsTimestamps)
        XCTAssertFalse(QEMUProcess(pid: 9, arguments: ["/bin/bash"]).isQEMU)
    }

    func testKmsgRecordBecomesADmesgISOLine() throws {
        // boot at 2026-12-01T00:00:00Z; a record 439.490934 s later (printk.c's usec field).
        let boot: Int64 = 1796083200 * 1_000_000
        let line = KernelMessageDevice.isoLine(
            record: ArraySlice(Array("3,1234,439490934,-;blk_update_request: I/O error, dev loop0, sector 133120 op 0x1:(WRITE) flags 0x8800 phys_seg 8 prio class 2\n SUBSYSTEM=block\n DEVICE=b7:0\n".utf8)),
            bootMicroseconds: boot)
        XCTAssertEqual(line, "2026-12-01T00:07:19,490934+00:00 blk_update_request: I/O error, dev loop0, sector 133120 op 0x1:(WRITE) flags 0x8800 phys_seg 8 prio class 2\n")
        // User space writing to /dev/kmsg (facility 1, prio 14) is kept, as plain dmesg shows it.
        XCTAssertEqual(KernelMessageDevice.isoLine(record: ArraySlice(Array("14,5,100,-;systemd[1]: hello\n".utf8)), bootMicroseconds: boot),
                       "2026-12-01T00:00:00,000100+00:00 systemd[1]: hello\n")
        XCTAssertNil(KernelMessageDevice.isoLine(record: ArraySlice(Array("garbage".utf8)), bootMicroseconds: boot))
        // A control byte in the text (the kernel would have escaped it) stays one line (found by fuzz-capture).
        XCTAssertEqual(KernelMessageDevice.isoLine(record: ArraySlice(Array("14,5,100,-;a\rb\u{1}\n".utf8)), bootMicroseconds: boot),
                       "2026-12-01T00:00:00,000100+00:00 a\\x0db\\x01\n")
        // The line parses as the dmesg --time-format iso style the host reader reads.
        let bytes = Array(line!.utf8.dropLast())
        let parsed = bytes.withUnsafeBufferPointer { KernelLinePrefixParser.parse(LineBytes($0)) }
        guard case let .kernel(prefix) = parsed else { return XCTFail("not a kernel line: \(parsed)") }
        XCTAssertEqual(prefix.style, .dmesgISO)
    }
}
