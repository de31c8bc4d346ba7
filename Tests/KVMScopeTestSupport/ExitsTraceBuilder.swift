import Foundation

/// Builds kvm_exit/kvm_entry trace text from the producers' own format strings (quoted below
/// verbatim; Foundation needs `%@` where C has `%s`, that is the only change), so tests check
/// the parser against what the kernel, trace-cmd and perf really print.
public struct ExitsTraceBuilder {
    public enum Form: CaseIterable {
        case ftrace510        // linux 5.10+ (kvm_exit with vcpu, kvm_entry with rip)
        case ftrace618        // linux 6.18: `requests`, kvm_entry intr_info/error_code
        case ftrace59         // linux <=5.9
        case traceCmdPlugin   // trace-cmd report with libtraceevent's kvm plugin
        case traceCmdN        // trace-cmd report -N: the kernel's print fmt (5.10+)
        case traceCmdRaw      // trace-cmd report -R
        case perfScript       // perf script
    }

    // arch/x86/kvm/trace.h TP_printk strings
    public static let exit59 = "reason %@ rip 0x%lx info %llx %llx"
    public static let exit510 = "vcpu %u reason %@%@%@ rip 0x%lx info1 0x%016llx info2 0x%016llx intr_info 0x%08x error_code 0x%08x"
    public static let exit618 = exit510 + " requests 0x%016llx"
    public static let entry59 = "vcpu %u"
    public static let entry510 = "vcpu %u, rip 0x%lx"
    public static let entry618 = "vcpu %u, rip 0x%lx intr_info 0x%08x error_code 0x%08x%@"
    // libtraceevent plugins/plugin_kvm.c
    public static let pluginExit = "reason %@" + " rip 0x%llx" + " info %llx %llx"
    public static let pluginEntry = " vcpu %u" + " rip 0x%llx"

    public struct Exit {
        public var tid: Int32, cpu: Int32, ns: UInt64, vcpu: Int32
        public var isa: Int = 1           // 1 VMX, 2 SVM
        public var code: UInt32           // exit_reason
        public var rip: UInt64 = 0xffff_ffff_8113_b1f9, info1: UInt64 = 0, info2: UInt64 = 0
        public var intrInfo: UInt32 = 0, errorCode: UInt32 = 0

        public init(tid: Int32, cpu: Int32, ns: UInt64, vcpu: Int32, isa: Int = 1, code: UInt32,
                    rip: UInt64 = 0xffff_ffff_8113_b1f9, info1: UInt64 = 0, info2: UInt64 = 0,
                    intrInfo: UInt32 = 0, errorCode: UInt32 = 0) {
            self.tid = tid; self.cpu = cpu; self.ns = ns; self.vcpu = vcpu; self.isa = isa; self.code = code
            self.rip = rip; self.info1 = info1; self.info2 = info2; self.intrInfo = intrInfo; self.errorCode = errorCode
        }
    }

    public let form: Form
    public var comm = "qemu-system-x86"

    public init(form: Form, comm: String = "qemu-system-x86") { self.form = form; self.comm = comm }

    public func kernelName(_ e: Exit) -> String {
        e.isa == 1 ? TestTables.vmxName(e.code) : TestTables.svmName(e.code)
    }

    public func pluginName(_ e: Exit) -> String {
        e.isa == 1 ? TestTables.vmxName(e.code) : TestTables.pluginSVMName(e.code)
    }

    /// kernel/trace/trace_output.c: `%16s-%-7d `, `[%03d] `, the irq-info flags, ` %5lu.%06lu: `.
    public func ftracePrefix(tid: Int32, cpu: Int32, ns: UInt64, event: String) -> String {
        rightAligned(comm, 16) + String(format: "-%-7d [%03d] d.... %5llu.%06llu: %@: ", tid, cpu,
               ns / 1_000_000_000, (ns % 1_000_000_000) / 1000, event)
    }

    /// tracecmd/trace-read.c: `%16s-%-5d [%03d]`, ` %s` latency (or `-0x%x` with -R),
    /// ` %6.1000d:`, then print_event_name(): ` %s: ` padded to 20 columns.
    public func traceCmdPrefix(tid: Int32, cpu: Int32, ns: UInt64, event: String, raw: Bool) -> String {
        var s = rightAligned(comm, 16) + String(format: "-%-5d [%03d]", tid, cpu)
        s += raw ? "-0x1" : " d..1."
        s += String(format: " %llu.%06llu:", ns / 1_000_000_000, (ns % 1_000_000_000) / 1000)
        s += " \(event): " + String(repeating: " ", count: max(0, 20 - event.count))
        return s
    }

    /// tools/perf/builtin-script.c: `%16s `, `%7d ` tid, `[%03d] `, `%5lu.%06lu: `, `%s: `.
    public func perfPrefix(tid: Int32, cpu: Int32, ns: UInt64, event: String) -> String {
        rightAligned(comm, 16) + String(format: " %7d [%03d] %5llu.%06llu: kvm:%@: ", tid, cpu,
               ns / 1_000_000_000, (ns % 1_000_000_000) / 1000, event)
    }

    /// C's `%16s`.
    public func rightAligned(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }

