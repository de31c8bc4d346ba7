/// Why `kvmscope drops` cannot watch or read: one line each, saying what to do.
public enum DropsError: KVMScopeFailure, Equatable {
    /// `--reason` on a kernel whose kfree_skb has no reason field (before 5.17).
    case reasonsNeedNewerKernel
    /// `--reason NAME` that this kernel's table does not have.
    case unknownReason(name: String, known: Int)
    /// `--location` needs kallsyms addresses, which kptr_restrict hides.
    case locationNeedsAddresses
    /// `--location FUNCTION` that kallsyms does not list.
    case unknownFunction(name: String)
    /// A `--format-file` that is not a tracepoint format file.
    case badFormatFile(path: String, detail: String)
    /// `--netns NAME` that names no network namespace.
    case noNamespace(spec: String, path: String, reason: String)
    /// NET_DM is missing, or lacks what kvmscope needs, or refused us.
    case netDropMonitor(String)
    /// Neither tracefs nor NET_DM can be used.
    case noSource(tracefsProblem: String, netdmProblem: String)

    public var description: String {
        switch self {
        case .reasonsNeedNewerKernel:
            return "--reason needs a kernel whose kfree_skb tracepoint has reasons (5.17+); this one has none"
        case let .unknownReason(name, known):
            return "--reason '\(name)' is not one of this kernel's drop reasons (\(known) known, e.g. NO_SOCKET, NETFILTER_DROP, QDISC_DROP)"
        case .locationNeedsAddresses:
            return "--location needs kernel addresses, but /proc/kallsyms hides them (kernel.kptr_restrict); try: sysctl kernel.kptr_restrict=0"
        case let .unknownFunction(name):
            return "--location: no kernel function '\(name)' in /proc/kallsyms"
        case let .badFormatFile(path, detail):
            return "'\(path)': \(detail)"
        case let .noNamespace(spec, path, reason):
            return "no network namespace '\(spec)' (\(path): \(reason)); list them with: ip netns list"
        case let .netDropMonitor(why):
            return why
        case let .noSource(tracefsProblem, netdmProblem):
            return "cannot watch drops: \(tracefsProblem); and \(netdmProblem)"
        }
    }

    public var isUsageError: Bool {
        switch self {
        case .unknownReason, .unknownFunction, .reasonsNeedNewerKernel: return true
        default: return false
        }
    }
}
