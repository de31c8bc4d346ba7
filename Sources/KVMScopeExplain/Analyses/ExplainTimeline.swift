import KVMScopeQMP
import KVMScopeTrace
import KVMScopeGuestLog
/// One moment of the combined story, on the host's wall clock.
public struct ExplainTimelineEntry: Sendable, Encodable, Equatable {
    /// Host wall clock (seconds since the epoch); guest times are converted with the clock offset.
    public var time: Double
    public var source: EvidenceSource
    public var what: String
}

/// Merges the three inputs' events, each already in its own time order, into one chronological
/// story with a k-way merge over a leftist heap (`TimeOrderedMerge`): only one pending event
/// per input is held, however long the inputs are.
enum ExplainTimeline {
    static let limit = 200

    static func build(guest: GuestDiskReport?, guestErrors: [GuestHostCorrelator.GuestError],
                      failures: [VirtioBlkFailure], qmp: QMPTimeline?, offset: Double?) -> [ExplainTimelineEntry] {
        var host: [ExplainTimelineEntry] = failures.compactMap { f in
            f.time.map { .init(time: $0, source: .host, what: "\(f.operation.rawValue)" + (f.sector.map { " sector \($0)" } ?? "")
                + " failed" + (f.errnoName.map { " with \($0)" } ?? "") + "; guest told \(f.guestStatus ?? "nothing") [\(f.cause.rawValue)]") }
        }
        var events: [ExplainTimelineEntry] = []
        for e in qmp?.ioErrors ?? [] {
            if let t = e.time { events.append(.init(time: t, source: .qmp, what: "BLOCK_IO_ERROR \(e.operation) \(e.action) \"\(e.reason ?? "")\"")) }
        }
        for p in qmp?.pauses ?? [] {
            if let t = p.start { events.append(.init(time: t, source: .qmp, what: "VM paused (STOP)")) }
            if let t = p.start, let s = p.seconds { events.append(.init(time: t + s, source: .qmp, what: "VM resumed (RESUME)")) }
        }
        var guestSide: [ExplainTimelineEntry] = []
        if let offset {
            for g in guestErrors {
                if let u = g.uptime { guestSide.append(.init(time: u + offset, source: .guest, what: "I/O error, dev \(g.device), sector \(g.sector) (\(g.operation?.rawValue ?? "operation not logged"))")) }
            }
            for d in guest?.devices ?? [] {
                for fs in d.filesystems {
                    if let u = fs.journalAbortedAt?.time.uptimeSeconds { guestSide.append(.init(time: u + offset, source: .guest, what: "\(fs.type) on \(fs.device): journal aborted")) }
                    if let u = fs.readOnlyAt?.time.uptimeSeconds { guestSide.append(.init(time: u + offset, source: .guest, what: "\(fs.type) on \(fs.device): remounted read-only")) }
                    if let u = fs.shutdownAt?.time.uptimeSeconds { guestSide.append(.init(time: u + offset, source: .guest, what: "\(fs.type) on \(fs.device): shut down")) }
                }
            }
        }
        // Each input in its own order (a log's lines can be a few microseconds out of order).
        host.sort { $0.time < $1.time }
        events.sort { $0.time < $1.time }
        guestSide.sort { $0.time < $1.time }
        let merged = TimeOrderedMerge([AnyIterator(host.makeIterator()), AnyIterator(events.makeIterator()),
                                       AnyIterator(guestSide.makeIterator())], key: \.time)
        return Array(merged.prefix(limit))
    }
}
