import KVMScopeCore

/// Why the NBD server cannot start.
public enum NBDServerError: KVMScopeFailure, Equatable {
    /// bind/listen failed (address in use, no permission, bad socket path).
    case cannotListen(address: String, reason: String)
    /// Limits that contradict each other (`NBDServerLimits.problem`).
    case invalidLimits(String)
    /// TLS credentials that cannot be read or used.
    case tls(String)
    /// The control socket (`nbd serve --control`, `nbd control`) cannot be used.
    case control(String)

    public var description: String {
        switch self {
        case let .cannotListen(address, reason): return "cannot listen on \(address): \(reason)"
        case let .invalidLimits(problem): return problem
        case let .tls(problem): return problem
        case let .control(problem): return problem
        }
    }
}
