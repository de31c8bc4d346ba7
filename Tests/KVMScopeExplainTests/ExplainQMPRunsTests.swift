import Foundation
import Testing
@testable import KVMScopeExplain
import KVMScopeQMP
import KVMScopeTestSupport

/// A QMP input that is more than this guest's one run: found by an admin's review, where
/// another run's or another VM's BLOCK_IO_ERRORs were taken for this guest's.
/// - a raw stream a client kept appending to across QEMU restarts (a greeting after each
///   run's SHUTDOWN): the lab's host-disk-eio run, then its write-eio run;
/// - `virsh qemu-monitor-event --timestamp` with no domain, every domain's events interleaved:
///   the real libvirt-fs-full record, with write-eio's events re-emitted as virsh prints them
///   (tools/virsh-domain-event.c: `TIME: event NAME for domain 'D': JSON`) for a second
///   domain during the same minute.
@Suite struct ExplainQMPRunsTests {
    static func lab(_ scenario: String, _ file: String) -> String { LabFixtures.path(scenario, file) }

    static func write(_ text: String, _ name: String) throws -> String {
        let path = NSTemporaryDirectory() + "kvmscope-qmpruns-\(getpid())-\(name)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func explain(scenario: String, qmp: String, domain: String? = nil, trace: String = "trace.log") throws -> ExplainReport {
        var inputs = ExplainSession.Inputs(guest: try FileByteSource(path: lab(scenario, "console.log")),
                                           trace: try FileByteSource(path: lab(scenario, trace)),
                                           qmp: try FileByteSource(path: qmp))
        inputs.qmpDomain = domain
        return try ExplainSession.run(inputs)
    }

