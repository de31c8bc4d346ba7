import Foundation
import KVMScope

/// `kvmscope-bench trace FILE [--bundled]`: the whole `kvmscope trace` analysis (format
/// detection, log-backend reader, virtio-blk request tracker, report) over FILE, with the
/// installed trace-events-all (or only the bundled definitions).
func benchTrace(_ args: [String]) throws {
    guard let path = args.first(where: { !$0.hasPrefix("--") }) else {
        throw KVMScopeError.usage("trace needs a FILE (make one with bench/make-trace.sh)")
    }
    let catalog = args.contains("--bundled") ? TraceEventCatalog.bundled : try TraceEventCatalog.load()
    var result: TraceReport?
    let m = try measure {
        result = try TraceSession.analyse(FileByteSource(path: path), catalog: catalog)
    }
    guard let r = result else { return }
    let s = r.input.stats
    report("trace", bytes: s.bytes, seconds: m.seconds, peakRSSMiB: m.peakRSSMiB,
           extra: "\(s.lines) lines, \(s.events) events decoded, \(r.requests.completed + r.requests.failed) requests, "
               + "\(r.failuresTotal) failures, \(r.inFlightTotal) in flight, definitions: \(catalog.sources.first ?? "")")
}
