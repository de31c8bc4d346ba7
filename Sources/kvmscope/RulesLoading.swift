import Foundation
import KVMScope

/// Reads a rules file for kvmscope's own use (io, nbd serve): QEMU's errors and events that
/// never fire on a raw image stop the command; warnings are printed and the rules are used.
enum RulesLoading {
    /// `report` gets each warning and error line (default: stderr).
    static func load(_ path: String, imageSize: Int64?,
                     report: (String) -> Void = { FileHandle.standardError.write(Data(("kvmscope: " + $0).utf8)) }) throws -> BlkdebugConfig {
        let parsed = try BlkdebugConfigReader().read(path: path)
        let checked = BlkdebugChecker(target: .kvmscope, imageSize: imageSize).check(parsed.config)
        let all = parsed.diagnostics + checked
        let style = TerminalStyle.detect(fd: STDERR_FILENO)
        let errors = all.filter { $0.severity == .error }
        for d in all where d.severity != .note {
            report(BlkdebugCheckRenderer.line(d, style: style))
        }
        if !errors.isEmpty {
            throw FaultsError.rulesHaveErrors(path: path, count: errors.count)
        }
        return parsed.config
    }
}
