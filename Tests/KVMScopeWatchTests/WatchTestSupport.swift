import Foundation
import Testing
@testable import KVMScopeWatch

/// A VM in memory: a `QMPMonitor` that answers from a table and hands out queued events, kept
/// to the protocol's contract (errors as QEMU's, `.closed` once closed).
final class ScriptedMonitor: QMPMonitor, @unchecked Sendable {
    let address: String
    let qemuVersion = "7.2.22"
    var pollDescriptor: Int32 { -1 }
    private let lock = NSLock()
    private var replies: [String: Any]
    private var queued: [QMPMessage] = []
    private var closed = false
    /// Hand out one queued event per takeEvents (events arriving one by one, as a storm does).
    var oneAtATime = false
    private(set) var executed: [String: Int] = [:]

    init(address: String, replies: [String: String]) {
        self.address = address
        self.replies = replies.mapValues { (try? JSONSerialization.jsonObject(with: Data($0.utf8), options: .fragmentsAllowed)) as Any }
    }

    func setReply(_ command: String, _ json: String) {
        lock.withLock { replies[command] = try? JSONSerialization.jsonObject(with: Data(json.utf8), options: .fragmentsAllowed) }
    }

    func push(_ line: String) {
        let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
        lock.withLock { queued.append(QMPMessage(line: Array(line.utf8), object: obj)) }
    }

    func execute(_ command: String, arguments: [String: Any]?, timeout: Double) throws -> Any {
        try lock.withLock {
            if closed { throw QMPError.closed(address: address) }
            executed[command, default: 0] += 1
            guard let r = replies[command] else { throw QMPError.commandNotFound(command: command, qemuVersion: qemuVersion) }
            return r
        }
    }

    func takeEvents(waiting seconds: Double) throws -> [QMPMessage] {
        let now: [QMPMessage] = try lock.withLock {
            if closed { throw QMPError.closed(address: address) }
            if oneAtATime, !queued.isEmpty { return [queued.removeFirst()] }
            defer { queued = [] }
            return queued
        }
        if now.isEmpty { Thread.sleep(forTimeInterval: min(seconds, 0.02)) }
        return now
    }

    func close() { lock.withLock { closed = true } }
    func count(_ command: String) -> Int { lock.withLock { executed[command, default: 0] } }
    var queuedEvents: Int { lock.withLock { queued.count } }
}

/// A `VMSource` handing out one scripted monitor.
struct ScriptedSource: VMSource {
    let key: String
    let fallbackName: String
    let monitor: ScriptedMonitor
    var address: String { key }
    func connect() throws -> any QMPMonitor { monitor }
}

struct FixedDiscovery: VMDiscovery {
    let sources: [any VMSource]
    func scan() -> [any VMSource] { sources }
}

enum Exposition {
    /// The value of the series `name{labels}` (labels in the family's order) in the text format, nil when absent.
    static func value(_ text: String, _ name: String, _ labels: [(String, String)] = []) -> Double? {
        let prefix = name + (labels.isEmpty ? "" : "{" + labels.map { #"\#($0.0)="\#($0.1)""# }.joined(separator: ",") + "}") + " "
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            return Double(line.dropFirst(prefix.count))
        }
        return nil
    }

    /// `promtool check metrics` on the text: its complaints, or nil when it accepts it. A missing
    /// promtool fails the test (CI installs Debian's prometheus package).
    static func promtoolProblems(_ text: String) throws -> String? {
        guard let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first(where: FileManager.default.isExecutableFile) else {
            Issue.record("promtool not found: apt-get install -y prometheus (CI must install it)")
            return nil
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: promtool)
        p.arguments = ["check", "metrics"]
        let input = Pipe(), output = Pipe()
        p.standardInput = input; p.standardOutput = output; p.standardError = output
        try p.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return p.terminationStatus == 0 && said.isEmpty ? nil : "exit \(p.terminationStatus): \(said)"
    }
}

/// Waits (polling, up to `seconds`) until `condition` holds; the test then checks what it needs.
/// A bound on waiting for a state, not an assertion about speed.
func eventually(_ seconds: Double = 30, _ condition: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return condition()
}

extension WatchSettings {
    /// Quick polls and reconnects, so the tests see several cycles.
    static var fast: WatchSettings {
        var s = WatchSettings()
        s.intervalSeconds = 0.2
        s.commandTimeoutSeconds = 1
        s.firstBackoffSeconds = 0.1
        s.maxBackoffSeconds = 0.4
        s.stopCheckSeconds = 0.05
        return s
    }
}
