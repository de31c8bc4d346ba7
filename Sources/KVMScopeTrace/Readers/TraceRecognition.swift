/// "Recognise or refuse" for the trace role: an input read as a QEMU trace in which not one
/// line is a trace event is not a trace with nothing wrong in it, and must not be reported as
/// one (`kvmscope trace console.log` printed "no failures" and exited 0).
public enum TraceRecognitionError: KVMScopeFailure, Equatable {
    /// Nothing in the input is a QEMU trace line.
    case noTraceEvents(path: String)
    /// A simpletrace file (its header says so) with no event record.
    case noTraceRecords(path: String)

    public var description: String {
        switch self {
        case let .noTraceEvents(path):
            return "no QEMU trace events found in \(path): not a QEMU trace? (expected the log backend's "
                + "`name args`, `TID@SEC.USEC:name args` or ISO-8601 prefix, a simpletrace binary file, "
                + "or SystemTap log output `PID@NS name args`)"
        case let .noTraceRecords(path):
            return "no QEMU trace events found in \(path): a simpletrace file with no event record (were any events enabled with -trace?)"
        }
    }

    /// The input was given in the wrong role, like a wrong argument (exit status 2).
    public var isUsageError: Bool { true }

    /// Throws when a whole input was read and none of it was a trace event. An input that
    /// ended before any byte arrived (`--follow` stopped early) is not judged.
    public static func check(_ stats: TraceReadStats, name: String) throws {
        guard stats.linesRecognised == 0 else { return }
        if stats.format == SimpleTraceFormat().name {
            throw noTraceRecords(path: name)
        }
        if stats.bytes > 0 { throw noTraceEvents(path: name) }
    }
}
