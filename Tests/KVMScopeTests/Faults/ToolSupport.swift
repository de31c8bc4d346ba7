import Foundation
import Testing

/// Real QEMU tools (Debian's qemu-utils) for side-by-side and client tests. Missing tools fail
/// the test with a clear message: CI installs them (lab/setup), so skipping would hide a gap.
enum QemuTools {
    static func path(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// The tool's path, or a recorded failure saying how to get it.
    static func require(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        if let p = path(name) { return p }
        Issue.record("\(name) not found in PATH: install Debian's qemu-utils (apt-get install -y qemu-utils; CI does it via lab/setup)",
                     sourceLocation: sourceLocation)
        return nil
    }
}

struct ProcessResult { let status: Int32; let stdout: String; let stderr: String }

/// Runs a program with a time limit (killed after `timeout` seconds).
func runProcess(_ executable: String, _ args: [String], timeout: Double = 60, cwd: String? = nil) throws -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let killer = DispatchWorkItem { if p.isRunning { p.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
    var outData = Data(), errData = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    errData = err.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    killer.cancel()
    return ProcessResult(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

/// A temporary directory removed when the value goes away.
final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "kvmscope-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String, _ text: String) -> String {
        let p = path + "/" + name
        FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
        return p
    }

    /// A raw image of `size` bytes; `fill` gives each 4 KiB block a distinct byte pattern.
    func image(_ name: String, size: Int, fill: Bool = false) -> String {
        let p = path + "/" + name
        var bytes = [UInt8](repeating: 0, count: size)
        if fill { for i in 0..<size { bytes[i] = UInt8(truncatingIfNeeded: (i / 4096) &* 31 &+ i % 7) } }
        FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }
}
