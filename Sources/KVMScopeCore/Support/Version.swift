public enum KVMScopeVersion {
    /// The release version: the one place it is written (capture manifests record it too).
    public static let string = "0.1.0"

    /// The git commit the binary was built from (12 hex digits, "-dirty" when tracked files
    /// differed from it), nil when built outside a git checkout. `gitCommit` is generated at
    /// build time by Plugins/GitCommit.
    public static let commit: String? = gitCommit

    /// What `kvmscope --version` prints: "0.1.0 (commit 0123456789ab)" or "0.1.0 (commit unknown)".
    public static let withCommit = "\(string) (commit \(commit ?? "unknown"))"
}