    public func exitLine(_ e: Exit) -> String {
        let name = kernelName(e)
        let flags = (e.isa == 1 && e.code & 0xffff_0000 != 0) ? " " : ""
        switch form {
        case .ftrace510, .traceCmdN, .ftrace618, .perfScript:
            var body = String(format: Self.exit510, e.vcpu, name.replacingOccurrences(of: " FAILED_VMENTRY", with: ""),
                              flags, flags.isEmpty ? "" : "FAILED_VMENTRY", e.rip, e.info1, e.info2, e.intrInfo, e.errorCode)
            if form == .ftrace618 { body += String(format: " requests 0x%016llx", UInt64(0)) }
            switch form {
            case .traceCmdN: return traceCmdPrefix(tid: e.tid, cpu: e.cpu, ns: e.ns, event: "kvm_exit", raw: false) + body
            case .perfScript: return perfPrefix(tid: e.tid, cpu: e.cpu, ns: e.ns, event: "kvm_exit") + body
            default: return ftracePrefix(tid: e.tid, cpu: e.cpu, ns: e.ns, event: "kvm_exit") + body
            }
        case .ftrace59:
            return ftracePrefix(tid: e.tid, cpu: e.cpu, ns: e.ns, event: "kvm_exit")
                + String(format: Self.exit59, name, e.rip, e.info1, e.info2)
        case .traceCmdPlugin:
            return traceCmdPrefix(tid: e.tid, cpu: e.cpu, ns: e.ns, event: "kvm_exit", raw: false)
                + String(format: Self.pluginExit, pluginName(e), e.rip, e.info1, e.info2)
        case .traceCmdRaw:
            // libtraceevent print_selected_fields() in field order, print fmt formats (`0x%016llx`).
            return traceCmdPrefix(tid: e.tid, cpu: e.cpu, ns: e.ns, event: "kvm_exit", raw: true)
                + String(format: " exit_reason=%u guest_rip=0x%lx isa=%u info1=0x%016llx info2=0x%016llx intr_info=0x%08x error_code=0x%08x vcpu_id=%u requests=0x%016llx",
                         e.code, e.rip, e.isa, e.info1, e.info2, e.intrInfo, e.errorCode, e.vcpu, UInt64(0))
        }
    }

    public func entryLine(tid: Int32, cpu: Int32, ns: UInt64, vcpu: Int32, rip: UInt64 = 0xffff_ffff_8113_b1f9, immediate: Bool = false) -> String {
        switch form {
        case .ftrace510: return ftracePrefix(tid: tid, cpu: cpu, ns: ns, event: "kvm_entry") + String(format: Self.entry510, vcpu, rip)
        case .ftrace618:
            return ftracePrefix(tid: tid, cpu: cpu, ns: ns, event: "kvm_entry")
                + String(format: Self.entry618, vcpu, rip, UInt32(0), UInt32(0), immediate ? "[immediate exit]" : "")
        case .ftrace59: return ftracePrefix(tid: tid, cpu: cpu, ns: ns, event: "kvm_entry") + String(format: Self.entry59, vcpu)
        case .traceCmdN: return traceCmdPrefix(tid: tid, cpu: cpu, ns: ns, event: "kvm_entry", raw: false) + String(format: Self.entry510, vcpu, rip)
        case .traceCmdPlugin:
            return traceCmdPrefix(tid: tid, cpu: cpu, ns: ns, event: "kvm_entry", raw: false) + String(format: Self.pluginEntry, vcpu, rip)
        case .traceCmdRaw:
            return traceCmdPrefix(tid: tid, cpu: cpu, ns: ns, event: "kvm_entry", raw: true)
                + String(format: " vcpu_id=%u rip=0x%lx immediate_exit=%u intr_info=0x%08x error_code=0x%08x", vcpu, rip, 0, 0, 0)
        case .perfScript: return perfPrefix(tid: tid, cpu: cpu, ns: ns, event: "kvm_entry") + String(format: Self.entry510, vcpu, rip)
        }
    }

    public func otherLine(tid: Int32, cpu: Int32, ns: UInt64) -> String {
        // arch/x86/kvm/trace.h kvm_pio: "pio_%s at 0x%x size %d count %d val 0x%x %s"
        let body = String(format: "pio_%@ at 0x%x size %d count %d val 0x%x %@", "write", 0x3f8, 1, 1, 0x41, "")
        switch form {
        case .traceCmdPlugin, .traceCmdN, .traceCmdRaw: return traceCmdPrefix(tid: tid, cpu: cpu, ns: ns, event: "kvm_pio", raw: form == .traceCmdRaw) + body
        case .perfScript: return perfPrefix(tid: tid, cpu: cpu, ns: ns, event: "kvm_pio") + body
        default: return ftracePrefix(tid: tid, cpu: cpu, ns: ns, event: "kvm_pio") + body
        }
    }
}

/// Exit-reason names the tests use, written out independently of ExitReasonTable.
public enum TestTables {
    public static let vmx: [UInt32: String] = [1: "EXTERNAL_INTERRUPT", 10: "CPUID", 12: "HLT", 30: "IO_INSTRUCTION",
                                        31: "MSR_READ", 32: "MSR_WRITE", 33: "INVALID_STATE", 48: "EPT_VIOLATION",
                                        49: "EPT_MISCONFIG", 74: "BUS_LOCK"]
    public static let svm: [UInt32: String] = [0x060: "interrupt", 0x078: "hlt", 0x07b: "io", 0x07c: "msr", 0x400: "npf",
                                        0x04e: "PF excp", 0x0a6: "idle-halt"]
    public static let pluginSVM: [UInt32: String] = [0x060: "EXIT_INTR", 0x078: "EXIT_HLT", 0x07b: "EXIT_IOIO",
                                              0x07c: "EXIT_MSR", 0x400: "EXIT_NPF", 0x04e: "EXIT_EXCP_PF"]
    public static func vmxName(_ c: UInt32) -> String {
        let base = vmx[c & 0xffff]!
        return c & 0x8000_0000 != 0 ? base + " FAILED_VMENTRY" : base
    }
    public static func svmName(_ c: UInt32) -> String { svm[c]! }
    public static func pluginSVMName(_ c: UInt32) -> String { pluginSVM[c] ?? "UNKNOWN (\(c))" }
}

