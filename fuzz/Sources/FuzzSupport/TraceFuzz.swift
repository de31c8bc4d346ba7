import KVMScope

/// QEMU trace, one format at a time: TraceSession.analyse (reader → virtio-blk request
/// tracker → report), as `kvmscope trace` does.
public enum TraceFuzz {
    /// The report, or the one clear message a file that is not this format gets.
    static func analyse(_ bytes: [UInt8], format: String) -> Result<TraceReport, KVMScopeError> {
        do {
            return .success(try TraceSession.analyse(MemoryByteSource(bytes, name: "fuzz", maxChunk: 4096),
                                                     catalog: .bundled, format: format))
        } catch let error as KVMScopeError {
            return .failure(error)
        } catch let error as TraceRecognitionError {
            // "no QEMU trace events found": a refusal, as clear as KVMScopeError's.
            return .failure(.usage(error.description))
        } catch {
            FuzzCheck.require(false, "trace reader (\(format)) threw something else than KVMScopeError: \(error)")
            fatalError()
        }
    }

    public static func run(_ bytes: [UInt8], format: String) {
        let report: TraceReport
        switch analyse(bytes, format: format) {
        case .success(let r): report = r
        case .failure(let error):
            guard case .failure(let again) = analyse(bytes, format: format), "\(again)" == "\(error)" else {
                FuzzCheck.require(false, "trace reader: same input rejected once, not twice")
                return
            }
            return
        }
        let s = report.input.stats
        FuzzCheck.require(s.format == format, "trace stats: format \(s.format) != \(format)")
        // Every known event seen is either decoded, not asked for, or malformed; the
        // "dropped events" records of simpletrace are decoded but belong to no definition.
        let seen = s.eventCounts.values.reduce(0, +)
        FuzzCheck.require(seen == s.events - s.droppedEventRecords + s.skippedEvents + s.malformedEvents,
                          "trace stats: eventCounts \(seen) != events \(s.events) - dropped records \(s.droppedEventRecords) + skipped \(s.skippedEvents) + malformed \(s.malformedEvents)")
        FuzzCheck.require(s.malformedEventNames.values.reduce(0, +) == s.malformedEvents, "trace stats: malformed names do not add up")
        FuzzCheck.require(s.unknownEventNames.values.reduce(0, +) <= s.unknownEvents
                          && s.unknownEventNames.count <= TraceReadStats.maxUnknownNames, "trace stats: unknown names exceed the count or the limit")
        if format == "qemu-simpletrace" {
            FuzzCheck.require(s.lines == 0, "simpletrace counted lines")
            FuzzCheck.require(s.bytes <= Int64(bytes.count), "simpletrace read more bytes than given")
        } else {
            // Blank lines land in no bucket, so the buckets add up to at most the lines read.
            let buckets = s.events + s.skippedEvents + s.malformedEvents + s.unknownEvents + s.otherLines + s.binaryLines + s.overlongLines
            FuzzCheck.require(buckets <= s.lines, "trace stats: \(buckets) lines accounted of \(s.lines)")
            FuzzCheck.require(s.bytes == Int64(bytes.count), "trace stats: bytes \(s.bytes) != input \(bytes.count)")
        }
        let r = report.requests
        FuzzCheck.require(r.completed >= 0 && r.failed >= 0 && r.inFlightAtEnd >= 0, "trace report: negative request counts")
        guard FuzzCheck.thorough(bytes) else { return }
        FuzzCheck.roundTrips(report, "trace report")
        let json = FuzzCheck.json(report, "trace report")
        _ = TraceReportRenderer.text(report)
        let second = try? analyse(bytes, format: format).get()
        FuzzCheck.require(second == report, "trace report: same input gave a different report: \(json) then \(second.map { FuzzCheck.json($0, "trace report") } ?? "an error")")
    }
}
