/// Why explain cannot start on its inputs.
enum ExplainError: KVMScopeFailure, Equatable {
    /// A directory (or file) with nothing explain reads in it.
    case noEvidence(path: String)

    public var description: String {
        switch self {
        case let .noEvidence(path): return "'\(path)' holds no guest log, QEMU trace or QMP events"
        }
    }
}
