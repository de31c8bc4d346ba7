import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeGuestLog

/// Every timestamp style the guest reader recognises, on lines of the shape each tool prints.
@Suite struct KernelLinePrefixTests {
    func kernel(_ line: String, previousWasKmsg: Bool = false) -> (prefix: KernelLinePrefix, message: String)? {
        guard case .kernel(let p) = GuestFixtures.prefix(line, previousWasKmsg: previousWasKmsg) else { return nil }
        let message = String(decoding: Array(line.utf8)[p.messageStart...], as: UTF8.self)
        return (p, message)
    }

    @Test func printkUptime() throws {
        let r = try #require(kernel("[  439.490934] end_request: I/O error, dev vda, sector 494491"))
        #expect(r.prefix.style == .printk)
        #expect(r.prefix.time.uptimeMicroseconds == 439_490_934)
        #expect(r.prefix.time.wallClock == nil)
        #expect(r.message == "end_request: I/O error, dev vda, sector 494491")
        // Exact microseconds, no floating-point drift.
        #expect(r.prefix.time.uptimeSeconds == 439.490934)
        #expect(GuestLogTime.formatUptime(r.prefix.time.uptimeMicroseconds!) == "439.490934")
    }

    @Test func uptimesOfYears() throws {
        // Real: a host up 250 days (kern.log), and far beyond.
        let r = try #require(kernel("[21675145.601891] blk_update_request: critical target error, dev sdau, sector 0"))
        #expect(r.prefix.style == .printk)
        #expect(r.prefix.time.uptimeMicroseconds == 21_675_145_601_891)
        let far = try #require(kernel("[142880005.000001] I/O error, dev vdj, sector 56"))
        #expect(far.prefix.time.uptimeMicroseconds == 142_880_005_000_001)
        #expect(GuestLogTime.formatUptime(142_880_005_000_001) == "142880005.000001")
        // Beyond what microseconds in 64 bits can hold: not a stamp, so the line is bare.
        let absurd = try #require(kernel("[99999999999999.000000] x"))
        #expect(absurd.prefix.style == .bare)
    }

    @Test func printkCallerOnConsoleAndInDmesg() throws {
        // Console: "[%5lu.%06lu][%6s] " (kernel/printk/printk.c print_time + print_caller).
        let console = try #require(kernel("[    0.770587][    C0] blk_update_request: I/O error, dev vdc, sector 0"))
        #expect(console.prefix.style == .printkCaller)
        #expect(console.prefix.time.uptimeMicroseconds == 770_587)
        #expect(console.message == "blk_update_request: I/O error, dev vdc, sector 0")
        // The example, with a one-digit fraction.
        let short = try #require(kernel("[  4.1][   T123] EXT4-fs (vda): Remounting filesystem read-only"))
        #expect(short.prefix.style == .printkCaller)
        #expect(short.prefix.time.uptimeMicroseconds == 4_100_000)
        #expect(short.message == "EXT4-fs (vda): Remounting filesystem read-only")
        // dmesg(1) prints the caller after a space.
        let dmesg = try #require(kernel("[    3.100000] [  T123] I/O error, dev vdb, sector 4096"))
        #expect(dmesg.prefix.style == .printkCaller)
        #expect(dmesg.message == "I/O error, dev vdb, sector 4096")
    }

    @Test func dmesgWallClockWithPaddedDay() throws {
        // strftime "%a %b %e %H:%M:%S %Y": single-digit days are space-padded.
        let r = try #require(kernel("[Tue Oct  4 10:14:30 2022] print_req_error: 4 callbacks suppressed"))
        #expect(r.prefix.style == .dmesgWallClock)
        #expect(r.prefix.time.uptimeMicroseconds == nil)
        #expect(r.prefix.time.wallClock == WallClockTime(year: 2022, month: 10, day: 4, hour: 10, minute: 14, second: 30))
        #expect(r.message == "print_req_error: 4 callbacks suppressed")
        let two = try #require(kernel("[Sat Nov 22 14:42:17 2026] I/O error, dev vdd, sector 8"))
        #expect(two.prefix.time.wallClock?.description == "2026-11-22T14:42:17")
    }

