import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeHost
@testable import KVMScopeWatch

/// Kernel messages handed out as a test wants them, as /dev/kmsg would (dmesg-iso lines).
final class FakeKernelLog: KernelLogFeed, @unchecked Sendable {
    var pollDescriptor: Int32 { -1 }
    private let lock = NSLock()
    private var lines: [String] = []
    private var runs = 0
    /// Set by the test, read by the watch's thread.
    var queued: [String] {
        get { lock.withLock { lines } }
        set { lock.withLock { lines = newValue } }
    }
    var lostRecordRuns: Int {
        get { lock.withLock { runs } }
        set { lock.withLock { runs = newValue } }
    }
    func readAvailable(limit: Int) -> [String] {
        lock.withLock {
            let n = min(limit, lines.count)
            defer { lines.removeFirst(n) }
            return Array(lines.prefix(n))
        }
    }
}

/// block_rq_error records as trace_pipe prints them.
final class FakeBlockTrace: BlockErrorTraceFeed {
    var pollDescriptor: Int32 { -1 }
    var queued: [String] = []
    var devices: [String: String] = ["7:0": "loop0", "8:16": "sdb"]
    var lostRecords: UInt64 = 0
    private(set) var closed = false
    func readAvailable() -> [[UInt8]] { defer { queued = [] }; return queued.map { Array(($0 + "\n").utf8) } }
    func close() { closed = true }
}

enum HostLines {
    static func ioError(_ dev: String, _ sector: Int, _ op: String = "0x1:(WRITE)") -> String {
        "2026-12-01T11:50:31,425726+00:00 I/O error, dev \(dev), sector \(sector) op \(op) flags 0x8800 phys_seg 1 prio class 2\n"
    }
    static func traced(_ devno: String, _ sector: Int, rwbs: String = "WS") -> String {
        "ksoftirqd/1-22  [001] ..s.. 41919.832778: block_rq_error: \(devno.replacingOccurrences(of: ":", with: ",")) \(rwbs) () \(sector) + 8 be,0,4 [-5]"
    }
    static let stamp = "2026-12-01T11:50:31,425726+00:00 "
}

@Suite struct HostKernelWatchTests {
    func render(_ m: WatchMetrics) -> String { String(decoding: m.render(), as: UTF8.self) }
    func hostErrors(_ text: String, _ device: String, _ kind: String) -> Double? {
        Exposition.value(text, "kvmscope_host_block_errors_total", [("device", device), ("kind", kind)])
    }

    /// Each host error counted is one `host` record in the event log, in the kernel's words and
    /// kvmscope's; a message that is the other half of a traced request is not logged twice.
    @Test func eachHostErrorIsOneEventLogRecord() throws {
        let m = WatchMetrics()
        let log = FakeKernelLog(), events = WatchEventCollector()
        let w = HostKernelWatch(kernelLog: log, blockTrace: nil, series: m.host, events: events)
        log.queued = [
            HostLines.ioError("sdb", 2048),
            HostLines.stamp + "nfs: server 10.0.0.5 OK\n",                         // a recovery: not an error
            HostLines.stamp + "systemd[1]: Started something.\n",
        ]
        w.pump(now: 0)
        let r = try #require(events.records.first)
        #expect(events.records.count == 1)
        #expect(r.type == .host && r.event == "block-error" && r.device == "sdb" && r.sector == 2048)
        #expect(r.domain == nil && r.qmp == nil, "a host error is the host's, not a VM's")
        #expect(r.errno == "EIO" && r.errnoNumber == 5)
        #expect(r.message?.contains("I/O error, dev sdb, sector 2048") == true, "\(r.message ?? "nil")")
        #expect(r.explanation?.hasPrefix("block I/O error on host device sdb, from the host kernel log") == true)
        let line = try #require(try JSONSerialization.jsonObject(with: Data(r.jsonLine().utf8)) as? [String: Any])
        #expect(line["domain"] is NSNull && line["sector"] as? Int == 2048)
    }

