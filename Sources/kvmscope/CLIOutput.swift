import Foundation
import KVMScope

/// The CLI's only ways of writing: the report to stdout, one-line complaints to stderr.
enum CLIOutput {
    static func error(_ message: String, prefix: Bool = true) {
        writeAll(STDERR_FILENO, (prefix ? "kvmscope: " : "") + message + "\n")
    }

    static func warning(_ message: String) {
        writeAll(STDERR_FILENO, "kvmscope: warning: " + message + "\n")
    }

    static func write(_ text: String) {
        writeAll(STDOUT_FILENO, text)
    }

    /// write(2) until done. A reader that went away (`kvmscope ... | head`) ends the command
    /// quietly, as it does for every Unix filter, instead of a crash or an error message.
    private static func writeAll(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { buf in
            var offset = 0
            while offset < buf.count {
                let n = Glibc.write(fd, buf.baseAddress! + offset, buf.count - offset)
                if n > 0 { offset += n; continue }
                if n < 0 && errno == EINTR { continue }
                if n < 0 && errno == EPIPE { exit(0) }
                return   // any other failure: nothing sensible left to say it on
            }
        }
    }
}
