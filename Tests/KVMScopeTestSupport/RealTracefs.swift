import Foundation
import KVMScopeTracefs

/// The machine's own tracefs, for the tests that create instances on it (serialized suites).
public enum RealTracefs {
    public static let root = Tracefs.defaultRoot

    /// Whether this machine has a tracefs with kvm tracepoints to create an instance on; prints
    /// why not (`what`: the tests that then cannot run).
    public static func usable(for what: String) -> Bool {
        guard geteuid() == 0 else { print("NOTE: not root: \(what) cannot run here"); return false }
        guard (try? Tracefs.locate()) != nil, Tracefs(root: root).hasEvent("kvm", "kvm_exit") else {
            print("NOTE: no tracefs with kvm tracepoints on this machine: \(what) cannot run here")
            return false
        }
        return true
    }

    /// An instance named like nobody kvmscope knows (another tool's), which kvmscope must leave
    /// alone. Checking a decoy is exact, where comparing the whole instances/ directory races
    /// with other tracefs users on the machine (a concurrent `kvmscope drops`, for one).
    public static func makeDecoy(_ fs: Tracefs) throws -> String {
        let path = fs.path("instances/other-tool-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        guard mkdir(path, 0o755) == 0 else { throw TracefsError.io(path: path, reason: "cannot create decoy instance") }
        return path
    }
}
