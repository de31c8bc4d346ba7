import ArgumentParser
import Foundation
import KVMScope

/// What `guest` and `host` share: one kernel log, a file or `-`, read with a progress meter;
/// `--top` and `--detail-limit` checked the same way.
enum LogFileInput {
    /// `example`: the pipe shown when no file is given on a terminal (`dmesg | kvmscope guest -`).
    static func validate(file: String?, top: Int, detailLimit: Int, example: String) throws {
        if top < 0 { throw ValidationError("--top must be 0 or more") }
        if detailLimit < 0 { throw ValidationError("--detail-limit must be 0 or more") }
        if file == nil, isatty(STDIN_FILENO) == 1 {
            throw ValidationError("give a log file, or - to read standard input (e.g. \(example))")
        }
    }

    /// The log (standard input when no file was given) and a meter for reading it.
    static func open(_ file: String?) throws -> (source: FileByteSource, meter: ProgressMeter) {
        let source = try FileByteSource(path: file ?? "-")
        return (source, ProgressMeter(label: source.name, total: source.knownSize))
    }
}
