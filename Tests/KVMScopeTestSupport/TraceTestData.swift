import Foundation

/// Paths of the lab captures copied into this repository (lab/scenarios/NAME/trace.log).
public enum TraceTestData {
    public static let repoRoot = LabFixtures.repoRoot
    public static let scenarios = ["async-write-esrch", "discard-errors", "enospc-pause", "ext4-readonly",
                            "flush-eio", "read-once", "werror-stop", "write-eio"]

    public static func lab(_ scenario: String) -> URL {
        repoRoot.appendingPathComponent("lab/scenarios/\(scenario)/trace.log")
    }
}
