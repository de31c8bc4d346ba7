import ArgumentParser
import Foundation
import KVMScope
import KVMScopeNBD

struct IoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "io",
        abstract: "qemu-io's job on a raw image, with blkdebug rules applied in-process.",
        discussion: """
        Prints exactly what qemu-io prints, so scripts and habits carry over. Commands: read, readv, write, writev, discard, flush, aio_read, aio_write, aio_flush, length, map, alloc, truncate, sleep, break, resume, wait_break, remove_break, info, help, quit (`help CMD` gives each one's options). Sizes take k/M/G/T suffixes. Without -c, commands are read from standard input, each after qemu-io's `qemu-io> ` prompt. Where qemu-io would wait forever (a synchronous request at a breakpoint, wait_break on a tag nothing stopped at, aio_flush with a request stopped), kvmscope says so on stderr and goes on. The rules fire the events QEMU's raw driver and block layer fire (read_aio, write_aio, pwritev, pwritev_zero, pwritev_done, flush_to_os, flush_to_disk, none); qcow2 metadata events are refused.

        Like qemu-io, it probes the format when -f is not given (and warns, and guards block 0, when probing guessed raw); any other format (qcow2, vmdk, ...) is refused, since writing its metadata as data would destroy it: -f raw treats the bytes as a raw disk. It takes QEMU's image locks, so it refuses an image a running guest, qemu-io or qemu-nbd writes, and they refuse it while it runs; -r -U reads such an image anyway.

        Examples:
          $ kvmscope io disk.img -c 'write -P 0xab 0 4k' -c 'read -P 0xab 0 4k'
          wrote 4096/4096 bytes at offset 0
          4 KiB, 1 ops; 00.00 sec (37.127 MiB/sec and 9504.5000 ops/sec)
          read 4096/4096 bytes at offset 0
          4 KiB, 1 ops; 00.00 sec (64.438 MiB/sec and 16496.2059 ops/sec)
          $ kvmscope io --rules write-eio.cfg disk.img -c 'write 1M 4k'
          write failed: Input/output error
          $ kvmscope io -f raw disk.img -c 'break write_aio A' -c 'aio_write 0 4k' -c 'wait_break A' -c 'resume A' -c 'aio_flush'
          blkdebug: Suspended request 'A'
          blkdebug: Resuming request 'A'
          wrote 4096/4096 bytes at offset 0
          4 KiB, 1 ops; 00.00 sec (3.688 MiB/sec and 944.1631 ops/sec)
        IMAGE may also be an NBD URI (nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH, or through TLS nbds://… and nbds+unix://… with ?tls-certificates=DIR holding ca-cert.pem and, for servers that check clients, client-cert.pem and client-key.pem), as for qemu-io: the same commands and rules, on the upstream's export (its size, read-only flag and commands; flushes forwarded). Its format is probed like a file's and anything but raw is refused; with -f raw the bytes are taken as they are.
          $ kvmscope io 'nbd+unix:///?socket=/tmp/q.sock' -c 'read -P 0 0 64k'
        Exit status: 0 every command succeeded, 1 a command failed (or the image or rules were refused: not raw, locked, bad rules), 2 usage error.
        """
    )

    @Argument(help: "Raw disk image, or an NBD URI (nbd://..., nbd+unix://...).")
    var image: String

    @Option(name: [.customShort("c"), .customLong("cmd")], help: "A qemu-io command; repeat for several.")
    var commands: [String] = []

    @Option(name: .long, help: "blkdebug rules file (QEMU format, plus kvmscope's probability/delay/after/up/down keys).")
    var rules: String?

    @Option(name: .customShort("f"), help: "Image format: raw only. Without -f the format is probed as qemu-io probes it, and any other format is refused; -f raw treats any file's bytes as a raw disk.")
    var format: String?

    @Flag(name: [.customShort("U"), .customLong("force-share")], help: "Open read-only (-r) even while another process (a guest, qemu-io) writes the image, as qemu-io -U.")
    var forceShare = false

    @Option(name: [.customShort("t"), .customLong("cache")], help: "Cache mode as qemu-io: writethrough (default: every write is followed by a flush) or writeback.")
    var cache: String = "writethrough"

    @Flag(name: [.customShort("r"), .customLong("read-only")], help: "Open the image read-only.")
    var readOnly = false

    @Option(help: "Seed for the rules' probability key (same seed, same failures).")
    var seed: UInt64 = 1

    @Option(help: "Append one JSON line per injected fault to this file.")
    var log: String?

    func validate() throws {
        if let problem = RawImageOpener.validate(format: format, readOnly: readOnly, forceShare: forceShare, tool: .io) {
            throw ValidationError(problem)
        }
        if rules == "-" && commands.isEmpty {
            throw ValidationError("--rules - reads the rules from standard input, where io reads its commands without -c: give the commands with -c")
        }
        guard ["writethrough", "writeback"].contains(cache) else {
            throw ValidationError("-t must be writethrough or writeback, not '\(cache)'")
        }
    }

    func run() throws {
        let file: any LowerDisk
        var upstream: NBDClient?
        if NBDURI.looksLikeURI(image) {
            let client = try NBDClient(uri: try NBDURI.parse(image)) { CLIOutput.error($0) }
            upstream = client
            // qemu-io opens an export read-write unless -r, and a read-only export refuses that
            // ("Could not open image: Permission denied"): so does kvmscope io.
            if !readOnly && client.export.has(NBD.TransmissionFlag.readOnly) {
                client.close()
                throw KVMScopeError.cannotOpen(path: image, reason: "the export is read-only (open it with -r)")
            }
            let disk = NBDUpstreamDisk(client: client, readOnly: readOnly)
            if format == nil { try Self.refuseIfNotRaw(disk, uri: image) }
            file = disk
        } else {
            // Probes the format and takes QEMU's image locks; they last as long as `file`.
            let opened = try RawImageOpener.open(path: image, format: format, readOnly: readOnly, forceShare: forceShare, tool: .io)
            if let warning = opened.probedRawWarning { FileHandle.standardError.write(Data(warning.utf8)) }
            file = opened.file
        }
        defer { upstream?.close() }
        let config = try rules.map { try RulesLoading.load($0, imageSize: file.size) }
        // qemu-io opens a raw format node over blkdebug: its write generations (and so when
        // flush_to_disk fires) are modelled too.
        let backend = FaultInjectingBackend(image: file, rules: config, seed: seed, writethrough: cache == "writethrough",
                                            formatNodeAbove: true)
        let session = QemuIOSession(backend: backend, out: { CLIOutput.write($0) },
                                    err: { FileHandle.standardError.write(Data($0.utf8)) })
        let writer = try log.map { try FaultLogWriter(path: $0) }
        session.onFault = { fault, command in
            writer?.write(FaultLogRecord(fault: fault, client: "kvmscope-io", command: command, nbdError: nil))
        }
        if upstream != nil { session.hasDriverInfo = false }
        var failed = false
        if !commands.isEmpty {
            for c in commands {
                if !session.run(c) { failed = true }
                if session.quitRequested { break }
            }
        } else {
            // qemu-io prompts for every command it reads from standard input, a terminal or not
            // (qemu-io.c `command_loop`: the prompt is printed before each readline).
            let interactive = isatty(STDIN_FILENO) == 1
            while true {
                session.deliverCompletions()
                CLIOutput.write("qemu-io> ")
                guard let line = readLine() else { break }
                if !session.run(line) { failed = true }
                if session.quitRequested { break }
            }
            if interactive { CLIOutput.write("\n") }
        }
        // Background requests complete and report before the image is closed, as qemu-io's
        // blk_unref drains them.
        session.finish()
        if failed { throw ExitCode.failure }
    }

    /// qemu-io probes an NBD export's content as it probes a file's: an export whose bytes are a
    /// qcow2 (qemu-nbd -f raw on a qcow2 file) would have its metadata written as data.
    static func refuseIfNotRaw(_ disk: NBDUpstreamDisk, uri: String) throws {
        let n = Int(min(Int64(ImageFormatProbe.bufferSize), disk.size))
        var header = [UInt8](repeating: 0, count: ImageFormatProbe.bufferSize)
        let e = header.withUnsafeMutableBytes { disk.read(offset: 0, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n])) }
        guard e == 0 else { throw KVMScopeError.readFailed(path: uri, reason: "could not read the export to determine its format") }
        let m = ImageFormatProbe.probe(header: header, fileSize: disk.size, filename: uri)
        guard m.isRaw else {
            throw FaultsError.imageNotRaw(path: uri, format: m.format, evidence: m.evidence, tool: "kvmscope io", verb: "reads and writes",
                                          advice: "serve the image with `qemu-nbd -f \(m.format)` so that the export is its disk")
        }
    }
}
