/// Why a perf.data input cannot be read: one line naming the input and, where it helps, the
/// byte offset of the damage. Every length and offset read from the file is checked before
/// use; a check that fails ends the read here, never in a trap or an endless loop.
public struct PerfDataError: KVMScopeFailure, Equatable {
    public var path: String
    public var detail: String

    public init(path: String, _ detail: String) {
        self.path = path
        self.detail = detail
    }

    public var description: String { "'\(path)': perf.data: \(detail)" }
}
