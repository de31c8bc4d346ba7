import Foundation
import KVMScopeLive

/// Finds the QEMU process of a libvirt domain on this host.
///
/// libvirt's API does not give a domain's QEMU pid. Two real sources do:
/// - the pid file libvirt's QEMU driver writes for each running domain, `NAME.pid` in its state
///   directory: /run/libvirt/qemu for qemu:///system (libvirtd and virtqemud alike),
///   $XDG_RUNTIME_DIR/libvirt/qemu/run for qemu:///session (src/qemu/qemu_conf.c stateDir,
///   src/qemu/qemu_process.c qemuProcessLaunch: QEMU's `-pidfile`);
/// - the process's command line: libvirt always passes `-uuid UUID`
///   (src/qemu/qemu_command.c qemuBuildCommandLine), and a domain's UUID is unique.
/// A pid from a file is taken only when that process's command line has `-uuid` with the
/// domain's UUID (a stale file, a reused pid, another libvirt's domain of the same name are not
/// it); without a usable file, /proc is scanned for the QEMU with that UUID.
public enum DomainProcessLookup {
    public static func pidFiles(name: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        var out = ["/run/libvirt/qemu/\(name).pid"]
        if let xdg = environment["XDG_RUNTIME_DIR"], !xdg.isEmpty { out.append("\(xdg)/libvirt/qemu/run/\(name).pid") }
        return out
    }

    /// The pid, or the reason none was found.
    public static func find(uuid: String, pidFiles: [String], procRoot: String = "/proc") -> Result<Int32, LookupFailure> {
        for file in pidFiles {
            guard let data = FileManager.default.contents(atPath: file), data.count < 64,
                  let pid = Int32(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)),
                  pid > 0 else { continue }
            if matches(pid: pid, uuid: uuid, procRoot: procRoot) { return .success(pid) }
        }
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: procRoot) else {
            return .failure(.init(detail: "\(procRoot) is not readable"))
        }
        var found: [Int32] = []
        for e in entries {
            guard let pid = Int32(e), pid > 0 else { continue }
            if matches(pid: pid, uuid: uuid, procRoot: procRoot) { found.append(pid) }
        }
        switch found.count {
        case 1: return .success(found[0])
        case 0: return .failure(.init(detail: "no process here runs QEMU with -uuid \(uuid)"))
        default: return .failure(.init(detail: "several QEMU processes run with -uuid \(uuid): \(found.sorted().map(String.init).joined(separator: ", "))"))
        }
    }

    public struct LookupFailure: Error, Equatable { public let detail: String }

    /// Is process `pid` a QEMU whose command line says `-uuid UUID`?
    static func matches(pid: Int32, uuid: String, procRoot: String) -> Bool {
        guard let p = try? QEMUProcess.read(pid: pid, procRoot: procRoot), p.isQEMU else { return false }
        let args = p.arguments
        var i = 0
        while i + 1 < args.count {
            if args[i] == "-uuid" || args[i] == "--uuid" { return args[i + 1].lowercased() == uuid.lowercased() }
            i += 1
        }
        return false
    }
}
