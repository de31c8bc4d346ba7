import Foundation

/// Opens an image for `kvmscope io` and `kvmscope nbd serve` so that kvmscope never destroys
/// one: the format is probed as QEMU probes it (`ImageFormatProbe`) and anything but raw is
/// refused unless `-f raw` says to treat the bytes as a raw disk; QEMU's image locks are taken
/// (`QemuImageLock`) so that a running guest, qemu-io, qemu-img or qemu-nbd on the same file and
/// kvmscope refuse each other, in both directions, as two QEMU processes do.
public enum RawImageOpener {
    /// Which kvmscope command opens the image (its name and what to do instead go in messages).
    public enum Tool: Sendable {
        case io, nbdServe

        var name: String { self == .io ? "kvmscope io" : "kvmscope nbd serve" }
    }

    public struct Opened {
        public let file: RawImageFile
        public let lock: QemuImageLock
        /// What probing found (nil with an explicit `-f raw`).
        public let probe: ImageFormatProbe.Match?
        /// QEMU's warning for a writable image whose raw format was guessed (block/raw-format.c
        /// `raw_open`), to print on stderr as qemu-io/qemu-nbd print it; nil otherwise.
        public let probedRawWarning: String?
    }

    /// The formats QEMU's `-f` knows that kvmscope does not interpret (qemu-img --help, 7.2).
    static let knownFormats: Set<String> = ["qcow2", "qcow", "qed", "vmdk", "vdi", "vhdx", "vpc", "luks",
                                            "parallels", "bochs", "cloop", "dmg"]

    /// Checks `-f FORMAT` and `-U` before anything is opened; the message is the whole complaint.
    public static func validate(format: String?, readOnly: Bool, forceShare: Bool, tool: Tool) -> String? {
        if let format, format != "raw" {
            guard knownFormats.contains(format) else {
                return "-f \(format): \(tool.name) takes -f raw only (or no -f, to probe the format as QEMU does)"
            }
            return "-f \(format): \(tool.name) reads and writes raw images only (-f raw); \(advice(format: format, path: "IMAGE", tool: tool))"
        }
        if forceShare && !readOnly {
            // block.c bdrv_open_common: "force-share=on can only be used with read-only images".
            return "-U/--force-share can only be used with read-only images (add \(tool == .io ? "-r" : "--read-only"))"
        }
        return nil
    }

    private static func advice(format: String, path: String, tool: Tool) -> String {
        switch tool {
        case .io:
            return "for a \(format) image use `qemu-io -f \(format) \(path)` (faults through blkdebug: `kvmscope blkdebug check`)"
        case .nbdServe:
            return "serve a \(format) image with `qemu-nbd -f \(format) -k SOCKET \(path)` and `kvmscope nbd serve --upstream 'nbd+unix:///?socket=SOCKET'` in front of it"
        }
    }

    /// Opens, locks, probes and refuses a non-raw image without `-f raw`. Throws
    /// `FaultsError` with one line saying what was found and what to do.
    public static func open(path: String, format: String?, readOnly: Bool, forceShare: Bool, tool: Tool) throws -> Opened {
        if let problem = validate(format: format, readOnly: readOnly, forceShare: forceShare, tool: tool) {
            throw KVMScopeError.usage(problem)
        }
        let file = try RawImageFile(path: path, readOnly: readOnly)
        // Locks first, then probes: once nobody else may write, what the probe saw stays true
        // (QEMU probes first; with -U nobody is kept out, but kvmscope then only reads).
        let (perm, shared) = QemuImageLock.kvmscopeRequest(readOnly: readOnly, forceShare: forceShare)
        let lock: QemuImageLock
        do {
            lock = try QemuImageLock.acquire(fd: file.descriptor, path: path, permissions: perm, shared: shared)
        } catch let failure as QemuImageLock.Failure {
            var hint = ""
            if case .sharedPermissionDenied = failure, readOnly {
                hint = " (-U reads it anyway, sharing it with the writer)"
            }
            throw FaultsError.imageLocked(path: path, reason: failure.description, hint: hint)
        }
        var match: ImageFormatProbe.Match?
        if format == nil {
            let header = file.probeHeader()
            guard header.count == ImageFormatProbe.bufferSize || file.size == 0 else {
                throw KVMScopeError.readFailed(path: path, reason: "could not read the image to determine its format")
            }
            var m = ImageFormatProbe.probe(header: header, fileSize: file.size, filename: path)
            if m.isRaw, let vhd = ImageFormatProbe.fixedVHDFooter(trailer: file.probeTrailer()) { m = vhd }
            guard m.isRaw else {
                let verb = tool == .io ? "reads and writes" : "serves"
                throw FaultsError.imageNotRaw(path: path, format: m.format, evidence: m.evidence, tool: tool.name,
                                              verb: verb, advice: advice(format: m.format, path: path, tool: tool))
            }
            match = m
        }
        var warning: String?
        if match != nil && !readOnly {
            file.restrictFormatHeaderWrites()
            warning = "WARNING: Image format was not specified for '\(path)' and probing guessed raw.\n"
                + "         Automatically detecting the format is dangerous for raw images, write operations on block 0 will be restricted.\n"
                + "         Specify the 'raw' format explicitly to remove the restrictions.\n"
        }
        return Opened(file: file, lock: lock, probe: match, probedRawWarning: warning)
    }
}
