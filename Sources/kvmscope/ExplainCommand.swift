import ArgumentParser
import Foundation
import KVMScope

struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Say why a guest saw I/O errors: join its kernel log with QEMU's trace and QMP events.",
        discussion: """
        Give any of: the guest's kernel log (dmesg, journalctl -k, kern.log, serial console), QEMU's
        trace (log backend, simpletrace, SystemTap log), QMP events (raw, or virsh
        qemu-monitor-event), and the host's own kernel log (--host-log: what failed below QEMU).
        Files are recognised by their content, or name them with --guest, --trace, --qmp,
        --host-log; a directory stands for the files in it. With fewer inputs, the report says
        what the missing ones would have told.

        Examples:
          $ kvmscope explain --example write-eio
          VERDICT: the host's storage failed
            The host's storage under QEMU failed 1 write request with EIO (Input/output error); QEMU passed
            it to the guest (werror=report or werror=enospc (the default)). The guest logged it as "I/O error"
            on vda at sector 2048.
          $ kvmscope explain --example ext4-corrupt
          VERDICT: the error arose inside the guest (the host saw its requests succeed)
            The guest logged 3 ext4 corruption reports (block-bitmap of group 0 (checksum), inode 17
            (checksum)) on vda, but QEMU's trace holds virtio-blk events from 2026-12-01
            11:17:05.966249 to 11:17:23.220578 and shows all 41 requests to the disk completing
            successfully; ...
          $ kvmscope explain --example list
          $ kvmscope explain console.log qemu-trace.log qmp-events.log
          $ kvmscope explain --guest dmesg.txt --qmp events.log --json
          $ kvmscope explain console.log trace.log --qemu-cmdline /proc/$(pidof qemu-system-x86_64)/cmdline
          $ kvmscope explain console.log trace.log qmp.log --host-log host-dmesg.log
          $ kvmscope explain lab/scenarios/ext4-readonly
        Exit status: 0 no errors found, 1 errors explained (or unreadable input), 2 usage error.
        """
    )

    @Argument(help: "Input files (kinds detected), or a directory of them.")
    var files: [String] = []

    @Option(name: .long, help: "The guest's kernel log ('-' for stdin).")
    var guest: String?

    @Option(name: .long, help: "QEMU's trace ('-' for stdin).")
    var trace: String?

    @Option(name: .long, help: "QMP events ('-' for stdin).")
    var qmp: String?

    @Option(name: .long, help: "The libvirt domain whose QMP events to use, when the QMP input holds several (virsh qemu-monitor-event with no domain).")
    var domain: String?

    @Option(name: .customLong("host-log"), help: "The host's own kernel log: dmesg (any time format), journalctl -k, kern.log ('-' for stdin). Files named host-dmesg*, host-kern*, host-journal* are taken as it.")
    var hostLog: String?

    @Option(name: .customLong("host-mounts"), help: "Saved `findmnt --json` or `lsblk --json` of the VM's host (repeatable): which host device holds each image, when explain runs elsewhere.")
    var hostMounts: [String] = []

    @Option(name: .customLong("qemu-cmdline"), help: "QEMU's command line: a copy of /proc/PID/cmdline, `ps -o args` output, or a libvirt VM log (drives, backends, werror/rerror).")
    var qemuCmdline: String?

    @Option(name: .long, help: "Run on a lab capture built into kvmscope; 'list' lists them.")
    var example: String?

    @Option(name: .long, help: "QEMU trace-events definitions to read the trace with (default: installed, then bundled).")
    var events: String?

    @Option(name: .long, help: "Errors kept in detail per input (counts stay exact).")
    var detailLimit: Int = 10_000

    @OptionGroup var output: OutputOptions

    func validate() throws {
        let stdinUses = ([guest, trace, qmp, hostLog, qemuCmdline, events].compactMap { $0 } + files + hostMounts).filter { $0 == "-" }.count
        if stdinUses > 1 { throw ValidationError("only one input can be standard input ('-')") }
        if example != nil && (!files.isEmpty || guest != nil || trace != nil || qmp != nil || hostLog != nil) {
            throw ValidationError("--example runs on a bundled capture: give no other inputs")
        }
        if example == nil && files.isEmpty && guest == nil && trace == nil && qmp == nil {
            throw ValidationError(hostLog != nil
                ? "the host's kernel log alone says nothing of the guest's errors: give the guest log, QEMU's trace or QMP events with it (or read it alone with `kvmscope host`)"
                : "give a guest log, a QEMU trace and/or QMP events (or --example NAME; --example list)")
        }
        if detailLimit < 1 { throw ValidationError("--detail-limit must be at least 1") }
    }

    func run() throws {
        var inputs = ExplainSession.Inputs()
        if let example {
            if example == "list" {
                for e in BundledExample.all { CLIOutput.write("\(e.name.padding(toLength: 18, withPad: " ", startingAt: 0)) \(e.summary)\n") }
                return
            }
            guard let e = BundledExample.named(example) else {
                throw KVMScopeError.usage("no example named '\(example)' (kvmscope explain --example list)")
            }
            inputs = ExplainSession.inputs(example: e)
        } else {
            inputs.guest = try guest.map { try FileByteSource(path: $0) }
            inputs.trace = try trace.map { try FileByteSource(path: $0) }
            inputs.qmp = try qmp.map { try FileByteSource(path: $0) }
            inputs.qemuCommandLine = try qemuCmdline.map { try FileByteSource(path: $0) }
            inputs.hostLog = try hostLog.map { try FileByteSource(path: $0) }
            inputs.hostMounts = try hostMounts.map { try FileByteSource(path: $0) }
            var unnamed: [ByteStream] = []
            for f in files {
                var isDir: ObjCBool = false
                if f != "-", FileManager.default.fileExists(atPath: f, isDirectory: &isDir), isDir.boolValue,
                   let manifest = try CaptureManifest.load(directory: f) {
                    try ExplainSession.addInputs(ofCapture: manifest, directory: f, to: &inputs)
                } else if f != "-", isDir.boolValue {
                    let found = try ExplainSession.streams(inDirectory: f)
                    inputs.foundInDirectory.formUnion(found.map(\.name))
                    unnamed += found
                    if inputs.hostLog == nil, let h = try ExplainSession.hostLog(inDirectory: f) {
                        inputs.hostLog = h
                        inputs.foundInDirectory.insert(h.name)
                    }
                    if inputs.qemuCommandLine == nil { inputs.qemuCommandLine = ExplainSession.commandLine(inDirectory: f) }
                } else {
                    unnamed.append(try FileByteSource(path: f))
                }
            }
            try ExplainSession.classify(unnamed, into: &inputs, events: events)
            if inputs.isEmpty, inputs.hostLog != nil {
                throw KVMScopeError.usage("the host's kernel log alone says nothing of the guest's errors: give the guest log, QEMU's trace or QMP events with it (or read it alone with `kvmscope host`)")
            }
        }
        inputs.qmpDomain = domain
        let meter = ProgressMeter(label: "inputs", total: nil)
        let report = try ExplainSession.run(inputs, events: events, detailLimit: detailLimit, onProgress: meter.update)
        meter.finish()
        if output.json {
            CLIOutput.write(try ExplainRenderer.json(report))
        } else {
            let width = Int(ProcessInfo.processInfo.environment["COLUMNS"] ?? "") ?? 100
            CLIOutput.write(ExplainRenderer.text(report, style: output.style, width: max(60, width)))
        }
        if report.hasFindings { throw ExitCode.failure }
    }
}
