/// Why a QEMU trace (or its event definitions) cannot be read: one line each.
enum TraceInputError: KVMScopeFailure, Equatable {
    /// `--format NAME` names no trace format.
    case unknownFormat(name: String, known: [String])
    /// An `--events` file with no definition line in it.
    case noEventDefinitions(path: String)
    /// An `--events` file over 64 MiB (QEMU's trace-events-all is about 1 MiB).
    case eventsFileTooLarge(path: String)

    public var description: String {
        switch self {
        case let .unknownFormat(name, known):
            return "unknown trace format '\(name)' (known: \(known.joined(separator: ", ")))"
        case let .noEventDefinitions(path):
            return "'\(path)': no trace event definitions found (expected lines like `name(type arg) \"format\"`)"
        case let .eventsFileTooLarge(path):
            return "'\(path)': larger than 64 MiB, not a trace-events file"
        }
    }

    public var isUsageError: Bool {
        if case .unknownFormat = self { return true }
        return false
    }
}
