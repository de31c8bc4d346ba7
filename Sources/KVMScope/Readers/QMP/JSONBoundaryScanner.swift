/// Where a JSON value that arrives in pieces (a `virsh qemu-monitor-event --pretty` record,
/// one line at a time) ends: brace/bracket depth and string state are carried from one piece to
/// the next, so each byte is looked at once however long the record grows. (Rescanning the
/// whole record for each new line made one unclosed record quadratic.)
struct JSONBoundaryScanner {
    /// Open `{`/`[` minus closing ones outside strings.
    private(set) var depth = 0
    private var inString = false
    private var escaped = false
    /// Bytes seen in all (the record is empty until the first one).
    private(set) var bytesScanned = 0

    mutating func scan(_ bytes: UnsafeBufferPointer<UInt8>) {
        bytesScanned += bytes.count
        for c in bytes {
            if escaped { escaped = false; continue }
            if inString {
                if c == UInt8(ascii: "\\") { escaped = true } else if c == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch c {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
            default: break
            }
        }
    }

    mutating func scan(_ bytes: [UInt8]) { bytes.withUnsafeBufferPointer { scan($0) } }

    /// Every opened brace or bracket is closed (or the text holds none, e.g. `<null>`).
    var isComplete: Bool { depth <= 0 && bytesScanned > 0 }
}
