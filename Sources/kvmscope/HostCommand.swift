import ArgumentParser
import Foundation
import KVMScope

struct HostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Read the host's kernel log and say what failed below QEMU.",
        discussion: """
        Reads the host's dmesg (any time format), journalctl -k, kern.log/syslog or
        /dev/kmsg records and reports what failed in the storage under the guests'
        images: block-layer errors on any host device (sd, nvme, loop, dm-N, md,
        rbd, nbd, vd), SCSI results and sense, NVMe command errors, timeouts and
        resets, ATA errors and link resets, multipath paths failing (and
        multipathd's "remaining active paths: 0"), thin pools out of space,
        dm-crypt errors, md RAID members failing, iSCSI connection errors and
        session recovery timeouts, NFS servers not responding (and back), Ceph
        socket errors, host filesystem errors, read-only remounts, shutdowns and
        full filesystems, hung tasks and OOM kills (flagged when they are QEMU).
        Lines that are not failures (capacity changes, DISCARD or WRITE_ZEROES
        that a device does not support, mounts) are counted, never reported as
        failures.

        Examples:
          $ dmesg --time-format iso | kvmscope host -
          $ journalctl -k -b | kvmscope host --json -
          $ kvmscope host /var/log/kern.log
        Exit status: 0 no failures, 1 failures found or unreadable input,
        2 usage error or a file with no kernel message.
        """
    )

    @Argument(help: "The log to read; - for standard input (the default when stdin is not a terminal).")
    var file: String?

    @Option(name: .long, help: "Findings to list in the text report (the JSON lists up to --detail-limit).")
    var top: Int = 20

    @Option(name: .long, help: "Findings to keep individually before only counting.")
    var detailLimit: Int = 10_000

    @OptionGroup var output: OutputOptions

    func validate() throws {
        try LogFileInput.validate(file: file, top: top, detailLimit: detailLimit, example: "dmesg | kvmscope host -")
    }

    func run() throws {
        let (source, meter) = try LogFileInput.open(file)
        let report = try HostKernelSession.read(source, detailLimit: detailLimit, progress: meter.update)
        meter.finish()
        if output.json {
            CLIOutput.write(try HostReportRenderer.json(report))
        } else {
            CLIOutput.write(HostReportRenderer.text(report, style: output.style, listLimit: top))
        }
        if report.hasFailures { throw ExitCode.failure }
    }
}
