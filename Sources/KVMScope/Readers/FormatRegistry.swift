/// What an input is evidence of; each command reads one kind.
public enum InputKind: String, Sendable, Codable, CaseIterable {
    case guestLog = "guest-log"        // guest kernel messages (kvmscope guest)
    case qemuTrace = "qemu-trace"      // QEMU's trace events (kvmscope trace)
    case qmpEvents = "qmp-events"      // QMP event stream (kvmscope explain --qmp)
    case kvmExits = "kvm-exits"        // kvm_exit/kvm_entry tracepoints (kvmscope exits)
    case packetDrops = "packet-drops"  // skb:kfree_skb (kvmscope drops)
}

/// One input format kvmscope reads. Like QEMU's tracetool backends: one small type per
/// format, each able to say "this is mine" from the first bytes, all listed in one registry.
public protocol InputFormat: Sendable {
    /// Stable short name, accepted by `--format` and printed in JSON `format` keys.
    var name: String { get }
    var kind: InputKind { get }
    /// One line for `--help` and the README's format table.
    var summary: String { get }
    /// Whether the first bytes of an input (up to `FormatRegistry.sampleSize`) look like this format.
    func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool
}

/// The single list of every format reader. Detection tries them in order, so more specific
/// formats (binary magic numbers) come before lenient text ones.
public enum FormatRegistry {
    public static let sampleSize = 64 * 1024

    public static var all: [any InputFormat] {
        // Each reader adds its formats here, in detection order.
        let formats: [any InputFormat] = [
            QMPEventFormat(),
            GuestKernelLogFormat(style: .kmsg),
            GuestKernelLogFormat(style: .dmesgISO),
            GuestKernelLogFormat(style: .syslog),
            GuestKernelLogFormat(style: .journal),
            GuestKernelLogFormat(style: .dmesgWallClock),
            GuestKernelLogFormat(style: .printkCaller),
            GuestKernelLogFormat(style: .printk),
            GuestKernelLogFormat(style: .bare),
            SimpleTraceFormat(),
            SystemTapLogTraceFormat(),
            LogBackendTraceFormat(),
            PerfScriptKVMFormat(),
            TraceCmdRawKVMFormat(),
            TraceCmdKVMFormat(),
            FtraceKVMFormat(),
            PerfScriptDropFormat(),
            TraceCmdDropFormat(),
            FtraceDropFormat(),
        ]
        return formats
    }

    public static func formats(of kind: InputKind) -> [any InputFormat] {
        all.filter { $0.kind == kind }
    }

    public static func named(_ name: String) -> (any InputFormat)? {
        all.first { $0.name == name }
    }

    /// The first format of `kind` that recognizes the sample.
    public static func detect(_ kind: InputKind, sample: UnsafeRawBufferPointer) -> (any InputFormat)? {
        formats(of: kind).first { $0.recognizes(sample) }
    }
}
