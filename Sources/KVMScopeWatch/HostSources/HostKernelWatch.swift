import Foundation
import KVMScopeCore
import KVMScopeHost
import KVMScopeLive
import KVMScopeTracefs

/// Where HostKernelWatch reads kernel messages: /dev/kmsg (KernelMessageDevice, the reader
/// `kvmscope record` uses), or a fake in the tests. Lines as `dmesg --time-format iso` prints them.
public protocol KernelLogFeed: AnyObject {
    /// A descriptor poll(2) can wait on, or -1 (then the feed is read every `stopCheckSeconds`).
    var pollDescriptor: Int32 { get }
    func readAvailable(limit: Int) -> [String]
    /// Times records were overwritten before they were read (read(2) on /dev/kmsg said EPIPE).
    var lostRecordRuns: Int { get }
}
extension KernelMessageDevice: KernelLogFeed {}

/// Where HostKernelWatch reads `block:block_rq_error` records: HostBlockErrorTrace (a private
/// tracefs instance, as `record` uses), or a fake in the tests.
public protocol BlockErrorTraceFeed: AnyObject {
    var pollDescriptor: Int32 { get }
    func readAvailable() -> [[UInt8]]
    /// `MAJ:MIN` → the kernel's name of the device, for the records read so far.
    var devices: [String: String] { get }
    var lostRecords: UInt64 { get }
    func close()
}
extension HostBlockErrorTrace: BlockErrorTraceFeed {}

/// `watch --host-kernel`: follows the host kernel's log, and its block_rq_error tracepoint where
/// there is one (the log's `I/O error, dev` messages are rate-limited, 10 per 5 s by default:
/// printk_ratelimited in blk_print_req_error; the tracepoint is not), on a thread of its own,
/// counting into `kvmscope_host_block_errors_total`.
///
/// Only the kernel's own records are read (KernelMessageDevice's `kernelOnly`): a line that user
/// space wrote into /dev/kmsg is not a host kernel error, whatever it says.
///
/// Only messages from when it starts are counted: /dev/kmsg is opened at the end of the ring
/// (KernelMessageDevice's `fromNow`), since what is already in the ring happened before watch
/// ran and a restart of watch must not count old errors as new.
public final class HostKernelWatch: @unchecked Sendable {
    public static let logSource = "host-kernel-log"
    public static let traceSource = "block-tracepoint"

