import Testing
import KVMScopeTestSupport
import KVMScopeCore
import KVMScope   // FormatRegistry: detection across every domain's formats
@testable import KVMScopeQMP

@Suite struct QMPEventReaderTests {
    /// Lines as the lab's QMP client recorded them from QEMU 7.2 (async-write-esrch scenario).
    let rawCapture = """
    {"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}
    {"return": {}, "id": "qmp_capabilities-1"}
    {"timestamp": {"seconds": 1795363351, "microseconds": 176797}, "event": "RESUME"}
    {"return": {}, "id": "cont-2"}
    {"timestamp": {"seconds": 1795363356, "microseconds": 671778}, "event": "BLOCK_IO_ERROR", "data": {"device": "drive0", "node-name": "#block206", "reason": "No such process", "operation": "write", "action": "report"}}

    """

    @Test func rawStreamKeepsEventsAndIgnoresGreetingAndReplies() throws {
        let (events, skipped) = try QMPEventReader.readAll(MemoryByteSource(rawCapture))
        #expect(skipped == 0)
        #expect(events.map(\.name) == ["RESUME", "BLOCK_IO_ERROR"])
        #expect(events[0].time == 1795363351.176797)
        #expect(events[0].data == nil)
        #expect(events[1].line == 5)
        let e = try #require(events[1].blockIOError)
        #expect(e == BlockIOError(device: "drive0", nodeName: "#block206", qomPath: nil, operation: .write,
                                  action: .report, nospace: false, reason: "No such process"))
    }

    /// `virsh qemu-monitor-event --pretty --timestamp`: libvirt prints the data pretty over several lines.
    @Test func virshPrettyWithTimestamp() throws {
        let text = """
        2026-11-22 14:42:17.123+0000: event BLOCK_IO_ERROR for domain 'vm1': {
          "device": "drive-virtio-disk0",
          "nospace": true,
          "node-name": "libvirt-1-format",
          "reason": "No space left on device",
          "operation": "write",
          "action": "stop"
        }
        2026-11-22 14:42:17.125+0000: event STOP for domain 'vm1': <null>
        event RESUME at 1795363999.000500 for domain 'vm1': <null>
        events received: 3
        """
        let (events, skipped) = try QMPEventReader.readAll(MemoryByteSource(text))
        #expect(events.map(\.name) == ["BLOCK_IO_ERROR", "STOP", "RESUME"])
        #expect(skipped == 1)   // the closing "events received" line
        let e = try #require(events[0].blockIOError)
        #expect(e.nospace && e.action == .stop && e.reason == "No space left on device")
        let t0 = try #require(events[0].time), t1 = try #require(events[1].time)
        #expect(abs(t1 - t0 - 0.002) < 1e-6)
        #expect(abs(t0 - 1795358537.123) < 1e-3)   // date -u -d "2026-11-22 14:42:17" +%s
        #expect(events[2].time == 1795363999.0005)
        #expect(events[1].line == 9)
    }

    @Test func virshCompactLines() throws {
        let text = "event BLOCK_IO_ERROR at 1795363356.671778 for domain 'vm1': {\"device\":\"\",\"node-name\":\"n1\",\"operation\":\"read\",\"action\":\"report\",\"reason\":\"Input/output error\"}\n"
        let (events, _) = try QMPEventReader.readAll(MemoryByteSource(text))
        #expect(events.count == 1)
        #expect(events[0].blockIOError?.operation == .read)
        #expect(events[0].blockIOError?.device == "")
    }

    /// The first virsh release (libvirt 1.2.2, 2014) printed the domain unquoted and NULL as `(null)`.
    @Test func virshFirstReleaseShape() throws {
        let (events, skipped) = try QMPEventReader.readAll(MemoryByteSource("event SHUTDOWN at 1391212552.026544 for domain f18-live: (null)\nevents received: 1\n"))
        #expect(events.map(\.name) == ["SHUTDOWN"])
        #expect(events[0].time == 1391212552.026544)
        #expect(skipped == 1)
    }

    @Test func garbageIsSkippedAndCountedNeverFatal() throws {
        let text = "not qmp\n{\"broken json\n\u{0}\u{1}binary\n{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 0}}\n2026-13-99 99:99: event X for domain 'v': {\n"
        let (events, skipped) = try QMPEventReader.readAll(MemoryByteSource(text))
        #expect(events.map(\.name) == ["STOP"])
        #expect(skipped == 4)
    }

    @Test func unterminatedPrettyRecordIsCountedNotLost() throws {
        let text = "event BLOCK_IO_ERROR at 1.0 for domain 'vm': {\n  \"device\": \"d\",\n"
        let (events, skipped) = try QMPEventReader.readAll(MemoryByteSource(text))
        #expect(events.isEmpty)
        #expect(skipped == 2)
    }

    @Test func detection() {
        let yes = Array(rawCapture.utf8)
        let no = Array("[  439.490934] end_request: I/O error, dev vda, sector 494491\n".utf8)
        #expect(yes.withUnsafeBytes { QMPEventFormat().recognizes($0) })
        #expect(!no.withUnsafeBytes { QMPEventFormat().recognizes($0) })
        #expect(FormatRegistry.named("qmp")?.kind == .qmpEvents)
    }
}

/// Every QMP capture of the lab, as QEMU 7.2 sent it.
@Suite struct QMPLabCaptureTests {
    func events(_ scenario: String) throws -> [QMPEvent] {
        let (events, skipped) = try QMPEventReader.readAll(FileByteSource(path: LabFixtures.path(scenario, "qmp.jsonl")))
        #expect(skipped == 0, "\(scenario): every line of a real QMP stream is understood")
        return events
    }

    @Test func allCapturesParseCleanly() throws {
        let names = LabFixtures.scenarios(with: "qmp.jsonl")
        #expect(names.count >= 7)
        for n in names { _ = try events(n) }
    }

    @Test func writeEIOReportsToTheGuest() throws {
        let errors = try events("write-eio").compactMap(\.blockIOError)
        #expect(!errors.isEmpty)
        #expect(errors.allSatisfy { $0.operation == .write && $0.action == .report && $0.reason == "Input/output error" && !$0.nospace })
    }

    @Test func enospcPausesThenResumes() throws {
        let e = try events("enospc-pause")
        let i = try #require(e.firstIndex { $0.blockIOError?.nospace == true })
        #expect(e[i].blockIOError?.action == .stop)
        #expect(e[i].blockIOError?.reason == "No space left on device")
        let stop = try #require(e[i...].firstIndex { $0.name == "STOP" })
        let resume = try #require(e[stop...].firstIndex { $0.name == "RESUME" })
        let paused = try #require(e[resume].time) - (try #require(e[stop].time))
        #expect(paused > 0.5 && paused < 30)   // the lab's client sends `cont` about 1 s later
    }
}