    @Test func countsEachKindOfHostStorageErrorByDevice() throws {
        let m = WatchMetrics()
        let log = FakeKernelLog()
        let w = HostKernelWatch(kernelLog: log, blockTrace: nil, series: m.host)
        log.queued = [
            HostLines.ioError("sdb", 2048), HostLines.ioError("sdb", 4096),
            HostLines.stamp + "sd 2:0:0:0: [sdb] tag#12 Sense Key : Medium Error [current] \n",
            HostLines.stamp + "Buffer I/O error on dev dm-0, logical block 1234, lost async page write\n",
            HostLines.stamp + "device-mapper: multipath: 253:0: Failing path 8:16.\n",
            HostLines.stamp + "nfs: server 10.0.0.5 not responding, still trying\n",
            HostLines.stamp + "nfs: server 10.0.0.5 OK\n",                         // a recovery: not an error
            HostLines.stamp + "EXT4-fs (loop0): mounted filesystem with ordered data mode.\n",   // noise
            HostLines.stamp + "systemd[1]: Started something.\n",
        ]
        w.pump(now: 0)
        let t = render(m)
        #expect(hostErrors(t, "sdb", "block-error") == 2)
        #expect(hostErrors(t, "sdb", "scsi-sense") == 1)
        #expect(hostErrors(t, "dm-0", "buffer-io-error") == 1)
        #expect(hostErrors(t, "253:0", "multipath-failing-path") == 1)
        #expect(hostErrors(t, "10.0.0.5", "nfs-not-responding") == 1)
        #expect(!t.contains("nfs-recovered") && !t.contains("kind=\"noise"), "\(t)")
        #expect(Exposition.value(t, "kvmscope_watch_source_up", [("source", "host-kernel-log")]) == 1)
        #expect(Exposition.value(t, "kvmscope_watch_source_up", [("source", "block-tracepoint")]) == 0)
        if let problems = try Exposition.promtoolProblems(t) { Issue.record("promtool check metrics: \(problems)\n\(t)") }
    }

    @Test func kindLabelsAreKebabCaseOfTheHostFindingKinds() {
        #expect(HostKernelCounter.kebab("blockError") == "block-error")
        #expect(HostKernelCounter.kebab("bufferIOError") == "buffer-io-error")
        #expect(HostKernelCounter.kebab("dmCryptError") == "dm-crypt-error")
        #expect(HostKernelCounter.kebab("filesystemReadOnly") == "filesystem-read-only")
        #expect(HostKernelCounter.kindLabel(.oomKill) == nil && HostKernelCounter.kindLabel(.hungTask) == nil)
    }

    /// blk_update_request prints the message and fires the tracepoint for one failed request:
    /// counted once whichever is read first; other requests, and rate-limited messages (a record
    /// with no message), each once.
    @Test func aRequestInTheLogAndTheTracepointIsCountedOnceInEitherOrder() {
        let m = WatchMetrics()
        let log = FakeKernelLog(), trace = FakeBlockTrace()
        let w = HostKernelWatch(kernelLog: log, blockTrace: trace, series: m.host)
        // Record first, message after (the usual order in one pump).
        trace.queued = [HostLines.traced("7:0", 2048)]
        log.queued = [HostLines.ioError("loop0", 2048)]
        w.pump(now: 100)
        // Message first, its record read at the next pump.
        log.queued = [HostLines.ioError("loop0", 4096)]
        w.pump(now: 101)
        trace.queued = [HostLines.traced("7:0", 4096)]
        w.pump(now: 101.5)
        // Three records whose messages the rate limiter dropped; a read at another sector.
        trace.queued = [HostLines.traced("7:0", 8192), HostLines.traced("7:0", 8192), HostLines.traced("7:0", 8200, rwbs: "R")]
        w.pump(now: 102)
        let t = render(m)
        #expect(hostErrors(t, "loop0", "block-error") == 5, "\(t)")
        #expect(w.counts == (5, 2))
        #expect(Exposition.value(t, "kvmscope_watch_source_up", [("source", "block-tracepoint")]) == 1)
        w.stop()
        #expect(trace.closed)
    }

    /// A record whose message never came is forgotten after the window: a later message about
    /// the same sector is another failure, not its pair.
    @Test func unpairedReportsExpire() {
        let m = WatchMetrics()
        let log = FakeKernelLog(), trace = FakeBlockTrace()
        let w = HostKernelWatch(kernelLog: log, blockTrace: trace, series: m.host)
        trace.queued = [HostLines.traced("8:16", 2048)]
        w.pump(now: 0)
        log.queued = [HostLines.ioError("sdb", 2048)]
        w.pump(now: RequestMatcher.window + 1)
        #expect(hostErrors(render(m), "sdb", "block-error") == 2)
    }

    @Test func devicesAreCappedAndTheOverflowCounted() throws {
        let m = WatchMetrics()
        let log = FakeKernelLog()
        let w = HostKernelWatch(kernelLog: log, blockTrace: nil, series: m.host)
        let extra = 44
        log.queued = (0..<(HostSeries.maxSeriesPerFamily + extra)).map { HostLines.ioError("sd\($0)", 8) }
        log.queued.append(HostLines.ioError("sd0", 16))      // a device already exported still counts
        w.pump(now: 0)
        let t = render(m)
        #expect(m.host.seriesCount(WatchMetricFamilies.hostBlockErrors) == HostSeries.maxSeriesPerFamily)
        #expect(hostErrors(t, "sd0", "block-error") == 2)
        #expect(Exposition.value(t, "kvmscope_watch_series_overflow_total", [("metric", "kvmscope_host_block_errors_total")]) == Double(extra))
    }

