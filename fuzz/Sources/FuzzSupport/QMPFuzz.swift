import KVMScope

/// QMP events (raw JSON lines and virsh qemu-monitor-event records go through the same
/// reader, which tells them apart per line) → QMPTimeline, as `kvmscope explain` reads them.
public enum QMPFuzz {
    static func read(_ bytes: [UInt8]) -> (events: [QMPEvent], reader: QMPEventReader) {
        var reader = QMPEventReader()
        var events: [QMPEvent] = []
        do { try reader.read(MemoryByteSource(bytes, name: "fuzz", maxChunk: 4096)) { events.append($0) } } catch {
            FuzzCheck.require(false, "QMP reader threw on a memory stream: \(error)")
        }
        return (events, reader)
    }

    public static func run(_ bytes: [UInt8]) {
        let (events, reader) = read(bytes)
        let lines = reader.lineStats.lines
        // An event takes at least one line, a skipped record counts its lines.
        FuzzCheck.require(events.count + reader.skippedLines <= lines,
                          "QMP stats: \(events.count) events + \(reader.skippedLines) skipped > \(lines) lines")
        FuzzCheck.require(reader.lineStats.bytes == Int64(bytes.count), "QMP stats: bytes != input")
        var previous = 0
        for e in events {
            FuzzCheck.require(e.line >= 1 && e.line <= lines, "QMP event line \(e.line) outside 1...\(lines)")
            FuzzCheck.require(e.line >= previous, "QMP events out of line order")
            previous = e.line
        }
        guard FuzzCheck.thorough(bytes) else { return }
        for e in events {
            if let data = e.data { FuzzCheck.roundTrips(data, "QMP event data") }
        }
        let timeline = QMPTimeline(events: events)
        let json = FuzzCheck.json(timeline, "QMP timeline")
        let again = read(bytes)
        FuzzCheck.require(again.events == events && again.reader.skippedLines == reader.skippedLines,
                          "QMP reader: same input gave different events")
        FuzzCheck.require(FuzzCheck.json(QMPTimeline(events: again.events), "QMP timeline") == json,
                          "QMP timeline: same input gave different JSON")
    }
}
