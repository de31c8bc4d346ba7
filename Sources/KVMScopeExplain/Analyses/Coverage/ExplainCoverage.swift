import Foundation
import KVMScopeQMP
import KVMScopeTrace
import KVMScopeGuestLog

/// For each guest disk with trouble: what the host inputs can say about it. A verdict about a
/// disk needs a trace that holds its bus's events over the time of its errors; without that,
/// the honest answer is "not covered", with what would cover it.
public struct DeviceCoverage: Sendable, Encodable, Equatable {
    /// The guest's whole-disk name (`vda` for errors on `vda1`).
    public var guestDevice: String
    public var bus: GuestDiskBus
    /// Whether the trace holds events of this disk's bus; nil without a trace.
    @NullEncoded public var traceHasBusEvents: Bool? = nil
    /// Whether the trace's time span covers the guest's problems on this disk; nil when there
    /// is no trace or kvmscope cannot place the guest's times on the host's clock.
    @NullEncoded public var traceCoversTime: Bool? = nil
    /// Whether the QMP stream's first and last events enclose the problems; nil likewise.
    @NullEncoded public var qmpCoversTime: Bool? = nil
    /// Guest time of the first and last problem on the disk, on the host clock when known.
    @NullEncoded public var problemsStartTime: Double? = nil
    @NullEncoded public var problemsEndTime: Double? = nil
    /// The trace can speak for this disk: bus events present over the whole time.
    public var covered: Bool
    /// Why not, and what would cover it (QEMU trace patterns, QMP), when not covered.
    public var toCover: [String]
}

enum ExplainCoverage {
    /// Seconds of slack at either end of a span. The offset is known to a few ms (matched
    /// requests: µs; the disk-setup anchor: ms), and a trace that ends before the guest's
    /// error cannot hold the request behind it (the host completes it before the guest logs).
    static let slackSeconds = 0.01

    /// The disks the guest log shows trouble on, in report order, with their problems' times
    /// (guest uptime or guest wall clock read as UTC, the clock `guestErrors` use).
    static func troubledDisks(_ guest: GuestDiskReport?, time: (GuestLogLocation) -> Double?) -> [(disk: String, times: [Double])] {
        var order: [String] = []
        var times: [String: [Double]] = [:]
        for d in guest?.devices ?? [] where d.hasErrors {
            let disk = GuestDiskBus.disk(of: d.name)
            if times[disk] == nil { order.append(disk); times[disk] = [] }
            var locs = d.blockErrors.map(\.location)
            locs += [d.firstError, d.lastError].compactMap { $0 }
            for fs in d.filesystems { locs += [fs.firstProblem, fs.lastProblem].compactMap { $0 } }
            times[disk]! += locs.compactMap(time)
        }
        return order.map { ($0, times[$0]!) }
    }

    /// `matchedDisks`: guest disks with an error paired to a traced failure — the trace sees
    /// them, whatever the clocks say.
    static func coverage(guest: GuestDiskReport?, host: TraceReport?, qmp: QMPTimeline?, offset: Double?,
                         wallClockGap: Double? = nil,
                         matchedDisks: Set<String> = [], time: (GuestLogLocation) -> Double?,
                         hostTime: (GuestLogLocation) -> Double?) -> [DeviceCoverage] {
        let onHost = troubledDisks(guest, time: hostTime)
        return troubledDisks(guest, time: time).enumerated().map { k, entry in
            let (disk, times) = entry
            let bus = GuestDiskBus(guestDevice: disk)
            let first = onHost[k].times.min()
            let last = onHost[k].times.max()
            var c = DeviceCoverage(guestDevice: disk, bus: bus, problemsStartTime: first, problemsEndTime: last,
                                   covered: false, toCover: [])
            if let host {
                c.traceHasBusEvents = TraceBusEvents.present(bus, in: host)
                if let span = host.timeSpan, span.clock == .wall, let first, let last {
                    c.traceCoversTime = first >= span.start - slackSeconds && last <= span.end + slackSeconds
                }
            }
            if let qmp, let a = qmp.firstEventTime, let b = qmp.lastEventTime, let first, let last {
                c.qmpCoversTime = first >= a - slackSeconds && last <= b + slackSeconds
            }
            if matchedDisks.contains(disk), c.traceCoversTime == nil { c.traceCoversTime = true }
            c.covered = TraceBusEvents.supported(bus) && c.traceHasBusEvents == true && c.traceCoversTime == true
            c.toCover = reasons(c, host: host, times: times, offset: offset, wallClockGap: wallClockGap)
            return c
        }
    }

    static func reasons(_ c: DeviceCoverage, host: TraceReport?, times: [Double], offset: Double?,
                        wallClockGap: Double? = nil) -> [String] {
        guard !c.covered else { return [] }
        var r: [String] = []
        let patterns = TraceBusEvents.patterns(c.bus)
        let enable = patterns.isEmpty ? "" : " (" + patterns.map { "-trace '\($0)'" }.joined(separator: " ") + ")"
        switch c.bus {
        case .stacked:
            r.append("\(c.guestDevice) is \(c.bus.words): its errors come from the disks below it, which the guest log names separately")
        case .xen, .unknown:
            r.append("QEMU's trace events do not cover \(c.guestDevice) (\(c.bus.words))")
        default:
            if host == nil {
                r.append("no QEMU trace given: a trace with \(c.bus.words) events\(enable) would show every request to \(c.guestDevice) and how it ended")
            } else if !TraceBusEvents.supported(c.bus) {
                r.append("kvmscope does not yet rebuild \(c.bus.words) requests from QEMU's trace"
                    + (c.traceHasBusEvents == true ? " (the trace holds such events)" : "")
                    + ": the trace cannot speak for \(c.guestDevice); QMP BLOCK_IO_ERROR events still show storage errors on any bus")
            } else if c.traceHasBusEvents == false {
                r.append("the trace holds no \(c.bus.words) events: enable them\(enable)")
            } else if c.traceCoversTime == false, let span = host?.timeSpan {
                r.append("the trace covers \(ExplainStory.span(span.start, span.end)), not the time of \(c.guestDevice)'s errors (\(c.problemsStartTime.flatMap { a in c.problemsEndTime.map { ExplainStory.span(a, $0) } } ?? "?"), host clock)")
            } else if offset == nil, !times.isEmpty, let gap = wallClockGap {
                r.append("the guest log's wall clock reads \(ExplainStory.gap(abs(gap))) from the host's, more than any time zone: \(c.guestDevice)'s errors are from another time than the trace (or a clock is wrong), which cannot speak for them")
            } else if offset == nil && !times.isEmpty {
                r.append("no request matched and the logs share no clock: kvmscope cannot tell whether the trace covers the time of \(c.guestDevice)'s errors (a guest log with the disk's `logical blocks` line and uptime stamps, or wall-clock stamps, would place them)")
            } else if times.isEmpty {
                r.append("the guest log gives no time for \(c.guestDevice)'s errors")
            } else if host?.timeSpan?.clock != .wall {
                r.append("the trace has no wall-clock timestamps (start QEMU with `-msg timestamp=on`)")
            }
        }
        return r
    }
}