    /// util-linux dmesg.c print_record: -d `[%5ld.%06ld <%12.06f>] `, -T -d `[%s <%12.06f>] `.
    @Test func dmesgDeltaKeepsTheUptimeNotTheDelta() throws {
        let r = try #require(kernel("[    3.210040 <    0.000010>] I/O error, dev sr0, sector 0 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2"))
        #expect(r.prefix.style == .dmesgDelta)
        #expect(r.prefix.time.uptimeMicroseconds == 3_210_040)
        #expect(r.prefix.time.wallClock == nil)
        #expect(r.message.hasPrefix("I/O error, dev sr0"))
        let big = try #require(kernel("[12345.678901 <  120.000001>] EXT4-fs error (device vda): x"))
        #expect(big.prefix.style == .dmesgDelta)
        #expect(big.prefix.time.uptimeMicroseconds == 12_345_678_901)
        let caller = try #require(kernel("[    3.100000 <    0.000100>] [  T123] I/O error, dev vdb, sector 4096"))
        #expect(caller.prefix.style == .dmesgDelta)
        #expect(caller.message == "I/O error, dev vdb, sector 4096")
        // Not a delta: left as before (bare).
        #expect(kernel("[    3.210040 <0.1] x")?.prefix.style == .bare)
        #expect(kernel("[    3.210040 <    0.000010> x")?.prefix.style == .bare)
    }

    @Test func dmesgWallClockDeltaKeepsTheWallClock() throws {
        let r = try #require(kernel("[Wed Dec  2 10:00:03 2026 <    0.000010>] I/O error, dev vda, sector 8"))
        #expect(r.prefix.style == .dmesgWallClockDelta)
        #expect(r.prefix.time.uptimeMicroseconds == nil)
        #expect(r.prefix.time.wallClock == WallClockTime(year: 2026, month: 12, day: 2, hour: 10, minute: 0, second: 3))
        #expect(r.prefix.time.precisionMicroseconds == 1_000_000)
        #expect(r.message == "I/O error, dev vda, sector 8")
    }

    /// dmesg -e: `[%b%e %H:%M] ` for a new minute, `[  %+8.06f] ` / `[ %+9.06f] ` after.
    @Test func dmesgRelTimeIsAKernelLineWithoutATime() throws {
        for (line, message) in [("[Dec 2 10:00] I/O error, dev vda, sector 8", "I/O error, dev vda, sector 8"),
                                ("[Nov22 16:06] Linux version 6.1.0", "Linux version 6.1.0"),
                                ("[  +0.000010] I/O error, dev vda, sector 16", "I/O error, dev vda, sector 16"),
                                ("[ +12.500000] EXT4-fs (vda): x", "EXT4-fs (vda): x"),
                                ("[ +123.500000] EXT4-fs (vda): y", "EXT4-fs (vda): y")] {
            let r = try #require(kernel(line))
            #expect(r.prefix.style == .dmesgRelTime, "\(line)")
            #expect(r.prefix.time == .unknown, "\(line)")
            #expect(r.message == message)
        }
        // Kernel messages that start with a bracket stay bare.
        #expect(kernel("[drm] Initialized")?.prefix.style == .bare)
        #expect(kernel("[Firmware Bug]: TSC doesn't count")?.prefix.style == .bare)
        #expect(kernel("[Dec 2 1000] x")?.prefix.style == .bare)
        #expect(kernel("[  +0.5] x")?.prefix.style == .bare)
    }

