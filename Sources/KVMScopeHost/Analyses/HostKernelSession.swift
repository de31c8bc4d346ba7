extension InputKind {
    /// The host's own kernel log (dmesg, journalctl -k, kern.log on the hypervisor).
    public static let hostKernelLog = InputKind("host-kernel-log")
}

/// Reads a host kernel log into its report: what `kvmscope host` and `explain --host-log` do.
public enum HostKernelSession {
    /// Throws a usage error (exit 2) for an input with no kernel message: a file given as the
    /// host's kernel log that is not one gets no clean report.
    public static func read(_ stream: ByteStream, detailLimit: Int = 10_000,
                            progress: ((Int64) -> Void)? = nil) throws -> HostKernelReport {
        var reader = HostKernelLogReader()
        var analysis = HostKernelAnalysis(detailLimit: detailLimit)
        try reader.read(stream, into: &analysis, progress: progress)
        let report = analysis.report(source: stream.name, input: reader.stats)
        if report.isNotAKernelLog {
            throw KVMScopeError.usage("no kernel messages found in \(stream.name): not a host kernel log?")
        }
        return report
    }
}
