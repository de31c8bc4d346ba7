import Foundation

/// `perf kvm stat report`'s table, byte for byte, from tools/perf/builtin-kvm.c print_result():
/// `"%*s "` (KVM_EVENT_NAME_LEN = 40) name, `"%10llu "` samples, `"%8.2f%% "` samples% and
/// time%, `"%9.2fus "` min and max, `"%9.2fus ( +-%7.2f%% )"` mean and relative standard
/// error; header from print_vcpu_info(); sorted by samples (perf's default `--key sample`),
/// then by name. Times are `(double)ns / NSEC_PER_USEC`, as perf computes them.
public enum PerfKVMStatRenderer {
    static let nameWidth = 40   // tools/perf/util/kvm-stat.h KVM_EVENT_NAME_LEN (20 before linux 6.4)

    public static func render(_ r: ExitsReport, pid: String? = nil) -> String {
        var out = "\n\n"
        out += "Analyze events for "
        out += pid.map { "pid(s) \($0), " } ?? "all VMs, "
        out += r.vcpuFilter.map { "VCPU \($0):\n\n" } ?? "all VCPUs:\n\n"
        out += pad("VM-EXIT", nameWidth) + " "
        out += pad("Samples", 10) + " "
        out += pad("Samples%", 9) + " "
        out += pad("Time%", 9) + " "
        out += pad("Min Time", 11) + " "
        out += pad("Max Time", 11) + " "
        out += pad("Avg time", 16) + " "
        out += "\n\n"
        let rows = r.byReason.sorted { $0.stats.count != $1.stats.count ? $0.stats.count > $1.stats.count : $0.reason < $1.reason }
        for row in rows {
            let s = row.stats
            out += pad(row.reason, nameWidth) + " "
            out += String(format: "%10llu ", s.count)
            out += String(format: "%8.2f%% ", s.samplesPercent)
            out += String(format: "%8.2f%% ", s.timePercent)
            out += String(format: "%9.2fus ", Double(s.minNs) / 1000)
            out += String(format: "%9.2fus ", Double(s.maxNs) / 1000)
            out += String(format: "%9.2fus ( +-%7.2f%% )", Double(s.totalNs) / Double(s.count) / 1000,
                          s.relativeStandardErrorPercent)
            out += "\n"
        }
        out += String(format: "\nTotal Samples:%llu, Total events handled time:%.2fus.\n\n",
                      r.total.count, Double(r.total.totalNs) / 1000)
        if r.lost.any { out += "\nLost events: \(r.lost.events + (r.lost.ringBufferOverruns ?? 0))\n\n" }
        return out
    }

    /// printf's `%*s`: right-aligned, never truncated.
    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }
}
