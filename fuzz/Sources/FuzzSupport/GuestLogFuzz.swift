import KVMScope

/// Guest kernel log: reader → GuestDiskAnalysis → report, as `kvmscope guest` does.
public enum GuestLogFuzz {
    static func report(_ bytes: [UInt8]) -> (GuestDiskReport, GuestLogInputStats, events: Int) {
        var reader = GuestLogReader()
        var analysis = GuestDiskAnalysis(detailLimit: 50, rangeLimit: 64)
        var counter = CountingSink(inner: analysis)
        // A memory stream cannot fail; a throw here would be a reader bug.
        do { try reader.read(MemoryByteSource(bytes, name: "fuzz", maxChunk: 4096), into: &counter) } catch {
            FuzzCheck.require(false, "guest log reader threw on a memory stream: \(error)")
        }
        analysis = counter.inner
        return (analysis.report(source: "fuzz", input: reader.stats), reader.stats, counter.count)
    }

    public static func run(_ bytes: [UInt8]) {
        let (report, s, events) = report(bytes)
        // Every line the splitter delivered lands in exactly one bucket (GuestLogReader.consume).
        let styled = s.styles.values.reduce(0, +)
        // A journal record (json-pretty, export) spans lines and is counted once.
        let recordLines = s.journalLines - (s.journalRecords - s.skippedJournalRecords)
        FuzzCheck.require(styled + s.notKernelLines + s.binaryLines + s.overlongLines + recordLines == s.lines,
                          "guest stats: styles \(styled) + notKernel \(s.notKernelLines) + binary \(s.binaryLines) + overlong \(s.overlongLines) + journal record lines \(recordLines) != lines \(s.lines)")
        FuzzCheck.require(s.recognisedKernelLines <= styled, "guest stats: more recognised kernel lines than kernel lines")
        FuzzCheck.require(s.boots.count <= s.bootCount, "guest stats: more boots listed than counted")
        FuzzCheck.require(s.malformedLines <= styled, "guest stats: more malformed lines than kernel lines")
        FuzzCheck.require(events + s.duplicateEvents <= styled, "guest stats: more events than kernel lines")
        FuzzCheck.require(s.bytes == Int64(bytes.count), "guest stats: bytes \(s.bytes) != input \(bytes.count)")
        if let f = s.firstUptimeMicroseconds, let l = s.lastUptimeMicroseconds {
            FuzzCheck.require(f <= l, "guest stats: first uptime after last")
        }
        guard FuzzCheck.thorough(bytes) else { return }
        let json = FuzzCheck.json(report, "guest report")
        _ = GuestReportRenderer.text(report)
        let again = FuzzCheck.json(Self.report(bytes).0, "guest report")
        FuzzCheck.require(json == again, "guest report: same input gave different JSON")
    }
}

/// Counts the events the reader hands on, passing them to the analysis.
struct CountingSink<Inner: GuestLogEventSink>: GuestLogEventSink {
    var inner: Inner
    var count = 0
    mutating func consume(_ event: GuestLogEvent) {
        count += 1
        inner.consume(event)
    }
}
