import ArgumentParser
import Foundation
import KVMScope
import KVMScopeLibvirt

/// `record --domain`: the monitor of a libvirt domain, reached through libvirt.
extension RecordCommand {
    /// Connects through libvirt and reads the domain's QEMU process (its pid from libvirt's pid
    /// file or its `-uuid`, its command line from /proc) for the -D file and `-msg timestamp=on`.
    func openDomain(_ name: String) throws -> (QMPMonitor, QEMUProcess) {
        let monitor = try LibvirtMonitor(try LibvirtAddress(domain: name, uri: connect))
        let process = try QEMUProcess.read(pid: monitor.qemuPID)
        Self.sayTaint(monitor)
        return (monitor, process)
    }

    /// libvirt marks the domain tainted at the first passthrough command (qemu_driver.c
    /// qemuDomainQemuMonitorCommandWithFiles: VIR_DOMAIN_TAINT_CUSTOM_MONITOR); admins see it in
    /// the domain's log and `virsh dominfo`. Said once, on stderr, in libvirt's words.
    static func sayTaint(_ monitor: LibvirtMonitor) {
        let said = monitor.taintMessages().filter { $0.contains("monitor") }
        let what = said.isEmpty ? "tainted: custom monitor control commands issued" : said.joined(separator: "; ")
        CLIOutput.warning("libvirt: domain '\(monitor.target.domain)' \(what) (record's QMP passthrough; libvirt keeps the mark until the domain shuts down — record undoes its own changes, not the mark)")
    }

    /// `record --restore` of a capture recorded through libvirt: the domain and URI from the
    /// state file (or --domain/--connect when they changed), the same QEMU process or nothing.
    func restoreDomain(_ state: inout RecordState) throws {
        let saved = LibvirtAddress.isLibvirt(state.qmp) ? try LibvirtAddress(parsing: state.qmp) : nil
        guard let name = domain ?? saved?.domain else {
            throw KVMScopeError.usage("\(output) was recorded over \(state.qmp), not through libvirt: restore it with --qmp")
        }
        let target = try LibvirtAddress(domain: name, uri: connect ?? saved?.uri)
        let monitor: LibvirtMonitor
        do { monitor = try LibvirtMonitor(target) } catch LibvirtError.notRunning {
            throw KVMScopeError.usage("domain '\(name)' is not running: its QEMU is gone, so there is nothing left to restore")
        }
        if let was = state.qemuPid, was != monitor.qemuPID {
            throw KVMScopeError.usage("domain '\(name)' now runs as QEMU pid \(monitor.qemuPID), not pid \(was) that record changed: it was restarted, nothing to restore")
        }
        Self.sayTaint(monitor)
        if let problem = VMRecorder.restore(&state, monitor: monitor, directory: output) {
            CLIOutput.error("restore incomplete: \(problem)")
            throw ExitCode.failure
        }
        CLIOutput.write("restored: \(state.eventsTurnedOn.count) trace events turned off, QEMU's log back to \(state.logFileBefore ?? "its stderr")\n")
    }
}
