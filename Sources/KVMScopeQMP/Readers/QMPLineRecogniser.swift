/// Whether one text line is QMP, judged the way QMPEventReader reads it: a raw QMP object
/// (an event, the greeting, a reply or error) or the header of a virsh qemu-monitor-event
/// record. For splitting a stream that mixes QMP with other inputs by content; the lines that
/// continue a `--pretty` record are left to their neighbours.
public enum QMPLineRecogniser {
    public static func isQMPLine(_ line: LineBytes) -> Bool {
        var i = line.skipBlanks(0)
        guard i < line.count else { return false }
        if line[i] == UInt8(ascii: "{") {
            i += 1
            i = line.skipBlanks(i)
            guard i < line.count, line[i] == UInt8(ascii: "\"") else { return false }
            // Cheap filter first: every QMP message has one of these members (qapi/qmp-spec).
            guard line.find("\"event\"") != nil || line.find("\"QMP\"") != nil || line.find("\"return\"") != nil
                    || line.find("\"error\"") != nil else { return false }
            let text = QMPEventReader.trimmed(line)
            switch QMPEventReader.parseRaw(text, line: 0) {
            case .event, .badTimestamp: return true
            case .notEvent: return QMPEventReader.isQMPNonEvent(text)
            }
        }
        return QMPEventReader.startsRecord(line)
    }
}