    @Test func aRawStreamOfTwoRunsIsReadFromTheLastRun() throws {
        let earlier = try String(contentsOfFile: Self.lab("host-disk-eio", "qmp.jsonl"), encoding: .utf8)
        let own = try String(contentsOfFile: Self.lab("write-eio", "qmp.jsonl"), encoding: .utf8)
        let path = try Self.write(earlier + own, "two-runs.jsonl")
        let alone = try Self.explain(scenario: "write-eio", qmp: Self.lab("write-eio", "qmp.jsonl"))
        let joined = try Self.explain(scenario: "write-eio", qmp: path)
        // The earlier run's two BLOCK_IO_ERRORs (a write and a read at other moments) are not this run's.
        let q = try #require(joined.qmp)
        #expect(q.ioErrorsTotal == 1 && q.ioErrorsTotal == alone.qmp?.ioErrorsTotal)
        #expect(joined.verdict.summary == alone.verdict.summary && joined.verdict.origin == alone.verdict.origin)
        #expect(joined.matches.count == alone.matches.count)
        let greeting = earlier.split(separator: "\n").count + 1
        #expect(joined.inputs.notes.contains {
            $0.contains("2 QEMU runs") && $0.contains("greeting at line \(greeting)") && $0.contains("events before it are another run")
        }, "\(joined.inputs.notes)")
    }

    /// A stream with a greeting and replies but no event is one VM's, with nothing in it (not
    /// "the QMP events of 0 domains").
    @Test func aStreamWithoutEventsIsStillRead() throws {
        let own = try String(contentsOfFile: Self.lab("write-eio", "qmp.jsonl"), encoding: .utf8)
        let quiet = own.split(separator: "\n").filter { !$0.contains("\"event\"") }.joined(separator: "\n") + "\n"
        let r = try Self.explain(scenario: "write-eio", qmp: try Self.write(quiet, "no-events.jsonl"))
        #expect(r.qmp?.eventsTotal == 0)
        #expect(r.matches.count == 1)
    }

    @Test func monitorReconnectsWithoutShutdownAreOneRun() throws {
        let own = try String(contentsOfFile: Self.lab("write-eio", "qmp.jsonl"), encoding: .utf8)
        var lines = own.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // A second client connection (as `record` makes) in the middle: QMP greets it anew.
        lines.insert(lines[0], at: 4)
        let path = try Self.write(lines.joined(separator: "\n"), "reconnect.jsonl")
        let r = try Self.explain(scenario: "write-eio", qmp: path)
        #expect(r.qmp?.ioErrorsTotal == 1)
        #expect(!r.inputs.notes.contains { $0.contains("QEMU runs") })
    }

    /// write-eio's events as virsh prints them, for domain `other-vm`, moved into libvirt-fs-full's minute.
    static func allDomainsLog() throws -> String {
        let own = try String(contentsOfFile: Self.lab("libvirt-fs-full", "qmp-events.txt"), encoding: .utf8)
        let other = try QMPEventReader.readAll(FileByteSource(path: Self.lab("write-eio", "qmp.jsonl"))).events
        let base = other.first!.time!
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS"
        let start = try #require(formatter.date(from: "2026-12-01 14:54:39.000")).timeIntervalSince1970
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var records: [(Double, String)] = []
        for line in own.split(separator: "\n") {
            let t = try #require(formatter.date(from: String(line.prefix(23)))).timeIntervalSince1970
            records.append((t, String(line)))
        }
        for e in other {
            let t = start + (e.time! - base)
            let data = try e.data.map { String(decoding: try encoder.encode($0), as: UTF8.self) } ?? "<null>"
            records.append((t, "\(formatter.string(from: Date(timeIntervalSince1970: t)))+0000: event \(e.name) for domain 'other-vm': \(data)"))
        }
        return records.sorted { $0.0 < $1.0 }.map(\.1).joined(separator: "\n") + "\n"
    }

    /// The committed copy (docs/explain.md runs it) is this transformation's output.
    static let committed = TestFixtures.path("qmp/all-domains-virsh.txt")

    @Test func theCommittedAllDomainsLogIsTheTransformation() throws {
        let made = try Self.allDomainsLog()
        if ProcessInfo.processInfo.environment["KVMSCOPE_REGENERATE"] == "1" {
            try made.write(toFile: Self.committed, atomically: true, encoding: .utf8)
        }
        #expect(try String(contentsOfFile: Self.committed, encoding: .utf8) == made)
    }

    @Test func everyDomainsEventsNeedTheGuestsDomainNamed() throws {
        let path = try Self.write(try Self.allDomainsLog(), "all-domains.txt")
        let alone = try Self.explain(scenario: "libvirt-fs-full", qmp: Self.lab("libvirt-fs-full", "qmp-events.txt"), trace: "libvirt-qemu.log")
        #expect(throws: KVMScopeError.self) {
            try Self.explain(scenario: "libvirt-fs-full", qmp: path, trace: "libvirt-qemu.log")
        }
        do {
            _ = try Self.explain(scenario: "libvirt-fs-full", qmp: path, trace: "libvirt-qemu.log")
        } catch let KVMScopeError.usage(message) {
            #expect(message == "\(path) holds the QMP events of 2 domains: other-vm (5 events), kvmscope-lab-fs-full (4 events); name this guest's with --domain NAME")
        }
        let chosen = try Self.explain(scenario: "libvirt-fs-full", qmp: path, domain: "kvmscope-lab-fs-full", trace: "libvirt-qemu.log")
        #expect(chosen.verdict.summary == alone.verdict.summary && chosen.verdict.origin == alone.verdict.origin)
        #expect(chosen.qmp?.ioErrorsTotal == 2 && chosen.qmp?.eventsTotal == 4)
        #expect(chosen.matches.count == 2 && chosen.matches.allSatisfy { $0.qmp != nil })
        #expect(chosen.inputs.notes.contains { $0.contains("domain 'kvmscope-lab-fs-full' (--domain)") && $0.contains("1 other domain") })
        do {
            _ = try Self.explain(scenario: "libvirt-fs-full", qmp: path, domain: "nosuch", trace: "libvirt-qemu.log")
            Issue.record("a domain the input does not hold was accepted")
        } catch let KVMScopeError.usage(message) {
            #expect(message.hasPrefix("\(path) has no QMP events of domain 'nosuch' (it has: other-vm (5 events), kvmscope-lab-fs-full (4 events))"))
        }
    }
}
