import ArgumentParser
import Foundation
import KVMScope

extension BlkdebugChecker.ImageFormat: ExpressibleByArgument {}

struct BlkdebugCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blkdebug",
        abstract: "Check QEMU blkdebug rule files and turn them into -blockdev options.",
        discussion: """
        Exit status: 0 this help (`kvmscope blkdebug` without a subcommand), 2 usage error (an unknown subcommand); each subcommand's help gives its own.
        """,
        subcommands: [BlkdebugCheckCommand.self, BlkdebugEventsCommand.self]
    )
}

struct BlkdebugCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Report every problem QEMU would reject in a blkdebug config, and the mistakes it accepts silently.",
        discussion: """
        Errors are what QEMU refuses (unknown section, key or event, missing event, non-numbers); warnings are what QEMU accepts but never does (a state no set-state reaches, a sector rule on a flush, an errno the guest only sees as "I/O error", qcow2 events on a raw image, rules armed by different events replacing each other). Notes mark kvmscope-only keys. kvmscope's own sections ([error-rate], [delay], [stall], [bad-blocks], [bit-flips], [flakey]) are errors for QEMU, which refuses the file; with --for-kvmscope they are notes.

        Examples:
          $ kvmscope blkdebug check rules.cfg
          rules.cfg:2: error: 'l1_grow.alloc_table' is the old dotted event name, which today's QEMU rejects
              hint: use event = "l1_grow_alloc_table"
          rules.cfg: 1 inject-error rule, 0 set-state rules: 1 error, 0 warnings, 0 notes
          $ kvmscope blkdebug check --image disk.img --blockdev rules.cfg
          $ kvmscope blkdebug check --json rules.cfg
        Exit status: 0 no errors or warnings (notes are fine), 1 errors or warnings (or an unreadable file), 2 usage error.
        """
    )

    @Argument(help: "The blkdebug config file (QEMU -readconfig format).")
    var file: String

    @Option(help: "The image the rules are for: its format (qcow2 or raw) and size are checked against the rules.")
    var image: String?

    @Option(help: "Format of the image when --image is not given: raw, qcow2 or unknown.")
    var format: BlkdebugChecker.ImageFormat?

    @Flag(help: "Check for kvmscope io / nbd serve instead of QEMU: events that never fire on kvmscope's raw path are errors, kvmscope's own sections are accepted.")
    var forKvmscope = false

    @Flag(help: "Also print the rules as QEMU -blockdev options (driver=blkdebug,...,inject-error.0.event=...).")
    var blockdev = false

    @OptionGroup var output: OutputOptions

    func run() throws {
        let parsed = try BlkdebugConfigReader().read(path: file)
        var fmt = format ?? .unknown
        var size: Int64?
        if let image {
            let img = try RawImageFile(path: image, readOnly: true)
            size = img.size
            if format == nil { fmt = img.looksLikeQcow2() ? .qcow2 : .raw }
            if fmt == .qcow2 { size = nil }   // the file size is not the virtual disk size
        }
        let checker = BlkdebugChecker(target: forKvmscope ? .kvmscope : .qemu(fmt), imageSize: size)
        let diagnostics = (parsed.diagnostics + checker.check(parsed.config))
            .sorted { ($0.location?.line ?? 0, $0.severity) < ($1.location?.line ?? 0, $1.severity) }
        var blockdevLines: [String]?
        if blockdev {
            let filename = image ?? "disk.img"
            blockdevLines = ["-blockdev driver=file,node-name=file0,filename=\(filename)",
                             BlockdevOptions.blkdebug(parsed.config)]
            if fmt == .qcow2 { blockdevLines!.append("-blockdev driver=qcow2,node-name=disk0,file=blkdebug0") }
            else { blockdevLines!.append("-blockdev driver=raw,node-name=disk0,file=blkdebug0") }
        }
        let report = BlkdebugCheckReport(file: file == "-" ? "<stdin>" : file, config: parsed.config, diagnostics: diagnostics, blockdev: blockdevLines)
        if output.json {
            CLIOutput.write(try JSONReport.encode(report))
        } else {
            CLIOutput.write(BlkdebugCheckRenderer.text(report, diagnostics: diagnostics, style: output.style))
        }
        if blockdev {
            for (name, location) in parsed.config.kvmscope.locations {
                CLIOutput.warning("\(location): [\(name)] is a kvmscope section with no -blockdev form; it was left out")
            }
            for r in BlockdevOptions.dropped(parsed.config) {
                CLIOutput.warning("\(r.location): kvmscope-only keys (probability, delay, after, up, down) have no -blockdev form and were left out")
            }
        }
        if report.errors + report.warnings > 0 { throw ExitCode.failure }
    }
}

struct BlkdebugEventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "List QEMU's 48 blkdebug events, who emits them, and whether kvmscope io / nbd serve fire them.",
        discussion: """
        Examples:
          $ kvmscope blkdebug events
          read_aio              format-data-path  kvmscope: yes
          l2_load               image-format      kvmscope: no
        Exit status: 0 listed, 2 usage error.
        """
    )

    @OptionGroup var output: OutputOptions

    struct Row: Encodable { let name: String; let source: String; let kvmscope: Bool; @NullEncoded var why: String? }
    struct Document: Encodable { let events: [Row] }

    func run() throws {
        let rows = BlkdebugEvent.allCases.map {
            Row(name: $0.rawValue, source: $0.source.rawValue, kvmscope: $0.firesOnRawImage, why: $0.whyNotOnRawImage)
        }
        if output.json {
            CLIOutput.write(try JSONReport.encode(Document(events: rows)))
        } else {
            CLIOutput.write(rows.map {
                $0.name.padding(toLength: 28, withPad: " ", startingAt: 0) + $0.source.padding(toLength: 18, withPad: " ", startingAt: 0)
                    + "kvmscope: " + ($0.kvmscope ? "yes" : "no") + "\n"
            }.joined())
        }
    }
}
