extension InputKind {
    /// The host's own kernel log (dmesg, journalctl -k, kern.log on the hypervisor).
    public static let hostKernelLog = InputKind("host-kernel-log")
}

/// A recording of the `block:block_rq_error` tracepoint and what reading it needs.
public struct BlockTracepointRecording {
    public var stream: ByteStream
    public var context: BlockTracepointContext
    /// Recorded over the whole capture with no record lost: its silence means no host block
    /// request failed (an empty recording is evidence too).
    public var complete: Bool
    public init(stream: ByteStream, context: BlockTracepointContext, complete: Bool) {
        self.stream = stream; self.context = context; self.complete = complete
    }
}

/// Reads a host kernel log into its report: what `kvmscope host` and `explain --host-log` do.
public enum HostKernelSession {
    /// Throws a usage error (exit 2) for an input with no kernel message: a file given as the
    /// host's kernel log that is not one gets no clean report.
    public static func read(_ stream: ByteStream, detailLimit: Int = 10_000,
                            progress: ((Int64) -> Void)? = nil) throws -> HostKernelReport {
        try read(stream, blockTrace: nil, detailLimit: detailLimit, progress: progress)
    }

    /// The kernel log with a block_rq_error tracepoint recording of the same time (`kvmscope
    /// record`'s host-block-errors.log): the recording is read first, so each `I/O error, dev`
    /// message that is one of its records is counted once. Either may be missing, not both.
    public static func read(_ stream: ByteStream?, blockTrace: BlockTracepointRecording?, detailLimit: Int = 10_000,
                            progress: ((Int64) -> Void)? = nil) throws -> HostKernelReport {
        var reader = HostKernelLogReader()
        var analysis = HostKernelAnalysis(detailLimit: detailLimit)
        if let t = blockTrace {
            reader.tracepointContext = t.context
            try reader.read(t.stream, into: &analysis, progress: progress)
        }
        if let stream { try reader.read(stream, into: &analysis, progress: progress) }
        var stats = reader.stats
        stats.blockTracepointComplete = blockTrace?.complete == true
        let name = [stream?.name, blockTrace?.stream.name].compactMap { $0 }.joined(separator: " + ")
        let report = analysis.report(source: name, input: stats)
        if report.isNotAKernelLog, blockTrace?.complete != true {
            throw KVMScopeError.usage("no kernel messages found in \(name): not a host kernel log?")
        }
        return report
    }
}
