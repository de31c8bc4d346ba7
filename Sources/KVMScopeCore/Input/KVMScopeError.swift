import Foundation

/// Errors a user can act on. `description` is the one line the CLI prints after `kvmscope: `.
public enum KVMScopeError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case isDirectory(path: String)
    case readFailed(path: String, reason: String)
    case unsupportedFormat(path: String, detail: String)
    case invalidInput(String)
    /// The inputs were given the wrong way (exit status 2, like a bad flag).
    case usage(String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "cannot open '\(path)': \(reason)"
        case let .isDirectory(path): return "'\(path)' is a directory, not a file"
        case let .readFailed(path, reason): return "error reading '\(path)': \(reason)"
        case let .unsupportedFormat(path, detail): return "'\(path)': \(detail)"
        case let .invalidInput(message): return message
        case let .usage(message): return message
        }
    }

    /// glibc's text for the current errno, e.g. "Permission denied".
    public static func systemMessage(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}
