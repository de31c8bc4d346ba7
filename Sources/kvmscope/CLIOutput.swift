import Foundation
import KVMScope

/// The CLI's only ways of writing: the report to stdout, one-line complaints to stderr.
enum CLIOutput {
    static func error(_ message: String, prefix: Bool = true) {
        FileHandle.standardError.write(Data(((prefix ? "kvmscope: " : "") + message + "\n").utf8))
    }

    static func warning(_ message: String) {
        FileHandle.standardError.write(Data(("kvmscope: warning: " + message + "\n").utf8))
    }

    static func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
