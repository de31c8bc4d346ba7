/// One line of a kvm_exit/kvm_entry trace, decoded in place. A plain value with no Strings:
/// the parser fills it for every line, so it must cost nothing to make.
struct KVMTraceRecord {
    public enum Kind: UInt8, Sendable {
        case exit          // kvm:kvm_exit
        case entry         // kvm:kvm_entry
        case otherEvent    // any other tracepoint line (kept only as context for the slow-exit log)
        case lostEvents    // `CPU:1 [LOST 42 EVENTS]` (ftrace) / `CPU:1 [42 EVENTS DROPPED]` (trace-cmd)
    }

    public var kind: Kind = .otherEvent
    /// Thread id of the task that hit the tracepoint: the vCPU thread.
    public var tid: Int32 = -1
    public var cpu: Int32 = -1
    public var timestampNs: UInt64 = 0
    /// vCPU index; -1 when the line does not say (kvm_exit before linux 5.10, trace-cmd's plugin).
    public var vcpu: Int32 = -1
    /// Interned exit reason (ExitReasonInterner id); -1 for entries.
    public var reason: Int32 = -1
    public var rip: UInt64 = 0
    public var info1: UInt64 = 0
    public var info2: UInt64 = 0
    public var intrInfo: UInt32 = 0
    public var errorCode: UInt32 = 0
    /// Number of lost events for `.lostEvents` (0 when the line does not say how many).
    public var lost: UInt64 = 0
    /// Where the task name and the event name are in the line (for the slow-exit log).
    public var commRange: Range<Int> = 0..<0
    public var eventRange: Range<Int> = 0..<0

    public init() {}
}
