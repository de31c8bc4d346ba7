import ArgumentParser
import Foundation
import KVMScope
import KVMScopeLibvirt

/// A size argument: `256M`, `1G`, `512K`, `4096` (bytes; powers of 1024).
struct SizeArgument: ExpressibleByArgument {
    let bytes: Int
    init?(argument: String) {
        guard let b = ByteCount.parse(argument) else { return nil }
        bytes = b
    }
}

/// `--rotate SIZE,COUNT`.
struct RotateArgument: ExpressibleByArgument {
    let size: SizeArgument
    let count: Int
    init?(argument: String) {
        let parts = argument.split(separator: ",")
        guard parts.count == 2, let s = SizeArgument(argument: String(parts[0])), let c = Int(parts[1]), c >= 1, c <= 100_000 else { return nil }
        size = s; count = c
    }
}

struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Attach to a running VM, record the evidence explain needs, and leave the VM as it was.",
        discussion: """
        Connects to the VM's QMP monitor, turns on the QEMU trace events kvmscope reads (only \
        those that were off), points QEMU's log at a file kvmscope reads, and records into DIR: the \
        trace, every QMP event, query-block and query-blockstats snapshots, QEMU's command line and \
        the host kernel's messages (/dev/kmsg). On Ctrl-C, SIGTERM, --duration, the VM's shutdown or \
        an error it turns off exactly the events it turned on and points the log back (the -D file, \
        or QEMU's stderr). Killed with SIGKILL, `record --restore -o DIR` undoes it. It never pauses, \
        resumes or changes the VM's disks.

        Examples:
          $ kvmscope record --qmp /run/vm1.qmp -o capture/ --duration 10m
          $ kvmscope record --pid 4242 -o capture/                 # find the QMP socket in its command line
          $ kvmscope record --domain vm1 -o capture/               # a libvirt domain, through libvirt (qemu:///system)
          $ kvmscope record --qmp /run/vm1.qmp -o capture/ --flight-recorder 256M   # until it fails again
          $ kvmscope record --qmp /run/vm1.qmp -o capture/ -- ssh vm1 fio job.fio   # while a command runs
          $ kvmscope explain capture/
          $ kvmscope record --restore -o capture/                  # after a SIGKILL
        Output, as it happens (times UTC, QEMU's clock):
          attached to QEMU 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3) (pid 23089): disks drive0; 25 trace events turned on, 1 already on
          17:09:31.271564  FAILED  write sector 2048+8 on device 0x562c88072000: EIO 5 Input/output error → guest told IOERR [backend-error]
          17:09:31.271589  QMP BLOCK_IO_ERROR drive0 write: EIO 5 Input/output error, action report
          stopped (duration: recorded for 10 s); the VM is as it was (25 events turned off, log file restored)
        Exit status: 0 recorded (and restored), 1 failed or not restored, 2 usage error.
        """
    )

    @Option(name: .long, help: "The VM's QMP monitor: unix:PATH, tcp:HOST:PORT, or a socket path. QEMU serves one client per monitor.")
    var qmp: String?

    @Option(name: .long, help: "The QEMU process: its QMP socket is found in its command line (with --qmp: the process behind a TCP monitor).")
    var pid: Int32?

    @Option(name: .long, help: "A libvirt domain: its monitor is reached through libvirt (QMP passthrough; libvirt marks the domain tainted), never libvirt's socket.")
    var domain: String?

    @Option(name: .long, help: "With --domain: the libvirt connection URI (default qemu:///system); it must be read-write.")
    var connect: String?

    @Option(name: [.customShort("o"), .long], help: "The capture directory (created mode 0700; must be new or empty).")
    var output: String

    @Option(name: .long, help: "Stop after this long (10s, 10m, 1h).")
    var duration: DurationArgument?

    @Option(name: .long, help: "Trace in files of SIZE, keeping the last COUNT (like stap -S): e.g. 100M,5.")
    var rotate: RotateArgument?

    @Option(name: .customLong("flight-recorder"), help: "Keep only the last SIZE of trace until the first failure (BLOCK_IO_ERROR or a failed request), then record --after more and stop.")
    var flightRecorder: SizeArgument?

    @Option(name: .long, help: "With --flight-recorder: how long to record after the failure (default 30s).")
    var after: DurationArgument?

    @Option(name: .long, help: "query-blockstats snapshot interval (default 1s).")
    var interval: DurationArgument?

    @Flag(name: .customLong("no-host-kernel"), help: "Do not record the host kernel's messages (/dev/kmsg) or its block_rq_error tracepoint.")
    var noHostKernel = false

    @Flag(name: .long, help: "Print each failed request as it happens (the default on a terminal).")
    var explain = false

    @Flag(name: .long, help: "Undo what an earlier record left in the VM (after a SIGKILL), from DIR's record-state.json.")
    var restore = false

    @OptionGroup var outputOptions: OutputOptions

    @Argument(parsing: .postTerminator, help: "A command to run while recording (after --); recording stops when it exits.")
    var command: [String] = []

    func validate() throws {
        if domain != nil && (qmp != nil || pid != nil) { throw ValidationError("give --domain, or --qmp/--pid, not both") }
        if connect != nil && domain == nil && !restore { throw ValidationError("--connect is the libvirt URI of --domain: give --domain NAME") }
        if !restore && qmp == nil && pid == nil && domain == nil {
            throw ValidationError("give the VM's monitor: --qmp unix:PATH (or --pid PID, or --domain NAME for a libvirt VM)")
        }
        if rotate != nil && flightRecorder != nil { throw ValidationError("--rotate and --flight-recorder both bound the trace: give one") }
        if after != nil && flightRecorder == nil { throw ValidationError("--after is for --flight-recorder") }
        if restore && (duration != nil || rotate != nil || flightRecorder != nil || !command.isEmpty) {
            throw ValidationError("--restore only undoes an earlier record: give -o DIR (and --qmp if the socket moved)")
        }
    }

    func run() throws {
        if restore { return try runRestore() }
        let monitor: QMPMonitor
        var proc: QEMUProcess
        if let domain {
            (monitor, proc) = try openDomain(domain)
        } else {
            let (address, process) = try locate()
            let socket = try QMPSocketMonitor(address)
            proc = process
            if proc.pid == nil, let peer = socket.peerPID { proc = (try? QEMUProcess.read(pid: peer)) ?? QEMUProcess(pid: peer, arguments: []) }
            if proc.pid == nil {
                throw KVMScopeError.usage("over \(address) the QEMU process cannot be known, and with it where its log goes (-D) to restore it: give --pid PID too")
            }
            monitor = socket
        }
        var options = RecordOptions(outputDirectory: output)
        options.duration = duration?.seconds
        options.rotateBytes = rotate?.size.bytes
        options.rotateKeep = rotate?.count
        options.flightRecorderBytes = flightRecorder?.bytes
        if let after { options.afterSeconds = after.seconds }
        if let interval { options.statsInterval = interval.seconds }
        options.hostKernel = !noHostKernel
        let terminal = isatty(STDOUT_FILENO) == 1
        options.live = explain || terminal || outputOptions.json
        let recorder = VMRecorder(monitor: monitor, process: proc, options: options)
        let style = outputOptions.style
        let json = outputOptions.json
        let statusOnTerminal = isatty(STDERR_FILENO) == 1 && !json
        recorder.onNotice = { notice in
            if json { CLIOutput.write(RecordRenderer.json(notice)); return }
            if case .status = notice {
                if statusOnTerminal, let s = RecordRenderer.text(notice, style: style) { FileHandle.standardError.write(Data(("\r" + s + "\u{1B}[K").utf8)) }
                return
            }
            if statusOnTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            if case .failure = notice, !options.live { return }
            if let s = RecordRenderer.text(notice, style: style) { CLIOutput.write(s) }
        }
        var child: Process?
        if !command.isEmpty {
            recorder.shouldStop = {
                guard let c = child, !c.isRunning else { return nil }
                return ("command-exited", "`\(command.joined(separator: " "))` exited with status \(c.terminationStatus)")
            }
        }
        recorder.onAttached = {
            guard !command.isEmpty else { return }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = command
            do { try p.run(); child = p } catch { CLIOutput.error("cannot run \(command[0]): \(error)") }
        }
        let manifest = try recorder.run()
        if let c = child, c.isRunning { c.terminate() }
        if !manifest.restored || manifest.stopReason == "error" || manifest.stopReason == "output-failed" { throw ExitCode.failure }
    }

    /// The monitor to use: --qmp, or the first QMP monitor in --pid's command line.
    private func locate() throws -> (QMPAddress, QEMUProcess) {
        // --qmp with --pid: that socket, and that process (a TCP monitor has no peer pid).
        if let qmp { return (try QMPAddress(parsing: qmp), try pid.map { try QEMUProcess.read(pid: $0) } ?? QEMUProcess(pid: nil, arguments: [])) }
        let process = try QEMUProcess.read(pid: pid!)
        guard process.isQEMU else {
            throw KVMScopeError.usage("process \(pid!) is not QEMU (\(process.arguments.first ?? "?"))")
        }
        guard let address = process.qmpAddresses.first else {
            throw KVMScopeError.usage("QEMU \(pid!) has no QMP monitor on its command line (-qmp, or -chardev socket + -mon mode=control): add one, or for a libvirt VM record through libvirt")
        }
        return (address, process)
    }

    private func runRestore() throws {
        var state = try RecordState.load(directory: output)
        if state.restored { CLIOutput.write("\(output): the VM was already restored when record stopped; nothing to do\n"); return }
        if domain != nil || LibvirtAddress.isLibvirt(state.qmp) { return try restoreDomain(&state) }
        let address = try QMPAddress(parsing: qmp ?? state.qmp)
        let monitor: QMPSocketMonitor
        do { monitor = try QMPSocketMonitor(address) } catch let QMPError.cannotConnect(_, reason) {
            throw KVMScopeError.usage("cannot reach \(address) (\(reason)): if the VM has exited there is nothing left to restore")
        }
        if let was = state.qemuPid, let now = monitor.peerPID, was != now {
            throw KVMScopeError.usage("\(address) is now QEMU pid \(now), not pid \(was) that record changed: that VM was restarted, nothing to restore")
        }
        if let problem = VMRecorder.restore(&state, monitor: monitor, directory: output) {
            CLIOutput.error("restore incomplete: \(problem)")
            throw ExitCode.failure
        }
        CLIOutput.write("restored: \(state.eventsTurnedOn.count) trace events turned off, QEMU's log back to \(state.logFileBefore ?? "its stderr")\n")
    }
}
