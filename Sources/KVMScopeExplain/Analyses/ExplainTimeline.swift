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

/// Merges the inputs' events, each already in its own time order, into one chronological
/// story with a k-way merge over a leftist heap (`TimeOrderedMerge`): only one pending event
/// per input is held, however long the inputs are.
enum ExplainTimeline {
    static let limit = 200

    /// `clocks` place uptimes per boot; `wallClockOffset` is for guest logs stamped with a
    /// wall clock (their times are already seconds since the epoch, off by the zone).
    static func build(guest: GuestDiskReport?, guestErrors: [GuestHostCorrelator.GuestError], guestBoots: [Int?],
                      failures: [VirtioBlkFailure], qmp: QMPTimeline?, clocks: BootClocks,
                      wallClockOffset: Double?, hostKernel: [ExplainTimelineEntry] = []) -> [ExplainTimelineEntry] {
        func onHost(_ t: Double?, _ boot: Int?) -> Double? {
            guard let t else { return nil }
            if let w = wallClockOffset { return t + w }
            return clocks.hostTime(uptime: t, boot: boot)
        }
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
        for (i, g) in guestErrors.enumerated() {
            if let t = onHost(g.uptime, guestBoots[i]) {
                guestSide.append(.init(time: t, source: .guest, what: "I/O error, dev \(g.device), sector \(g.sector) (\(g.operation?.rawValue ?? "operation not logged"))"))
            }
        }
        for d in guest?.devices ?? [] {
            for fs in d.filesystems {
                for (loc, what) in [(fs.journalAbortedAt, "journal aborted"), (fs.readOnlyAt, "remounted read-only"), (fs.shutdownAt, "shut down")] {
                    if let loc, let t = onHost(loc.time.uptimeSeconds, loc.boot) {
                        guestSide.append(.init(time: t, source: .guest, what: "\(fs.type) on \(fs.device): \(what)"))
                    }
                }
            }
        }
        // Each input in its own order (a log's lines can be a few microseconds out of order).
        host.sort { $0.time < $1.time }
        events.sort { $0.time < $1.time }
        guestSide.sort { $0.time < $1.time }
        let kernel = hostKernel.sorted { $0.time < $1.time }
        let merged = TimeOrderedMerge([AnyIterator(kernel.makeIterator()), AnyIterator(host.makeIterator()),
                                       AnyIterator(events.makeIterator()), AnyIterator(guestSide.makeIterator())], key: \.time)
        return Array(merged.prefix(limit))
    }
}
