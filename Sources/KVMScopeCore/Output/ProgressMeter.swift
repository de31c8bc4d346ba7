import Foundation

/// "reading trace.log: 412 MB of 1.0 GB (40%)" on stderr, only when stderr is a terminal,
/// redrawn at most a few times a second so that it costs nothing on the hot path.
public final class ProgressMeter {
    private let label: String
    private let total: Int64?
    private let enabled: Bool
    private var lastDraw = Date.distantPast
    private var drew = false

    public init(label: String, total: Int64?, enabled: Bool = isatty(STDERR_FILENO) == 1) {
        self.label = label
        self.total = total
        self.enabled = enabled
    }

    public func update(_ bytes: Int64) {
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) >= 0.2 else { return }
        lastDraw = now
        var text = "\r\u{1B}[Kreading \(label): \(Self.format(bytes))"
        if let total, total > 0 {
            text += " of \(Self.format(total)) (\(Int(Double(bytes) * 100 / Double(total)))%)"
        }
        FileHandle.standardError.write(Data(text.utf8))
        drew = true
    }

    /// Clears the line so the report starts on a clean terminal.
    public func finish() {
        if drew { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    static func format(_ bytes: Int64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var v = Double(bytes)
        var i = 0
        while v >= 1000 && i < units.count - 1 { v /= 1000; i += 1 }
        return i == 0 ? "\(bytes) B" : String(format: "%.1f %@", v, units[i])
    }
}
