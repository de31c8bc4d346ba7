import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeGuestLog

/// The lab's real console captures re-emitted by lab/transform-guest-log the way journalctl,
/// rsyslog and pty/terminal captures write them (Tests/Fixtures/guest/transformed): each must
/// give the same block errors and filesystem events as the console it came from.
@Suite struct GuestTransformedFormatTests {
    typealias F = GuestFixtures

    enum Clock { case uptime, wall, both, none }

    static let formats: [(String, Clock, Int?)] = [
        ("json", .both, 1), ("json-pretty", .both, 1), ("json-seq", .both, 1), ("export", .both, 1),
        ("short", .wall, 1_000_000), ("short-precise", .wall, 1), ("short-iso", .wall, 1_000_000),
        ("short-iso-precise", .wall, 1), ("short-full", .wall, 1_000_000), ("with-unit", .wall, 1_000_000),
        ("short-monotonic", .uptime, 1), ("short-unix", .wall, 1), ("cat", .none, nil),
        ("rsyslog-traditional", .both, 1), ("rsyslog-rfc3339", .both, 1), ("rsyslog-rfc5424", .both, 1),
        ("crlf", .uptime, 1), ("glued", .uptime, 1), ("ansi", .uptime, 1),
        // dmesg -d keeps the uptime, -T -d the wall clock; -e's stamps give no usable time.
        ("dmesg-delta", .uptime, 1), ("dmesg-T-delta", .wall, 1_000_000), ("dmesg-reltime", .none, nil),
    ]

    static var cases: [(String, String)] {
        ["write-eio", "ext4-readonly"].flatMap { s in formats.map { (s, $0.0) } }
    }

    /// What the analysis found, without the times (which each format gives differently).
    static func findings(_ r: GuestDiskReport) -> [String] {
        var out: [String] = []
        for d in r.devices where d.hasErrors {
            out.append("\(d.name): \(d.totalBlockErrors) block, \(d.totalBufferErrors) buffer, lost \(d.lostBlocks.lostWrites)")
            for e in d.blockErrors {
                out.append("  \(e.sector) \(e.operation?.rawValue ?? "-") \(e.errorType.text)")
            }
            for fs in d.filesystems {
                out.append("  \(fs.type) ro=\(fs.readOnly) aborted=\(fs.journalAborted) errors=\(fs.errors) sb=\(fs.superblockWriteErrors) inode=\(fs.inodeWriteErrors) \(fs.errorFunctions.sorted { $0.key < $1.key })")
            }
        }
        return out
    }

    @Test(arguments: cases)
    func sameFindingsAsTheConsole(_ scenario: String, _ format: String) throws {
        let original = try F.report(file: F.lab(scenario))
        let path = TestFixtures.path("guest/transformed/\(scenario).\(format).log")
        let r = try F.report(file: path)
        #expect(!Self.findings(original).isEmpty)
        #expect(Self.findings(r) == Self.findings(original))
        #expect(r.input.malformedLines == 0)
        #expect(r.input.binaryLines == 0)
        #expect(r.input.skippedJournalRecords == 0)
        #expect(r.input.bootCount == 1)
        let (_, clock, precision) = try #require(Self.formats.first { $0.0 == format })
        let errors = r.devices.flatMap(\.blockErrors)
        let originalErrors = original.devices.flatMap(\.blockErrors)
        for (e, o) in zip(errors, originalErrors) {
            switch clock {
            case .uptime, .both: #expect(e.location.time.uptimeMicroseconds == o.location.time.uptimeMicroseconds)
            case .wall, .none: #expect(e.location.time.uptimeMicroseconds == nil)
            }
            switch clock {
            case .wall, .both: #expect(e.location.time.wallClock?.month == 11)
            case .uptime, .none: #expect(e.location.time.wallClock == nil)
            }
            #expect(e.location.time.precisionMicroseconds == precision)
        }
    }

    /// Every line of dmesg's -d, -T -d and -e outputs is a kernel message of its style, none bare.
    @Test(arguments: [("dmesg-delta", KernelLogStyle.dmesgDelta), ("dmesg-T-delta", .dmesgWallClockDelta),
                      ("dmesg-reltime", .dmesgRelTime)])
    func dmesgTimeFormatsAreRecognisedOnEveryLine(_ format: String, _ style: KernelLogStyle) throws {
        let r = try F.report(file: TestFixtures.path("guest/transformed/write-eio.\(format).log"))
        #expect(r.input.styles == [style: r.input.lines])
        #expect(r.input.unrecognisedLines == 0)
        if style == .dmesgRelTime {
            #expect(r.input.firstUptimeMicroseconds == nil)
        }
    }

    /// The journal's wall clock is the capture's: QEMU started the guest at the first QMP
    /// event's time, printk's stamp counts from there.
    @Test func journalWallClockIsTheRealtimeTimestamp() throws {
        let r = try F.report(file: TestFixtures.path("guest/transformed/write-eio.json.log"))
        let e = try #require(r.devices.first?.blockErrors.first)
        #expect(e.location.time.uptimeMicroseconds == 2_329_791)
        // 1795363587.606461 + 2.329791 s
        #expect(e.location.time.wallClock?.description == "2026-11-22T16:06:29.936252Z")
        #expect(r.input.boots.first?.bootId == "279e59806275864525df00dde5da3e38")
    }

    /// Two real runs' kernel messages as one kern.log (rsyslog keeps every boot).
    @Test func twoRunsInOneKernLogAreTwoBoots() throws {
        let r = try F.report(file: TestFixtures.path("guest/transformed/two-boot.kern.log"))
        #expect(r.input.bootCount == 2)
        // Capture A ends with "reboot: Power down"; B's Linux version line follows.
        #expect(r.input.boots.map(\.startedBy) == [.startOfLog, .reboot])
        #expect(r.input.boots[1].kernelVersion == "6.1.0-56-amd64")
        let vda = try #require(F.device(r, "vda"))
        #expect(vda.boots == [1, 2])
        #expect(vda.blockErrors.map(\.location.boot) == [1, 2])
        #expect(vda.operations == ["write": 1, "flush": 1])
    }
}
