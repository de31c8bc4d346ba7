import Foundation

public struct ProcessResult: Sendable { public let status: Int32; public let stdout: String; public let stderr: String }

/// Collects a pipe's bytes on another thread (so two full pipes can never dead-lock).
private final class PipeDrain: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)
    init(_ pipe: Pipe) {
        DispatchQueue.global().async {
            // read(2) in a loop rather than FileHandle.readDataToEndOfFile(), which traps on EINTR
            // (a test elsewhere in this process may be delivering signals).
            let fd = pipe.fileHandleForReading.fileDescriptor
            var buffer = [UInt8](repeating: 0, count: 65536)
            var collected = Data()
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n > 0 { collected.append(contentsOf: buffer[0..<n]); continue }
                if n < 0 && errno == EINTR { continue }
                break
            }
            self.data = collected
            self.done.signal()
        }
    }
    func wait() -> String { done.wait(); return String(decoding: data, as: UTF8.self) }
}

/// Runs a program with a time limit (terminated after `timeout` seconds), capturing stdout,
/// stderr and the exit status.
public func runProcess(_ executable: String, _ args: [String], stdin: String? = nil,
                environment: [String: String] = [:], timeout: Double = 60, cwd: String? = nil) throws -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    if !environment.isEmpty {
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
    }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    let input = stdin.map { _ in Pipe() }
    p.standardInput = input ?? FileHandle.nullDevice
    try p.run()
    let killer = DispatchWorkItem { if p.isRunning { p.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
    let stdoutDrain = PipeDrain(out), stderrDrain = PipeDrain(err)
    if let input, let stdin {
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
    }
    let stdoutText = stdoutDrain.wait(), stderrText = stderrDrain.wait()
    p.waitUntilExit()
    killer.cancel()
    return ProcessResult(status: p.terminationStatus, stdout: stdoutText, stderr: stderrText)
}

/// Runs the built `kvmscope` binary as a user would.
public enum CLIRunner {
    public static var binary: URL {
        // Tests run from <build>/debug/<package>PackageTests.xctest; the CLI sits beside it.
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for dir in [here, here.deletingLastPathComponent()] {
            let candidate = dir.appendingPathComponent("kvmscope")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return here.appendingPathComponent("kvmscope")
    }

    public static func run(_ args: [String], stdin: String? = nil, environment: [String: String] = [:],
                    timeout: Double = 120) throws -> ProcessResult {
        try runProcess(binary.path, args, stdin: stdin ?? "", environment: environment, timeout: timeout)
    }
}
