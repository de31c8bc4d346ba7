import Foundation
import KVMScope

/// `kvmscope-bench host FILE`: what `kvmscope host FILE` does (read, recognise, analyse, text
/// report) on a file made by bench/make-host-log.sh; the --json encoding is timed after it.
func benchHost(_ args: [String]) throws {
    guard let path = args.first else { throw KVMScopeError.usage("host needs a FILE (see bench/make-host-log.sh)") }
    var reader = HostKernelLogReader()
    var analysis = HostKernelAnalysis()
    var result: HostKernelReport?
    let cpuBefore = cpuSeconds()
    let m = try measure {
        let source = try FileByteSource(path: path)
        try reader.read(source, into: &analysis)
        result = analysis.report(source: source.name, input: reader.stats)
        _ = HostReportRenderer.text(result!)
    }
    let cpu = cpuSeconds() - cpuBefore
    let r = result!
    let jsonStart = DispatchTime.now().uptimeNanoseconds
    let json = try HostReportRenderer.json(r)
    let jsonSeconds = Double(DispatchTime.now().uptimeNanoseconds - jsonStart) / 1e9
    let noise = r.noise.values.reduce(0, +)
    report("host", bytes: r.input.bytes, seconds: m.seconds, peakRSSMiB: m.peakRSSMiB,
           extra: String(format: "%.2f s CPU = %.0f MB/s per CPU second, %.1f M lines/s, %d lines, %d kernel messages, %d findings on %d devices, %d noise lines; --json report %.0f KB in %.2f s",
                         cpu, Double(r.input.bytes) / 1e6 / cpu, Double(r.input.lines) / 1e6 / m.seconds, r.input.lines,
                         r.input.kernelMessages, r.findingsTotal, r.devices.count, noise,
                         Double(json.utf8.count) / 1000, jsonSeconds))
}
