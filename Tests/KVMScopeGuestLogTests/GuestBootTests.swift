import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeGuestLog

/// Boots, clocks and "recognise or refuse" (issue 12, items 1, 3, 4).
@Suite struct GuestBootTests {
    typealias F = GuestFixtures

    static let labScenarios = ["async-write-esrch", "discard-errors", "enospc-pause", "ext4-readonly", "flush-eio",
                               "nbd-eio", "read-once", "write-eio"]

    /// Every lab console ends with the guest's own dmesg of the same boot, which starts again
    /// at `[    0.000000] Linux version`: that is a replay, not a second boot.
    @Test(arguments: labScenarios)
    func consoleFollowedByItsDmesgIsOneBoot(_ scenario: String) throws {
        let r = try F.report(file: F.lab(scenario))
        #expect(r.input.bootCount == 1)
        let boot = try #require(r.input.boots.first)
        #expect(boot.kernelVersion?.hasPrefix("6.1.0-5") == true)
        #expect(boot.startedBy == .startOfLog)
        for d in r.devices { for e in d.blockErrors { #expect(e.location.boot == 1) } }
    }

    /// Two real runs' consoles one after the other (a VM restarted with its console appended to
    /// the same file): quiet consoles show the second boot only once its dmesg replay begins.
    @Test func twoConsolesOneAfterTheOtherAreTwoBoots() throws {
        let first = try String(contentsOfFile: F.lab("write-eio"), encoding: .utf8)
        let second = try String(contentsOfFile: F.lab("flush-eio"), encoding: .utf8)
        let r = try F.report(first + second)
        #expect(r.input.bootCount == 2)
        let vda = try #require(F.device(r, "vda"))
        let alone1 = try #require(F.device(try F.report(first), "vda"))
        let alone2 = try #require(F.device(try F.report(second), "vda"))
        #expect(vda.totalBlockErrors == alone1.totalBlockErrors + alone2.totalBlockErrors)
        #expect(vda.boots == [1, 2])
        let firstLines = first.utf8.filter { $0 == 0x0A }.count
        for e in vda.blockErrors {
            #expect(e.location.boot == (e.location.line > firstLines ? 2 : 1), "line \(e.location.line)")
        }
        #expect(r.input.boots.map(\.kernelVersion) == ["6.1.0-56-amd64", "6.1.0-56-amd64"])
        #expect(r.input.boots[1].firstLine > firstLines)
    }

    /// The lab's real two-boot run: one QEMU process, the guest reboots (`reboot: Restarting
    /// system`); each boot's quiet console shows its error, then its own dmesg.
    @Test func realTwoBootCapture() throws {
        let r = try F.report(file: F.lab("two-boot"))
        #expect(r.input.bootCount == 2)
        #expect(r.input.boots.map(\.startedBy) == [.startOfLog, .reboot])
        #expect(r.input.boots.map(\.kernelVersion) == ["6.1.0-57-amd64", "6.1.0-57-amd64"])
        let vda = try #require(F.device(r, "vda"))
        #expect(vda.totalBlockErrors == 2)
        #expect(vda.blockErrors.map(\.operation) == [.write, .read])
        #expect(vda.blockErrors.map(\.location.boot) == [1, 2])
        #expect(r.input.duplicateEvents == 2)
    }

    @Test func consoleLinesOutOfOrderDoNotStartABoot() throws {
        let text = """
        [    5.000100] virtio_blk virtio0: [vda] 131072 512-byte logical blocks (67.1 MB/64.0 MiB)
        [    4.999950] I/O error, dev vda, sector 2048 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2
        [    5.000200] EXT4-fs (vda): mounted filesystem with ordered data mode
        [    0.700000] I/O error, dev vda, sector 4096 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2
        [    5.100000] I/O error, dev vda, sector 8192 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2

        """
        let (events, stats) = try F.events(text)
        #expect(stats.bootCount == 1)
        #expect(events.count == 5)
        #expect(events.allSatisfy { $0.location.boot == 1 })
    }

    /// kern.log keeps every boot; rsyslog writes the printk stamp inside the message.
    @Test func kernLogWithTwoBootsSplitsAtLinuxVersion() throws {
        let text = """
        Nov 22 14:40:00 host kernel: [    0.000000] Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP
        Nov 22 14:40:00 host kernel: [    0.150000] x86/fpu: Supporting XSAVE feature 0x001
        Nov 22 14:40:03 host kernel: [    2.329791] I/O error, dev vda, sector 2048 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2
        Nov 22 14:50:00 host kernel: [    0.000000] Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 SMP
        Nov 22 14:50:00 host kernel: [    0.151234] x86/fpu: Supporting XSAVE feature 0x001
        Nov 22 14:50:02 host kernel: [    1.800000] random: crng init done
        Nov 22 14:50:03 host kernel: [    2.329791] I/O error, dev vda, sector 2048 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2

        """
        let r = try F.report(text)
        #expect(r.input.bootCount == 2)
        #expect(r.input.boots.map(\.kernelVersion) == ["6.1.0-56-amd64", "6.1.0-57-amd64"])
        #expect(r.input.boots.map(\.startedBy) == [.startOfLog, .linuxVersion])
        #expect(r.input.boots.map(\.firstLine) == [1, 4])
        let vda = try #require(F.device(r, "vda"))
        // The same line with the same stamp in another boot is another error, not a repeat.
        #expect(vda.totalBlockErrors == 2)
        #expect(vda.blockErrors.map(\.location.boot) == [1, 2])
        #expect(r.input.duplicateEvents == 0)
    }

    @Test func wallClockOnlyLogSplitsAtLinuxVersion() throws {
        let text = """
        Nov 22 14:40:00 host kernel: Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP
        Nov 22 14:40:03 host kernel: I/O error, dev vda, sector 2048 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2
        Nov 22 14:50:00 host kernel: Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP
        Nov 22 14:50:03 host kernel: I/O error, dev vda, sector 4096 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2

        """
        let (events, stats) = try F.events(text)
        #expect(stats.bootCount == 2)
        #expect(events.map(\.location.boot) == [1, 2])
        #expect(events.map(\.location.time.precisionMicroseconds) == [1_000_000, 1_000_000])
    }

    @Test func stampPrecisionIsWhatTheLinePrinted() throws {
        let lines = [
            ("[  439.490934] I/O error, dev vda, sector 8 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 0", 1),
            ("Nov 22 14:42:17 host kernel: I/O error, dev vda, sector 8 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 0", 1_000_000),
            ("Nov 22 14:42:17.123456 host kernel: I/O error, dev vda, sector 8 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 0", 1),
            ("2026-11-22T14:42:17.123+01:00 host kernel: I/O error, dev vda, sector 8 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 0", 1000),
            ("[Sun Nov 22 14:42:17 2026] I/O error, dev vda, sector 8 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 0", 1_000_000),
        ]
        for (line, precision) in lines {
            let e = try #require(try F.event(line), "\(line)")
            #expect(e.location.time.precisionMicroseconds == precision, "\(line)")
        }
        let ms = try #require(try F.event(lines[3].0)).location.time.wallClock
        #expect(ms?.description == "2026-11-22T14:42:17.123+01:00")
        #expect(abs((ms?.unixSeconds ?? 0) - 1_795_354_937.123) < 1e-6)
    }

    /// A file in which nothing is a kernel message is not a clean guest log.
    @Test func inputWithNoKernelMessageIsRefused() throws {
        let notLogs = [
            "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
            try String(contentsOfFile: LabFixtures.path("write-eio", "qmp.jsonl"), encoding: .utf8),
            try String(contentsOfFile: LabFixtures.path("write-eio", "trace.log"), encoding: .utf8),
            try String(contentsOfFile: F.lab("werror-stop"), encoding: .utf8),
            "",
        ]
        for text in notLogs {
            let (_, stats) = try F.events(text)
            #expect(stats.recognisedKernelLines == 0)
            #expect(throws: GuestLogError.noKernelMessages(path: "x.log")) { try stats.requireKernelMessages(source: "x.log") }
        }
        #expect(GuestLogError.noKernelMessages(path: "x.log").description == "no kernel messages found in x.log: not a guest kernel log?")
        let (_, console) = try F.events(try String(contentsOfFile: F.lab("write-eio"), encoding: .utf8))
        #expect(console.recognisedKernelLines == 356)
        #expect(console.unrecognisedLines == 20)
        try console.requireKernelMessages(source: "console.log")
    }
}
