import KVMScopeCore

/// Why the NBD server cannot start.
enum NBDServerError: KVMScopeFailure, Equatable {
    /// bind/listen failed (address in use, no permission, bad socket path).
    case cannotListen(address: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotListen(address, reason): return "cannot listen on \(address): \(reason)"
        }
    }
}
