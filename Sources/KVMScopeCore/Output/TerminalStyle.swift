import Foundation

/// Whether and how to colour text output. Colour only when writing to a terminal and the
/// user has not set NO_COLOR (https://no-color.org); `--color always|never` overrides.
public struct TerminalStyle: Sendable {
    public let colors: Bool

    public init(colors: Bool) { self.colors = colors }

    public enum Choice: String, CaseIterable, Sendable { case auto, always, never }

    /// The style for a file descriptor under the current environment.
    public static func detect(fd: Int32 = STDOUT_FILENO, choice: Choice = .auto,
                              environment: [String: String] = ProcessInfo.processInfo.environment) -> TerminalStyle {
        switch choice {
        case .always: return TerminalStyle(colors: true)
        case .never: return TerminalStyle(colors: false)
        case .auto:
            if let v = environment["NO_COLOR"], !v.isEmpty { return TerminalStyle(colors: false) }
            if environment["TERM"] == "dumb" { return TerminalStyle(colors: false) }
            return TerminalStyle(colors: isatty(fd) == 1)
        }
    }

    public static let plain = TerminalStyle(colors: false)

    public func bold(_ s: String) -> String { wrap(s, "1") }
    public func red(_ s: String) -> String { wrap(s, "31") }
    public func yellow(_ s: String) -> String { wrap(s, "33") }
    public func green(_ s: String) -> String { wrap(s, "32") }
    public func dim(_ s: String) -> String { wrap(s, "2") }
    /// xterm 256-colour foreground.
    public func color256(_ s: String, _ code: Int) -> String { wrap(s, "38;5;\(code)") }

    private func wrap(_ s: String, _ code: String) -> String {
        colors ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s
    }
}
