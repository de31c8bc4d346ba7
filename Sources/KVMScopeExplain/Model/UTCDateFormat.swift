import Foundation

/// UTC dates and times as explain prints them, from formatters made once. A DateFormatter is
/// costly to make (ICU loads its locale and time-zone data, which Foundation decodes from
/// JSON): made per call, as explain once did, it was a tenth of explain's time on a large
/// capture, where every line of evidence prints a time. DateFormatter is not safe to share
/// between threads, so each use holds the lock.
enum UTCDateFormat {
    /// "HH:mm:ss", "yyyy-MM-dd" or "yyyy-MM-dd HH:mm:ss.SSS" of `date`, in UTC.
    static func string(_ pattern: Pattern, _ date: Date) -> String {
        formatters.withLock { $0[pattern.rawValue].string(from: date) }
    }

    enum Pattern: Int { case time, day, wallClock }

    private static let formatters = LockedFormatters(["HH:mm:ss", "yyyy-MM-dd", "yyyy-MM-dd HH:mm:ss.SSS"].map { pattern in
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = pattern
        return f
    })

    private final class LockedFormatters: @unchecked Sendable {
        private let lock = NSLock()
        private let formatters: [DateFormatter]
        init(_ formatters: [DateFormatter]) { self.formatters = formatters }
        func withLock<T>(_ body: ([DateFormatter]) -> T) -> T {
            lock.lock(); defer { lock.unlock() }
            return body(formatters)
        }
    }
}
