import Foundation

/// What every domain's errors promise the CLI (as swift-format's `SwiftFormatError` does):
/// `description` is the one line printed after `kvmscope: `, and `isUsageError` says whether the
/// inputs were given the wrong way (exit status 2) rather than being bad or failing (exit 1).
public protocol KVMScopeFailure: Error, CustomStringConvertible {
    var isUsageError: Bool { get }
}

extension KVMScopeFailure {
    public var isUsageError: Bool { false }
}

/// Input errors shared by every reader: opening and reading files, a format nothing reads.
public enum KVMScopeError: KVMScopeFailure, Equatable {
    /// open(2) failed (missing file, no permission): the path and glibc's text.
    case cannotOpen(path: String, reason: String)
    /// A directory where a file was wanted.
    case isDirectory(path: String)
    /// read(2) failed part way through.
    case readFailed(path: String, reason: String)
    /// An output file could not be written.
    case cannotWrite(path: String, reason: String)
    /// Nothing of the expected kind in this input.
    case unsupportedFormat(path: String, detail: String)
    /// The inputs were given the wrong way (exit status 2, like a bad flag).
    case usage(String)
    /// An input with no bytes (or none once decompressed): nothing to report on is a usage
    /// mistake (a wrong path, a command that printed nothing), exit status 2.
    case emptyInput(path: String, compression: String?)
    /// A gzip/xz/zstd input that cannot be decompressed to its end (cut short, corrupt).
    case badCompressedInput(path: String, format: String, detail: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "cannot open '\(path)': \(reason)"
        case let .isDirectory(path): return "'\(path)' is a directory, not a file"
        case let .readFailed(path, reason): return "error reading '\(path)': \(reason)"
        case let .cannotWrite(path, reason): return "cannot write '\(path)': \(reason)"
        case let .unsupportedFormat(path, detail): return "'\(path)': \(detail)"
        case let .usage(message): return message
        case let .emptyInput(path, compression):
            let what = path == "<stdin>" ? "standard input" : "'\(path)'"
            return compression.map { "\(what) is empty (a \($0)-compressed empty file)" } ?? "\(what) is empty"
        case let .badCompressedInput(path, format, detail): return "'\(path)': \(format): \(detail)"
        }
    }

    public var isUsageError: Bool {
        switch self {
        // Input no reader recognises is refused like a bad flag: exit 2, never "no errors".
        case .usage, .emptyInput, .unsupportedFormat: return true
        default: return false
        }
    }

    /// glibc's text for the current errno, e.g. "Permission denied".
    public static func systemMessage(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}
