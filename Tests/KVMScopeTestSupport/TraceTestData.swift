import Foundation

/// Paths of the lab captures copied into this repository (lab/scenarios/NAME/trace.log).
public enum TraceTestData {
    public static let repoRoot = LabFixtures.repoRoot
    public static let scenarios = ["async-write-esrch", "discard-errors", "enospc-pause", "ext4-readonly",
                            "flush-eio", "read-once", "werror-stop", "write-eio"]

    public static func lab(_ scenario: String) -> URL {
        repoRoot.appendingPathComponent("lab/scenarios/\(scenario)/trace.log")
    }

    /// A lab capture as if QEMU had been started with only the events whose names start with
    /// one of `prefixes` enabled: QEMU's log backend prints each event's line the same way
    /// whatever else is enabled, so keeping those lines is exactly that trace. Lines that are
    /// not trace lines are kept (QEMU would print them too).
    public static func labTrace(_ scenario: String, keepingEventsWithPrefix prefixes: [String]) throws -> String {
        let text = try String(contentsOf: lab(scenario), encoding: .utf8)
        var out = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            guard let name = eventName(line) else { if !line.isEmpty { out += line + "\n" }; continue }
            if prefixes.contains(where: { name.hasPrefix($0) }) { out += line + "\n" }
        }
        return out
    }

    /// The event name of a log-backend line (`TID@SEC.USEC:name args` or `name args`), or nil.
    static func eventName(_ line: Substring) -> Substring? {
        var rest = line
        if let colon = rest.firstIndex(of: ":"), let at = rest.firstIndex(of: "@"), at < colon,
           rest[..<at].allSatisfy(\.isNumber) {
            rest = rest[rest.index(after: colon)...]
        }
        let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
        return name.contains("_") ? name : nil
    }
}

