/// "Recognise or refuse" for the QMP role: an input read as QMP events in which no line is a
/// QMP message (`explain --qmp console.log`) is refused, not reported as "no I/O errors".
public enum QMPRecognitionError: KVMScopeFailure, Equatable {
    case noQMPMessages(path: String)

    public var description: String {
        switch self {
        case let .noQMPMessages(path):
            return "no QMP messages found in \(path): not a QMP stream? (expected one JSON object per line as a QMP "
                + "client records them, or virsh qemu-monitor-event output)"
        }
    }

    /// The input was given in the wrong role, like a wrong argument (exit status 2).
    public var isUsageError: Bool { true }

    /// Throws when the reader saw input but not one QMP message in it (an event with an
    /// impossible timestamp still is one: it is counted, not refused).
    public static func check(_ reader: QMPEventReader, name: String) throws {
        guard reader.linesRecognised == 0, reader.badTimestamps == 0, reader.lineStats.bytes > 0 else { return }
        throw noQMPMessages(path: name)
    }
}
