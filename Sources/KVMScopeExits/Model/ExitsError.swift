/// Why `kvmscope exits` cannot record.
enum ExitsError: KVMScopeFailure, Equatable {
    /// `--pid` names no running process.
    case noSuchProcess(pid: Int32, procDirectory: String)

    public var description: String {
        switch self {
        case let .noSuchProcess(pid, dir): return "no process \(pid) (nothing at \(dir))"
        }
    }
}