    @Test func dmesgISO() throws {
        let r = try #require(kernel("2026-11-22T14:42:18,123456+00:00 I/O error, dev vde, sector 16"))
        #expect(r.prefix.style == .dmesgISO)
        #expect(r.prefix.time.wallClock == WallClockTime(year: 2026, month: 11, day: 22, hour: 14, minute: 42, second: 18,
                                                         microsecond: 123_456, utcOffsetMinutes: 0))
        #expect(r.message == "I/O error, dev vde, sector 16")
    }

    @Test func kmsgRecordsAndTheirContinuations() throws {
        let r = try #require(kernel("3,1243,9436467335,-;print_req_error: I/O error, dev sdf, sector 9984"))
        #expect(r.prefix.style == .kmsg)
        #expect(r.prefix.time.uptimeMicroseconds == 9_436_467_335)
        #expect(r.message == "print_req_error: I/O error, dev sdf, sector 9984")
        // Continuation (dictionary) lines and user-space records (facility != 0) are not kernel messages.
        #expect(GuestFixtures.prefix(" SUBSYSTEM=scsi", previousWasKmsg: true) == .notKernel)
        #expect(GuestFixtures.prefix("12,340,5140950,-;I/O error, dev vdz, sector 1") == .notKernel)
    }

    @Test func journalctlShortFormats() throws {
        let short = try #require(kernel("Jul 10 11:48:05 mgmt kernel: blk_update_request: I/O error, dev sda, sector 54439176"))
        #expect(short.prefix.style == .journal)
        #expect(short.prefix.time.wallClock == WallClockTime(year: nil, month: 7, day: 10, hour: 11, minute: 48, second: 5))
        #expect(short.prefix.time.wallClock?.description == "Jul 10 11:48:05")
        #expect(short.message == "blk_update_request: I/O error, dev sda, sector 54439176")
        // --no-hostname
        let noHost = try #require(kernel("Feb 26 19:00:47 kernel: sd 8:0:0:0: rejecting I/O to offline device"))
        #expect(noHost.prefix.style == .journal)
        #expect(noHost.message == "sd 8:0:0:0: rejecting I/O to offline device")
        // short-iso
        let iso = try #require(kernel("2026-11-22T14:42:20+0100 guest kernel: I/O error, dev vdh, sector 40"))
        #expect(iso.prefix.style == .journal)
        #expect(iso.prefix.time.wallClock?.utcOffsetMinutes == 60)
        #expect(iso.message == "I/O error, dev vdh, sector 40")
        // short-monotonic
        let mono = try #require(kernel("[  439.490934] guest kernel: I/O error, dev vdi, sector 48"))
        #expect(mono.prefix.style == .journal)
        #expect(mono.prefix.time.uptimeMicroseconds == 439_490_934)
        #expect(mono.message == "I/O error, dev vdi, sector 48")
    }

    @Test func syslogKeepsPrintkStampInside() throws {
        let r = try #require(kernel("Sep 23 13:23:22 iSCSI-SAN kernel: [1287396.871528] print_req_error: I/O error, dev sdd, sector 16"))
        #expect(r.prefix.style == .syslog)
        #expect(r.prefix.time.uptimeMicroseconds == 1_287_396_871_528)
        #expect(r.prefix.time.wallClock?.month == 9)
        #expect(r.message == "print_req_error: I/O error, dev sdd, sector 16")
    }

    @Test func otherProgramsInSyslogAreNotKernel() {
        #expect(GuestFixtures.prefix("Nov 22 14:42:22 guest sshd[812]: error: kex_exchange_identification") == .notKernel)
        #expect(GuestFixtures.prefix("2026-11-22T14:42:20+0100 guest systemd[1]: Started foo.service.") == .notKernel)
    }

    @Test func dmesgRawAndDecodedLevelPrefixes() throws {
        let raw = try #require(kernel("<3>[  439.490934] end_request: I/O error, dev vda, sector 494491"))
        #expect(raw.prefix.style == .printk)
        #expect(raw.message == "end_request: I/O error, dev vda, sector 494491")
        let decoded = try #require(kernel("kern  :err   : [  439.490934] end_request: I/O error, dev vda, sector 494491"))
        #expect(decoded.prefix.style == .printk)
        #expect(decoded.prefix.time.uptimeMicroseconds == 439_490_934)
        #expect(decoded.message == "end_request: I/O error, dev vda, sector 494491")
    }

    @Test func consoleNoiseIsBare() throws {
        for line in ["SeaBIOS (version 1.16.2-debian-1.16.2-1)", "+ dd if=/dev/zero of=/dev/vda", "[  OK  ] Started Journal Service.",
                     "Nov", "[", "2026-13-01T00:00:00 x", "[ 12.5", ""] {
            let r = try #require(kernel(line), "\(line)")
            #expect(r.prefix.style == .bare, "\(line)")
            #expect(r.prefix.messageStart == 0, "\(line)")
        }
    }
}
