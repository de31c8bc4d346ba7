import Foundation

/// A reply held back by a `[stall]` section: the caller (NBD server, `kvmscope io`) answers the
/// request only once `isReleased` says so. The request itself has already been carried out, like
/// a device whose completion is lost until it is reset; whoever waits must not block a thread
/// other requests need (the NBD server polls on its event loop with a scheduled task).
public struct FaultStall: Sendable, Hashable {
    /// Released when this file no longer exists.
    public var releaseFile: String?
    /// Released at this time (`FaultRuleEngine.monotonicSeconds`).
    public var deadline: Double?
    public var location: RuleLocation

    public init(releaseFile: String?, deadline: Double?, location: RuleLocation) {
        self.releaseFile = releaseFile
        self.deadline = deadline
        self.location = location
    }

    /// How often a waiter looks at the release file.
    public static let pollNanoseconds: UInt64 = 10_000_000

    public func isReleased(now: Double = FaultRuleEngine.monotonicSeconds(),
                           fileExists: (String) -> Bool = FaultStall.fileExists) -> Bool {
        if let deadline, now >= deadline { return true }
        if let releaseFile, !fileExists(releaseFile) { return true }
        return false
    }

    /// Blocks the calling thread until released (`kvmscope io`, which has one request at a time).
    public func wait() {
        while !isReleased() { usleep(UInt32(Self.pollNanoseconds / 1000)) }
    }

    public static func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }
}
