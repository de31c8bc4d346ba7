/// Which events of a QMP input are one VM's one run, streamed: a raw stream a client kept
/// appending to across QEMU restarts holds several runs (QMPEventReader.runStartLines), and
/// `virsh qemu-monitor-event` without a domain prints every domain's events. Another run's or
/// another VM's BLOCK_IO_ERRORs, taken for this guest's, would explain its errors falsely.
///
/// Kept: the last run of each domain (as explain reads a libvirt log of several QEMU starts),
/// one timeline per domain, at most `maxDomains` of them; the caller picks the domain.
public struct QMPRunSelection {
    public struct Domain {
        public let name: String?
        public fileprivate(set) var timeline: QMPTimeline
        /// The run the timeline holds, and how many events came before it in the stream's
        /// earlier runs (dropped when that run began).
        public fileprivate(set) var run = 0
        public fileprivate(set) var earlierRunsEvents = 0
    }

    /// More domains than a host runs at once in one log is no VM's own stream: counted, not kept.
    public static let maxDomains = 256
    public private(set) var domains: [Domain] = []
    public private(set) var eventsOfUnkeptDomains = 0
    private var index: [String?: Int] = [:]
    private let detailLimit: Int

    public init(detailLimit: Int) { self.detailLimit = detailLimit }

    public mutating func consume(_ event: QMPEvent) {
        guard let i = slot(for: event.domain) else { eventsOfUnkeptDomains += 1; return }
        if event.run > domains[i].run {
            domains[i].earlierRunsEvents += domains[i].timeline.eventsTotal
            domains[i].timeline = QMPTimeline(detailLimit: detailLimit)
            domains[i].run = event.run
        }
        domains[i].timeline.consume(event)
    }

    public mutating func finish(reader: QMPEventReader) {
        // A stream of no events (a greeting and replies only) is one VM's, with nothing in it.
        if domains.isEmpty { _ = slot(for: nil) }
        for i in domains.indices { domains[i].timeline.finish(reader: reader) }
    }

    private mutating func slot(for domain: String?) -> Int? {
        if let i = index[domain] { return i }
        guard domains.count < Self.maxDomains else { return nil }
        domains.append(Domain(name: domain, timeline: QMPTimeline(detailLimit: detailLimit)))
        index[domain] = domains.count - 1
        return domains.count - 1
    }

    /// The domain `wanted` names, else the only one; nil (with `choices`) when the input holds
    /// several and none was named, or the named one is not there.
    public func select(_ wanted: String?) -> Domain? {
        if let wanted { return domains.first { $0.name == wanted } ?? (domains.count == 1 && domains[0].name == nil ? domains[0] : nil) }
        return domains.count == 1 ? domains[0] : nil
    }

    /// "vm1 (12 events), vm2 (3 events)", busiest first.
    public var choices: String {
        domains.sorted { ($0.timeline.eventsTotal, $1.name ?? "") > ($1.timeline.eventsTotal, $0.name ?? "") }
            .map { "\($0.name ?? "(raw QMP, no domain)") (\($0.timeline.eventsTotal + $0.earlierRunsEvents) events)" }
            .joined(separator: ", ")
    }
}