    private let kernelLog: any KernelLogFeed
    private let blockTrace: (any BlockErrorTraceFeed)?
    private let series: HostSeries
    private let counter: HostKernelCounter
    private let stopCheckSeconds: Double
    private let lock = NSLock()
    private var stopRequested = false
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)
    private var lostRunsSeen = 0
    private var lostRecordsSeen: UInt64 = 0

    public init(kernelLog: any KernelLogFeed, blockTrace: (any BlockErrorTraceFeed)?, series: HostSeries,
                events: (any WatchEventSink)? = nil, stopCheckSeconds: Double = 1) {
        self.kernelLog = kernelLog
        self.blockTrace = blockTrace
        self.series = series
        self.stopCheckSeconds = stopCheckSeconds
        counter = HostKernelCounter(series: series, events: events)
        series.set(WatchMetricFamilies.watchSourceUp, [Self.logSource], to: 1)
        series.set(WatchMetricFamilies.watchSourceUp, [Self.traceSource], to: blockTrace == nil ? 0 : 1)
        series.add(WatchMetricFamilies.watchSourceLost, [Self.logSource], 0)
        if blockTrace != nil { series.add(WatchMetricFamilies.watchSourceLost, [Self.traceSource], 0) }
    }

    /// Opens /dev/kmsg (at its end) and, unless `blockTracepoint` is false, the tracepoint.
    /// /dev/kmsg that cannot be read throws the reader's own error (`cannot open /dev/kmsg:
    /// Permission denied (needs root or CAP_SYSLOG; kernel.dmesg_restrict)`); a tracepoint that
    /// cannot be had (no root for tracefs, a kernel before 5.18) is said through `warn` and left
    /// out: the log alone still counts every message the rate limiter lets through.
    public static func open(kmsgPath: String = "/dev/kmsg", blockTracepoint: Bool, series: HostSeries,
                            events: (any WatchEventSink)? = nil, warn: (String) -> Void) throws -> HostKernelWatch {
        // The tracepoint first: a failure between the two is then in the trace and (if the
        // limiter lets it through) in the log, paired; never in the log alone unseen by the trace.
        var trace: HostBlockErrorTrace?
        if blockTracepoint {
            do { trace = try HostBlockErrorTrace(tracefs: try Tracefs.locate()) } catch {
                warn("watch --host-kernel: no block:block_rq_error tracepoint (\(error)); counting the kernel log's messages only, which the kernel rate-limits")
            }
        }
        let kmsg: KernelMessageDevice
        do { kmsg = try KernelMessageDevice(path: kmsgPath, fromNow: true) } catch {
            trace?.close()
            throw error
        }
        kmsg.kernelOnly = true
        return HostKernelWatch(kernelLog: kmsg, blockTrace: trace, series: series, events: events)
    }

    /// Reads what both sources hold now: the tracepoint first, so a request's record is
    /// usually there before its message (either order is paired).
    public func pump(now: Double? = nil) {
        let now = now ?? VMWorker.now()
        if let t = blockTrace {
            let lines = t.readAvailable()
            let names = t.devices
            for l in lines { counter.consume(traceLine: l, deviceNames: names, now: now) }
            let lost = t.lostRecords
            if lost > lostRecordsSeen {
                series.add(WatchMetricFamilies.watchSourceLost, [Self.traceSource], Int64(clamping: lost - lostRecordsSeen))
                lostRecordsSeen = lost
            }
        }
        for _ in 0..<4 {
            let lines = kernelLog.readAvailable(limit: 4096)
            for l in lines { counter.consume(logLine: l, now: now) }
            if lines.count < 4096 { break }
        }
        let runs = kernelLog.lostRecordRuns
        if runs > lostRunsSeen {
            series.add(WatchMetricFamilies.watchSourceLost, [Self.logSource], Int64(runs - lostRunsSeen))
            lostRunsSeen = runs
        }
    }

    /// Findings counted and those left out as a request already counted (tests, logs).
    public var counts: (counted: Int, duplicates: Int) { lock.withLock { (counter.counted, counter.duplicates) } }

    public func start() {
        let t = Thread { [self] in
            while !lock.withLock({ stopRequested }) {
                var fds: [pollfd] = []
                if kernelLog.pollDescriptor >= 0 { fds.append(pollfd(fd: kernelLog.pollDescriptor, events: Int16(POLLIN), revents: 0)) }
                if let b = blockTrace, b.pollDescriptor >= 0 { fds.append(pollfd(fd: b.pollDescriptor, events: Int16(POLLIN), revents: 0)) }
                let ms = Int32(stopCheckSeconds * 1000)
                if fds.isEmpty { Thread.sleep(forTimeInterval: stopCheckSeconds) } else { _ = poll(&fds, nfds_t(fds.count), ms) }
                // trace_pipe polls readable only once a page is full or on its own wake-up
                // (kernel/trace/trace.c tracing_poll_pipe): both are read on every wake.
                lock.withLock { pump() }
                // Bounds the wake-ups (a descriptor that stays readable must not spin a core):
                // errors are counted at most 50 reads a second late.
                usleep(20_000)
            }
            done.signal()
        }
        t.name = "kvmscope-watch-host-kernel"
        thread = t
        t.start()
    }

    /// Ends the thread (within `stopCheckSeconds`) and removes the tracefs instance.
    public func stop(waiting seconds: Double = 5) {
        lock.withLock { stopRequested = true }
        if thread != nil { _ = done.wait(timeout: .now() + seconds) }
        blockTrace?.close()
        series.set(WatchMetricFamilies.watchSourceUp, [Self.logSource], to: 0)
        series.set(WatchMetricFamilies.watchSourceUp, [Self.traceSource], to: 0)
    }
}
