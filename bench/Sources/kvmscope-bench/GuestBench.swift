import Foundation
import KVMScope

/// `kvmscope-bench guest FILE`: what `kvmscope guest FILE` does (read, recognise, analyse,
/// text report) on a file made by bench/make-guest-log.sh; builds no input itself. Encoding
/// the --json report (up to 10 000 listed errors) is timed separately after it.
func benchGuest(_ args: [String]) throws {
    guard let path = args.first else { throw KVMScopeError.usage("guest needs a FILE (see bench/make-guest-log.sh)") }
    var reader = GuestLogReader()
    var analysis = GuestDiskAnalysis()
    var result: GuestDiskReport?
    let cpuBefore = cpuSeconds()
    let m = try measure {
        let source = try FileByteSource(path: path)
        try reader.read(source, into: &analysis)
        result = analysis.report(source: source.name, input: reader.stats)
        _ = GuestReportRenderer.text(result!)
    }
    let cpu = cpuSeconds() - cpuBefore
    let r = result!
    let jsonStart = DispatchTime.now().uptimeNanoseconds
    let json = try GuestReportRenderer.json(r)
    let jsonSeconds = Double(DispatchTime.now().uptimeNanoseconds - jsonStart) / 1e9
    let blocks = r.devices.reduce(0) { $0 + $1.totalBlockErrors }
    let buffers = r.devices.reduce(0) { $0 + $1.totalBufferErrors }
    let fs = r.devices.reduce(0) { $0 + $1.filesystems.count }
    let mlines = Double(r.input.lines) / 1e6 / m.seconds
    report("guest", bytes: r.input.bytes, seconds: m.seconds, peakRSSMiB: m.peakRSSMiB,
           extra: String(format: "%.2f s CPU = %.0f MB/s per CPU second, %.1f M lines/s, %d lines, %d devices, %d block errors, %d buffer errors, %d filesystems, %d repeats; --json report %.0f KB in %.2f s",
                         cpu, Double(r.input.bytes) / 1e6 / cpu, mlines, r.input.lines, r.devices.count, blocks, buffers, fs, r.input.duplicateEvents,
                         Double(json.utf8.count) / 1000, jsonSeconds))
}

/// User + system CPU seconds of this process so far: unlike wall time, not inflated when other
/// processes share the machine.
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}