    @Test func labelValuesAreBoundedPrintableASCII() {
        #expect(HostSeries.labelValue("sdb") == "sdb")
        #expect(HostSeries.labelValue("a\"b\\c\nd é") == "a_b_c_d___")
        #expect(HostSeries.labelValue(String(repeating: "x", count: 500)).count == HostSeries.maxLabelLength)
        #expect(HostSeries.labelValue("") == "unknown")
    }

    /// /dev/kmsg is opened at its end: what the ring already holds happened before watch ran.
    /// (A regular file stands in for the device: KernelMessageDevice seeks to its end the same way.)
    @Test func startsAtTheEndOfTheRing() throws {
        let dir = TempDir()
        let path = dir.path + "/kmsg"
        let old = "3,100,5000000,-;I/O error, dev sdb, sector 2048 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2\n"
        FileManager.default.createFile(atPath: path, contents: Data(old.utf8))
        let m = WatchMetrics()
        let w = try HostKernelWatch.open(kmsgPath: path, blockTracepoint: false, series: m.host, warn: { _ in })
        w.pump(now: 0)
        #expect(hostErrors(render(m), "sdb", "block-error") == nil, "a message from before watch started was counted")
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        h.seekToEndOfFile()
        h.write(Data("3,101,6000000,-;I/O error, dev sdc, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2\n".utf8))
        try h.close()
        w.pump(now: 1)
        #expect(hostErrors(render(m), "sdc", "block-error") == 1)
        #expect(hostErrors(render(m), "sdb", "block-error") == nil)
    }

    @Test func anUnreadableKernelLogIsTheReadersOwnError() {
        let m = WatchMetrics()
        #expect {
            _ = try HostKernelWatch.open(kmsgPath: "/nonexistent/kmsg", blockTracepoint: false, series: m.host, warn: { _ in })
        } throws: { error in
            "\(error)".contains("/nonexistent/kmsg")
        }
    }

    @Test func lostRecordsAreCounted() {
        let m = WatchMetrics()
        let log = FakeKernelLog(), trace = FakeBlockTrace()
        let w = HostKernelWatch(kernelLog: log, blockTrace: trace, series: m.host)
        log.lostRecordRuns = 2
        trace.lostRecords = 7
        w.pump(now: 0)
        let t = render(m)
        #expect(Exposition.value(t, "kvmscope_watch_source_lost_total", [("source", "host-kernel-log")]) == 2)
        #expect(Exposition.value(t, "kvmscope_watch_source_lost_total", [("source", "block-tracepoint")]) == 7)
    }

    /// A record user space wrote (facility user: `<11>` = LOG_USER | LOG_ERR) is not a kernel
    /// error, whatever it says; the kernel's own (facility 0) is.
    @Test func onlyTheKernelsOwnRecordsCount() throws {
        let dir = TempDir()
        let path = dir.path + "/kmsg"
        FileManager.default.createFile(atPath: path, contents: nil)
        let m = WatchMetrics()
        let w = try HostKernelWatch.open(kmsgPath: path, blockTracepoint: false, series: m.host, warn: { _ in })
        func append(_ record: String) throws {
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            h.seekToEndOfFile(); h.write(Data(record.utf8)); try h.close()
        }
        try append("11,200,7000000,-;I/O error, dev sdd, sector 8 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 2\n")
        w.pump(now: 0)
        try append("3,201,7000001,-;I/O error, dev sde, sector 8 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 2\n")
        w.pump(now: 0)
        #expect(hostErrors(render(m), "sdd", "block-error") == nil, "a user-space line counted as a kernel error")
        #expect(hostErrors(render(m), "sde", "block-error") == 1)
    }

    /// As root, on the real /dev/kmsg: the line a root shell writes there (`echo '<3>…' >
    /// /dev/kmsg`) is read, and left out as user space's.
    @Test func theRealKernelLogsUserLinesAreLeftOutAsRoot() throws {
        guard geteuid() == 0, access("/dev/kmsg", W_OK) == 0 else { print("NOTE: not root: /dev/kmsg test skipped"); return }
        let kmsg = try KernelMessageDevice(fromNow: true)
        kmsg.kernelOnly = true
        let all = try KernelMessageDevice(fromNow: true)      // every record, as record keeps them
        // A device name no real disk has, so nobody's host-log check mistakes it for theirs.
        let dev = "kvmscope-test\(getpid())"
        let fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC)
        #expect(fd >= 0)
        let line = "<3>I/O error, dev \(dev), sector 2048 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 2\n"
        _ = line.withCString { write(fd, $0, strlen($0)) }
        close(fd)
        // Once the unfiltered reader has it, it is in the ring for the filtered one too.
        #expect(eventually(10) { all.readAvailable().contains { $0.contains(dev) } })
        let read = kmsg.readAvailable()
        #expect(kmsg.userRecordsSkipped >= 1)
        #expect(!read.contains { $0.contains(dev) })
    }
}
