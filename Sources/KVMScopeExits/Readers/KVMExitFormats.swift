import Foundation

extension InputKind {
    /// kvm_exit/kvm_entry tracepoints (`kvmscope exits`).
    public static let kvmExits = InputKind("kvm-exits")
}

/// The text forms of kvm_exit/kvm_entry traces kvmscope reads. They share one line parser
/// (KVMTraceLineParser); each type only says "this is mine" from the first 64 KiB, so that
/// reports can name what they read and `--format` can force one.
public enum KVMExitFormats {
    /// The kvm-exit formats in detection order (most distinctive first).
    public static let list = InputFormatList([PerfDataKVMFormat(), TraceDatKVMFormat(), PerfScriptKVMFormat(), TraceCmdRawKVMFormat(), TraceCmdKVMFormat(), FtraceKVMFormat()])
    public static var all: [any InputFormat] { list.all }

    /// Lines of the sample that name a kvm tracepoint, for the recognizers.
    static func kvmLines(_ sample: UnsafeRawBufferPointer, limit: Int = 200) -> [Substring] {
        let text = String(decoding: sample.bindMemory(to: UInt8.self), as: UTF8.self)
        var out: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.contains("kvm_exit:") || line.contains("kvm_entry:") {
                out.append(line)
                if out.count >= limit { break }
            }
        }
        return out
    }

    static func firstLine(_ sample: UnsafeRawBufferPointer) -> Substring {
        let text = String(decoding: sample.prefix(256).bindMemory(to: UInt8.self), as: UTF8.self)
        return text.split(separator: "\n").first ?? ""
    }
}

/// `perf script` of `perf record -e kvm:kvm_exit -e kvm:kvm_entry`: `kvm:kvm_exit:` event names.
struct PerfScriptKVMFormat: InputFormat {
    public let name = "perf-script"
    public let kind = InputKind.kvmExits
    public let summary = "perf script output of perf record -e kvm:kvm_exit -e kvm:kvm_entry"
    public init() {}
    public func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool {
        KVMExitFormats.kvmLines(sample).contains { $0.contains("kvm:kvm_exit:") || $0.contains("kvm:kvm_entry:") }
    }
}

/// `trace-cmd report -R`: raw fields, reasons as numbers (`exit_reason=30 ... isa=1`).
struct TraceCmdRawKVMFormat: InputFormat {
    public let name = "trace-cmd-raw"
    public let kind = InputKind.kvmExits
    public let summary = "trace-cmd report -R (raw fields: exit_reason=30 isa=1 ...)"
    public init() {}
    public func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool {
        KVMExitFormats.kvmLines(sample).contains { $0.contains("exit_reason=") || $0.contains("vcpu_id=") }
    }
}

/// `trace-cmd report` (libtraceevent's kvm plugin: `reason EXIT_NPF rip 0x... info 1 2`,
/// `kvm_entry: vcpu 0 rip 0x...`) and `-N` (no plugins: the kernel's own text).
struct TraceCmdKVMFormat: InputFormat {
    public let name = "trace-cmd"
    public let kind = InputKind.kvmExits
    public let summary = "trace-cmd report, with the kvm plugin (reason EXIT_NPF) or -N"
    public init() {}
    public func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool {
        if KVMExitFormats.firstLine(sample).hasPrefix("cpus=") || KVMExitFormats.firstLine(sample).hasPrefix("version =") {
            return !KVMExitFormats.kvmLines(sample).isEmpty
        }
        // The plugin writes `kvm_entry: vcpu N rip 0x` (no comma, which the kernel ≥5.10 prints)
        // and names AMD reasons EXIT_*; trace-cmd pads event names to 20 columns.
        return KVMExitFormats.kvmLines(sample).contains {
            $0.contains("reason EXIT_") || ($0.contains("kvm_entry:") && $0.contains(" rip 0x") && !$0.contains(", rip"))
                || $0.contains("kvm_exit:             reason") || $0.contains("kvm_entry:            vcpu")
        }
    }
}

/// The kernel's ftrace text (`/sys/kernel/tracing/trace`, `trace_pipe`), linux ≤5.9 and ≥5.10.
struct FtraceKVMFormat: InputFormat {
    public let name = "ftrace"
    public let kind = InputKind.kvmExits
    public let summary = "ftrace text: /sys/kernel/tracing/trace or trace_pipe (linux <=5.9 and 5.10+ kvm_exit formats)"
    public init() {}
    public func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool {
        !KVMExitFormats.kvmLines(sample).isEmpty
    }
}
