import Foundation

/// Reads a kvm_exit/kvm_entry trace from any byte stream — a file, stdin, or a live tracefs
/// `trace_pipe` — and feeds the analysis. The analysis never knows where the lines came from.
public enum KVMExitTraceReader {
    /// - Parameters:
    ///   - format: forced format name; nil to detect from the first 64 KiB (`detect: false` skips
    ///     the peek, for live streams that would block until 64 KiB arrived).
    public static func analyze(_ source: ByteStream, format forced: (any InputFormat)? = nil, detect: Bool = true,
                               options: ExitAnalysisOptions = ExitAnalysisOptions(),
                               onProgress: ((Int64) -> Void)? = nil) throws -> ExitsReport {
        let stream = PeekableByteStream(source)
        var formatName = forced?.name ?? "ftrace"
        if forced == nil, detect {
            let sample = try stream.peek()
            if let f = sample.withUnsafeBytes({ KVMExitFormats.list.detect(.kvmExits, sample: $0) }) { formatName = f.name }
        }
        // trace.dat is binary, with its own reader (a forced text format on one is refused there).
        if formatName == TraceDatKVMFormat().name {
            return try TraceDatKVMReader.analyze(stream, source: source, options: options)
        }
        if formatName == PerfDataKVMFormat().name {
            return try PerfDataKVMReader.analyze(stream, options: options)
        }
        let reasons = ExitReasonInterner()
        var parser = KVMTraceLineParser(reasons: reasons)
        let analyzer = ExitLatencyAnalyzer(options: options, reasons: reasons)
        var accounting = LineAccounting()
        var record = KVMTraceRecord()
        var splitter = LineSplitter()
        splitter.onProgress = onProgress
        try splitter.forEachLine(in: stream) { line, _ in
            switch parser.parse(line, into: &record) {
            case .record:
                accounting.count(record.kind)
                analyzer.consume(record, line: line)
            case .header: accounting.headers += 1
            case .malformedKVM: accounting.malformedKVM += 1
            case .unrecognized:
                if line.looksBinary { accounting.binary += 1 } else { accounting.unrecognized += 1 }
            }
        }
        accounting.total = splitter.stats.lines
        accounting.bytes = splitter.stats.bytes
        accounting.overlong = splitter.stats.overlongLines
        return analyzer.report(input: source.name, format: formatName, lines: accounting)
    }
}
