// The umbrella: one import for the CLI and other clients, and the one place that composes the
// domains' format lists. Each domain registers its own formats (GuestLogFormats, TraceFormats,
// …); adding a format means adding a file in its domain and, for a new domain, a line here.
@_exported import KVMScopeCore
@_exported import KVMScopeTracefs
@_exported import KVMScopeGuestLog
@_exported import KVMScopeTrace
@_exported import KVMScopeQMP
@_exported import KVMScopeExits
@_exported import KVMScopeDrops
@_exported import KVMScopeFaults
@_exported import KVMScopeExplain
@_exported import KVMScopeExamples
@_exported import KVMScopeHost
@_exported import KVMScopeLive

/// Every input format kvmscope reads, in detection order.
public enum FormatRegistry {
    public static let list = QMPFormats.list + GuestLogFormats.list + TraceFormats.list
        + KVMExitFormats.list + DropFormats.list
    public static var all: [any InputFormat] { list.all }
    public static func formats(of kind: InputKind) -> [any InputFormat] { list.formats(of: kind) }
    public static func named(_ name: String) -> (any InputFormat)? { list.named(name) }
    public static func detect(_ kind: InputKind, sample: UnsafeRawBufferPointer) -> (any InputFormat)? {
        list.detect(kind, sample: sample)
    }
}
