import ArgumentParser
import Foundation
import KVMScope

struct GuestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "guest",
        abstract: "Read a guest's kernel log and say what went wrong with its disks.",
        discussion: """
        Reads dmesg, dmesg -T, journalctl -k (every -o style that carries the
        message: short*, json, json-pretty, json-seq, export, cat, with-unit),
        /var/log/kern.log and other syslog files (RFC 3164, RFC 3339, RFC 5424),
        /dev/kmsg records or a serial console capture (pty "\r\r\n" line ends, ANSI
        sequences, kernel lines after user-space output); the style is recognised
        per line, so a file may mix them. A log with several boots is split into
        them (_BOOT_ID, "Linux version", a reboot message, uptime going back); a
        dmesg appended to the console of the same boot is not a new boot. A file
        with no kernel message is refused. Reports per device: failed requests by operation and
        error type, the sectors hit, lost writes (sync or async), filesystems that
        aborted their journal, went read-only or shut down, and messages the
        kernel's rate limiter dropped. A line repeated with the same uptime stamp
        (a console capture followed by dmesg) is counted once.

        Examples:
          $ kvmscope guest console.log
          Disk errors in console.log: vda (394 lines; ...)
          vda — virtio disk, 64 MiB (131072 × 512-byte blocks)
            2 failed requests: all write; all "I/O" errors (errno EIO)
              sectors (start sectors of failed requests; ...):
                6144  2× write
            8 buffer errors: 8 lost async writes
          $ dmesg | kvmscope guest -
          $ journalctl -k -b -1 | kvmscope guest --json -
          $ kvmscope guest --top 20 /var/log/kern.log
          $ kvmscope guest /var/log/kern.log.2.gz     # gzip, xz, zstd: by content
        Exit status: 0 no disk errors, 1 disk errors found or unreadable input,
        2 usage error (including an input with no kernel message at all).
        """
    )

    @Argument(help: "The log to read; - for standard input (the default when stdin is not a terminal).")
    var file: String?

    @Option(name: .long, help: "Sector ranges to list per device in the text report (the JSON has all).")
    var top: Int = 10

    @Option(name: .long, help: "Block and buffer errors to list individually (in total) before only counting.")
    var detailLimit: Int = 10_000

    @OptionGroup var output: OutputOptions

    func validate() throws {
        try LogFileInput.validate(file: file, top: top, detailLimit: detailLimit, example: "dmesg | kvmscope guest -")
    }

    func run() throws {
        let (source, meter) = try LogFileInput.open(file)
        var reader = GuestLogReader()
        var analysis = GuestDiskAnalysis(detailLimit: detailLimit)
        try reader.read(source, into: &analysis, progress: meter.update)
        meter.finish()
        try reader.stats.requireKernelMessages(source: source.name)
        let report = analysis.report(source: source.name, input: reader.stats)
        if output.json {
            CLIOutput.write(try GuestReportRenderer.json(report))
        } else {
            CLIOutput.write(GuestReportRenderer.text(report, style: output.style, topRanges: top))
        }
        if report.hasDiskErrors { throw ExitCode.failure }
    }
}
