import Foundation

/// `perf kvm stat report`'s table, byte for byte, from tools/perf/builtin-kvm.c print_result():
/// `"%*s "` name, `"%10llu "` samples, `"%8.2f%% "` samples% and time%, `"%9.2fus "` min and
/// max, `"%9.2fus ( +-%7.2f%% )"` mean and relative standard error; header from
/// print_vcpu_info(); sorted by samples (perf's default `--key sample`), then by name. Times
/// are `(double)ns / NSEC_PER_USEC`, as perf computes them.
///
/// The name column is the one thing that changed: until perf 6.3 it was x86's
/// `decode_str_len = 20` (tools/perf/arch/x86/util/kvm-stat.c; DECODE_STR_LEN 20 in
/// builtin-kvm.c before that), from 6.4 on KVM_EVENT_NAME_LEN = 40 (tools/perf/util/kvm-stat.h,
/// "perf kvm: Use macro to replace variable 'decode_str_len'"). The name is written with
/// `scnprintf(decode, width, "%s", ...)`, so it is cut to width − 1 characters.
public enum PerfKVMStatRenderer {
    /// The name column of perf MAJOR.MINOR.
    public static func nameWidth(perfVersion: (major: Int, minor: Int)) -> Int {
        (perfVersion.major, perfVersion.minor) >= (6, 4) ? 40 : 20
    }

    /// `perf version 6.1.192` → (6, 1); nil when it is not a version line.
    public static func parseVersion(_ text: String) -> (major: Int, minor: Int)? {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard let i = words.firstIndex(of: "version"), i + 1 < words.count else { return parseNumbers(Substring(text)) }
        return parseNumbers(words[i + 1])
    }

    /// `6.1`, `6.1.192`, `6.12.0-rc1` → (major, minor).
    public static func parseNumbers(_ s: Substring) -> (major: Int, minor: Int)? {
        let parts = s.split(separator: ".", maxSplits: 2)
        guard parts.count >= 2, let major = Int(parts[0]),
              let minor = Int(parts[1].prefix { $0.isNumber }), major >= 2, major < 100 else { return nil }
        return (major, minor)
    }

    public static func render(_ r: ExitsReport, pid: String? = nil, nameWidth: Int = 40) -> String {
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
            out += pad(String(row.reason.prefix(nameWidth - 1)), nameWidth) + " "
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
