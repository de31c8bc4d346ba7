import KVMScope

/// kvm_exit/kvm_entry traces (ftrace, trace-cmd, trace-cmd -R, perf script): the first byte
/// picks detection or one forced format, the rest is the trace; `kvmscope exits` end to end.
public enum ExitsFuzz {
    static func analyse(_ bytes: ArraySlice<UInt8>, format: (any InputFormat)?) -> ExitsReport {
        var options = ExitAnalysisOptions()
        options.reasonHeatmaps = 2
        options.heatmapColumns = 64
        do {
            return try KVMExitTraceReader.analyze(MemoryByteSource(Array(bytes), name: "fuzz", maxChunk: 4096),
                                                  format: format, options: options)
        } catch {
            FuzzCheck.require(false, "exits reader threw on a memory stream: \(error)")
            fatalError()
        }
    }

    public static func run(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        // The text formats: perf.data and trace.dat, forced on text, are refused with an error
        // by design, and have their own targets (perf-data, trace-dat).
        let formats = KVMExitFormats.all.filter { $0.name != "perf-data" && $0.name != "trace-dat" }
        let choice = Int(selector) % (formats.count + 1)
        let format: (any InputFormat)? = choice == formats.count ? nil : formats[choice]
        let body = bytes.dropFirst()
        let report = analyse(body, format: format)
        let l = report.lines
        let buckets = l.kvmExit + l.kvmEntry + l.otherEvents + l.headers + l.unrecognized + l.malformedKVM + l.binary + l.overlong
        FuzzCheck.require(buckets + report.lost.markerLines == l.total,
                          "exits lines: \(buckets) + \(report.lost.markerLines) lost markers != \(l.total) lines")
        FuzzCheck.require(l.bytes == Int64(body.count), "exits lines: bytes != input")
        let p = report.pairing
        FuzzCheck.require(p.pairs <= UInt64(l.kvmExit) && p.pairs <= UInt64(l.kvmEntry),
                          "exits pairing: \(p.pairs) pairs from \(l.kvmExit) exits and \(l.kvmEntry) entries")
        FuzzCheck.require(report.total.count <= p.pairs, "exits: more exits counted than paired")
        if let f = report.firstTimestampNs, let last = report.lastTimestampNs {
            FuzzCheck.require(f <= last, "exits: first timestamp after last")
        }
        guard FuzzCheck.thorough(bytes) else { return }
        FuzzCheck.reencodes(report, "exits report")
        let json = FuzzCheck.json(report, "exits report")
        _ = ExitsTextRenderer.render(report, style: .plain)
        FuzzCheck.require(FuzzCheck.json(analyse(body, format: format), "exits report") == json,
                          "exits report: same input gave different JSON")
    }
}
