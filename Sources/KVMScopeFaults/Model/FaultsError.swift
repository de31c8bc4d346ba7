/// Why a fault-injection tool refuses to start: each case one line for the user.
public enum FaultsError: KVMScopeFailure, Equatable {
    /// A rules file over `BlkdebugConfigReader.maxFileBytes`.
    case rulesFileTooLarge(path: String, limitMiB: Int)
    /// `blkdebug check` found errors; the tools do not run with such rules.
    case rulesHaveErrors(path: String, count: Int)
    /// QEMU's image locks say another process uses the image (`hint`: what to do instead).
    case imageLocked(path: String, reason: String, hint: String)
    /// The image probes as a format kvmscope does not write (qcow2, VMDK, …): `advice` says what to use.
    case imageNotRaw(path: String, format: String, evidence: String, tool: String, verb: String, advice: String)

    public var description: String {
        switch self {
        case let .rulesFileTooLarge(path, limit):
            return "'\(path)': larger than \(limit) MiB; not a blkdebug rules file"
        case let .rulesHaveErrors(path, count):
            return "\(path): \(count) error\(count == 1 ? "" : "s") in the rules (kvmscope blkdebug check \(path) explains them)"
        case let .imageLocked(path, reason, hint):
            return "can't open \(path): \(reason)\(hint)"
        case let .imageNotRaw(path, format, evidence, tool, verb, advice):
            return "\(path) is a \(format) image (\(evidence)), and \(tool) \(verb) raw images only: \(advice)"
                + ", or pass -f raw to treat its bytes as a raw disk"
        }
    }
}
