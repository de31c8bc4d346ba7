import Testing
import Foundation
import KVMScopeCore
import KVMScopeGuestLog
@testable import KVMScopeHost

/// The block:block_rq_error tracepoint's records as the tools that print them print them, and
/// what the host report makes of them beside the kernel log (each failed request once).
@Suite struct BlockRequestErrorTracepointTests {
    static func parse(_ text: String) -> BlockRequestErrorRecord? {
        Array(text.utf8).withUnsafeBufferPointer { BlockRequestErrorTracepoint.parse(LineBytes($0)) }
    }

    /// Lines from this machine (Linux 6.18: trace_pipe) and the other tools' layouts of them.
    @Test func readsEveryPrinterLayout() throws {
        let pipe = try #require(Self.parse("     ksoftirqd/1-22      [001] ..s.. 41919.832778: block_rq_error: 7,0 WS () 2048 + 8 be,0,4 [-5]"))
        #expect(pipe == BlockRequestErrorRecord(timeMicroseconds: 41_919_832_778, major: 7, minor: 0, rwbs: "WS",
                                                sector: 2048, sectors: 8, errno: 5))
        #expect(pipe.operation == "write" && pipe.deviceNumber == "7:0")
        // trace-cmd report pads the payload; Linux 6.1 prints no I/O priority triple.
        let report = try #require(Self.parse("     ksoftirqd/1-22      [001] 41919.839705: block_rq_error:       7,0 RS () 2056 + 8 [-5]"))
        #expect(report.operation == "read" && report.sector == 2056 && report.errno == 5 && report.timeMicroseconds == 41_919_839_705)
        // perf script names the event with its system.
        let perf = try #require(Self.parse("     ksoftirqd/1    22 [001] 41920.000001: block:block_rq_error: 259,65536 FWFS () 0 + 0 none,0,0 [-28]"))
        #expect(perf.major == 259 && perf.minor == 65536 && perf.operation == "write" && perf.errno == 28)
        // Real `perf script` output of perf 6.1 here (its libtraceevent prints the ioprio class as hex).
        let perf61 = try #require(Self.parse("     ksoftirqd/1    22 [001] 43270.925720: block:block_rq_error: 7,0 WS () 2048 + 8 0x2,0,4 [-5]"))
        #expect(perf61.sector == 2048 && perf61.timeMicroseconds == 43_270_925_720)
        #expect(Self.parse("x-1 [000] .... 1.000000: block_rq_error: 8,0 DE () 64 + 8 [-95]")?.operation == "secure-erase")
        #expect(Self.parse("x-1 [000] .... 1.000000: block_rq_error: 8,0 FF () 0 + 0 [-5]")?.operation == "flush")
        #expect(Self.parse("x-1 [000] .... 1.000000: block_rq_error: 8,0 N () 0 + 0 [-5]")?.operation == "unknown")
    }

    /// Garbled or hostile lines are not records (and never trap).
    @Test func refusesWhatIsNotARecord() {
        for line in [
            "block_rq_error: 7,0 WS () 2048 + 8 [-5]",                                   // no stamp
            "x-1 [000] 1.0: block_rq_error: 7,0 WS () 2048 + 8",                          // no error
            "x-1 [000] 1.0: block_rq_error: 7,0 WS () 2048 + 8 [5]",                      // not a negative errno
            "x-1 [000] 1.0: block_rq_error: 7,0 WS () 2048 + 8 [-99999]",                 // beyond MAX_ERRNO
            "x-1 [000] 1.0: block_rq_error: 99999,0 WS () 2048 + 8 [-5]",                 // major beyond 12 bits
            "x-1 [000] 1.0: block_rq_error: 7,0 WS () 99999999999999999999999 + 8 [-5]",   // sector overflows
            "x-1 [000] 1.0: block_rq_error: 7,0 WS () 2048 + 99999999999 [-5]",           // nr_sector beyond 32 bits
            "x-1 [000] 99999999999999999999.0: block_rq_error: 7,0 WS () 2048 + 8 [-5]",  // stamp overflows
            "x-1 [000] 1.0: block_rq_error: 7,0 WS (2048 + 8 [-5]",                       // cut
            "x-1 [000] 1.0: block_rq_complete: 7,0 WS () 2048 + 8 [0]",                   // another event
        ] {
            #expect(Self.parse(line) == nil, "\(line)")
        }
    }

    static let recording = """
                kvmscope-1124    [001] ...1. 42652.155452: tracing_mark_write: kvmscope record: begin
             ksoftirqd/0-14      [000] ..s.. 42653.864520: block_rq_error: 7,0 WS () 2048 + 8 be,0,4 [-5]
             ksoftirqd/0-14      [000] ..s.. 42653.908879: block_rq_error: 7,0 WS () 2048 + 8 be,0,4 [-5]
             ksoftirqd/0-14      [000] ..s.. 42653.950001: block_rq_error: 7,0 WS () 2048 + 8 be,0,4 [-5]
             ksoftirqd/0-14      [000] ..s.. 42653.990001: block_rq_error: 7,0 RS () 4096 + 8 be,0,4 [-5]

        """
    static let kernelLog = """
        2026-12-01T20:05:42,013168+00:00 I/O error, dev loop0, sector 2048 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2
        2026-12-01T20:05:42,053168+00:00 I/O error, dev loop0, sector 2048 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2
        2026-12-01T20:05:47,013168+00:00 blk_print_req_error: 2 callbacks suppressed
        2026-12-01T20:05:47,013168+00:00 I/O error, dev loop1, sector 8 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2

        """

    /// A kernel message that is a tracepoint record again (one branch of blk_update_request
    /// prints both) is counted once; one the tracepoint has not (another device) stays.
    @Test func eachFailedRequestCountsOnce() throws {
        let trace = BlockTracepointRecording(stream: MemoryByteSource(Self.recording, name: "host-block-errors.log"),
                                             context: BlockTracepointContext(deviceNames: ["7:0": "loop0"],
                                                                             wallOffsetMicroseconds: 1_796_112_885_416_293),
                                             complete: true)
        let r = try HostKernelSession.read(MemoryByteSource(Self.kernelLog, name: "host-dmesg.log"), blockTrace: trace)
        #expect(r.input.blockTracepointRecords == 4)
        #expect(r.input.blockErrorsAlsoTraced == 2)
        #expect(r.input.blockTracepointComplete)
        #expect(r.kinds[.blockError] == 5)   // 4 records + loop1's message
        let loop0 = try #require(r.devices.first { $0.device == "loop0" })
        #expect(loop0.findings == 4 && loop0.operations == ["write": 3, "read": 1] && loop0.errnos == ["EIO": 4])
        #expect(r.devices.contains { $0.device == "loop1" && $0.findings == 1 })
        let first = try #require(r.findings.first)
        #expect(first.source == .blockTracepoint && first.line == 2)
        // The trace clock, calibrated: 42653.864520 + offset = 2026-12-01T20:05:39.280813Z.
        #expect(abs((first.time.wallClock?.unixSeconds ?? 0) - 1_796_155_539.280813) < 1e-6)
        #expect(first.time.uptimeMicroseconds == nil)
    }

    /// Without the device table, `MAJ:MIN` is the name (never a guessed one), and a file of
    /// tracepoint lines alone is a host report, not "not a kernel log".
    @Test func aTracepointFileAloneIsAHostReport() throws {
        let r = try HostKernelSession.read(MemoryByteSource(Self.recording, name: "perf.txt"))
        #expect(r.findingsTotal == 4 && r.devices.map(\.device) == ["7:0"])
        #expect(r.findings.first?.time.uptimeMicroseconds == 42_653_864_520)
        #expect(!r.input.blockTracepointComplete)
        let text = HostReportRenderer.text(r)
        #expect(text.contains("4 block_rq_error tracepoint records"))
        #expect(text.contains("block I/O error (tracepoint) 7:0"))
    }
}
