/// Text and JSON for `kvmscope errno`. The text line has moreutils errno's shape:
/// `NAME NUMBER MESSAGE`.
public enum ErrnoRenderer {
    public static func line(_ e: ErrnoEntry) -> String {
        "\(e.name) \(e.number) \(e.message)" + (e.kernelInternal ? " (\(ErrnoEntry.kernelInternalNote))" : "")
    }

    /// JSON: `{"schemaVersion", "architecture", "errnos": [{name, number, aliases, message, architecture}]}`.
    public struct JSONEntry: Encodable {
        public let name: String
        public let number: Int32
        public let aliases: [String]
        public let message: String
        public let architecture: String
        /// One of the kernel's own numbers (512...531), never returned to user space.
        public let kernelInternal: Bool
    }

    struct JSONDocument: Encodable {
        let architecture: String
        let errnos: [JSONEntry]
    }

    public static func json(_ entries: [ErrnoEntry], architecture: ErrnoArchitecture) throws -> String {
        try JSONReport.encode(JSONDocument(architecture: architecture.rawValue, errnos: entries.map {
            JSONEntry(name: $0.name, number: $0.number, aliases: $0.aliases, message: $0.message,
                      architecture: architecture.rawValue, kernelInternal: $0.kernelInternal)
        }))
    }
}
