/// The mistakes QEMU accepts silently in a blkdebug config: rules that can never fire, errnos
/// the guest never sees, events that the image's format never emits. Pure: works on the parsed
/// rules and what is known about the image.
public struct BlkdebugChecker {
    public enum ImageFormat: String, Sendable, Codable, CaseIterable {
        case raw, qcow2
        /// Not known: format-specific advice is given as notes.
        case unknown
    }

    /// What the rules will run on.
    public enum Target: Sendable {
        /// QEMU's blkdebug driver over an image of this format.
        case qemu(ImageFormat)
        /// kvmscope's own raw-image path (`kvmscope io`, `kvmscope nbd serve`).
        case kvmscope
    }

    public var target: Target
    /// Size of the image in bytes, when known, to flag sectors beyond its end.
    public var imageSize: Int64?

    public init(target: Target = .qemu(.unknown), imageSize: Int64? = nil) {
        self.target = target
        self.imageSize = imageSize
    }

    public func check(_ config: BlkdebugConfig) -> [RuleDiagnostic] {
        var out: [RuleDiagnostic] = []
        let reachable = Self.reachableStates(config)

        for rule in config.setStates {
            if rule.state != 0 && !reachable.contains(rule.state) {
                out.append(RuleDiagnostic(.warning, "unreachable-state", at: rule.location,
                    "this [set-state] only acts in state \(rule.state), which no [set-state] ever reaches (the engine starts in state 1)"))
            }
            if rule.state != 0 && rule.state == rule.newState {
                out.append(RuleDiagnostic(.warning, "no-op-set-state", at: rule.location,
                    "state \(rule.state) → new_state \(rule.newState) changes nothing"))
            }
            if rule.newState == 0 {
                out.append(RuleDiagnostic(.warning, "new-state-zero", at: rule.location,
                    "new_state is 0 (also when absent): the engine then leaves every numbered state and only rules without 'state' still apply",
                    hint: "set new_state to the state the next rules wait for"))
            }
            eventChecks(rule.event, location: rule.location, into: &out)
        }

        for rule in config.injectErrors {
            let here = rule.location
            eventChecks(rule.event, location: here, into: &out)
            if rule.state != 0 && !reachable.contains(rule.state) {
                out.append(RuleDiagnostic(.warning, "unreachable-state", at: here,
                    "this rule waits for state \(rule.state), which no [set-state] ever reaches (the engine starts in state 1): it never fires",
                    hint: "add a [set-state] with new_state = \"\(rule.state)\", or remove 'state'"))
            }
            if rule.sector != nil && rule.iotypeMask == BlkdebugIOType.flush.bit {
                out.append(RuleDiagnostic(.warning, "sector-on-flush", at: here,
                    "iotype flush with a sector can never match: a flush has no byte range, so blkdebug never compares it with sector \(rule.sector!)",
                    hint: "remove 'sector' to fail flushes"))
            } else if rule.sector != nil && (rule.event == .flushToDisk || rule.event == .flushToOS) {
                let kinds = BlkdebugIOType.names(in: rule.iotypeMask & ~BlkdebugIOType.flush.bit).joined(separator: "/")
                out.append(RuleDiagnostic(.warning, "sector-on-flush", at: here,
                    "armed by \(rule.event.rawValue), but a sector rule never matches the flush itself (flushes have no byte range); it only fails later \(kinds) requests covering sector \(rule.sector!)",
                    hint: "to fail the flush, drop 'sector'; to fail I/O at that sector, arm it with event \"none\""))
            }
            if rule.iotypeMask == BlkdebugIOType.blockStatus.bit {
                out.append(RuleDiagnostic(.note, "block-status", at: here,
                    "iotype block-status fails only block-status queries (qemu-img map, mirror), never guest I/O"))
            }
            if rule.errno < 0 {
                // rule_check returns -error: a positive value, which the block layer takes for
                // success, before the request reaches the image (block/blkdebug.c).
                switch target {
                case .qemu:
                    out.append(RuleDiagnostic(.warning, "errno-negative", at: here,
                        "errno \(rule.errno) is negative: blkdebug returns \(-Int64(rule.errno)), which QEMU takes for success, without passing the request to the image (reads return whatever the buffer held, writes are dropped)",
                        hint: "use a positive errno (5 for EIO)"))
                case .kvmscope:
                    out.append(RuleDiagnostic(.error, "errno-negative", at: here,
                        "errno \(rule.errno) is negative: QEMU would report success without doing the I/O, which kvmscope does not imitate",
                        hint: "use a positive errno (5 for EIO), or errno 0 to let requests through"))
                }
            } else if rule.errno == 0 {
                if rule.extensions.delayNanoseconds == nil {
                    out.append(RuleDiagnostic(.warning, "errno-zero", at: here,
                        "errno 0 injects nothing: blkdebug counts the request as matched, lets it succeed, never deletes a 'once' rule, and rules after this one cannot match the same request",
                        hint: "use errno 5 (EIO) for an error, or kvmscope's delay key for slow I/O"))
                }
            } else if let entry = ErrnoTable.standard.entry(number: Int64(rule.errno)) {
                if rule.errno == 28 {
                    out.append(RuleDiagnostic(.note, "errno-enospc", at: here,
                        "ENOSPC: with QEMU's default werror=enospc a write error pauses the VM (BLOCK_IO_ERROR, STOP) instead of reaching the guest; reads (rerror=report) fail as 'I/O error'"))
                } else if rule.errno != 5 {
                    out.append(RuleDiagnostic(.warning, "errno-invisible", at: here,
                        "errno \(rule.errno) (\(entry.name), \(entry.message)) reaches a virtio/SCSI guest only as 'I/O error' (and an NBD client as \(Self.nbdWireName(rule.errno))); the number shows only in QEMU's own reports (qemu-io, BLOCK_IO_ERROR reason, traces)",
                        hint: "fine if you are testing QEMU's error path; use errno 5 if you want EIO everywhere"))
                }
            } else {
                out.append(RuleDiagnostic(.warning, "errno-unknown", at: here,
                    "errno \(rule.errno) is not a Linux errno number; strerror prints 'Unknown error \(rule.errno)'"))
            }
            if rule.errno == 95 && rule.iotypeMask & (BlkdebugIOType.discard.bit | BlkdebugIOType.writeZeroes.bit) != 0 {
                out.append(RuleDiagnostic(.warning, "enotsup-swallowed", at: here,
                    "errno 95 (ENOTSUP) never fails a discard or write-zeroes: QEMU's block layer treats it as 'not supported here' (discard succeeds, write-zeroes falls back to writing zeroes)",
                    hint: "use errno 5 to make them fail"))
            }
            // A wrapped (negative) offset already has its own warning from the reader.
            if let sector = rule.sector, let offset = rule.byteOffset, offset >= 0, let size = imageSize, offset >= size {
                out.append(RuleDiagnostic(.warning, "sector-beyond-image", at: here,
                    "sector \(sector) (byte \(offset)) is beyond the end of the image (\(size / 512) sectors): no request can cover it"))
            }
            if rule.immediately, case .kvmscope = target {
                out.append(RuleDiagnostic(.note, "immediately", at: here,
                    "'immediately' only changes how QEMU completes the request (synchronously, without rescheduling its coroutine); kvmscope has no coroutine, so it changes nothing here"))
            }
            if let ext = Optional(rule.extensions), !ext.isEmpty, let p = ext.probability, p == 0 {
                out.append(RuleDiagnostic(.warning, "probability-zero", at: here, "probability 0: this rule never fires"))
            }
        }

        // Arming by one event replaces what another event armed (blkdebug keeps one list of
        // active rules, reset whenever an event arms at least one inject-error rule).
        var firstByEvent: [BlkdebugEvent: InjectErrorRule] = [:]
        for r in config.injectErrors where firstByEvent[r.event] == nil { firstByEvent[r.event] = r }
        let events = config.injectErrors.map(\.event).reduce(into: [BlkdebugEvent]()) { if !$0.contains($1) { $0.append($1) } }
        if events.count > 1 {
            let names = events.map(\.rawValue).joined(separator: ", ")
            for e in events.dropFirst() {
                let r = firstByEvent[e]!
                let other = events.first { $0 != e }!
                out.append(RuleDiagnostic(.warning, "arming-replaces", at: r.location,
                    "rules armed by different events replace each other (\(names)): once \(e.rawValue) fires, the rules armed by \(other.rawValue) are no longer active until \(other.rawValue) fires again",
                    hint: "blkdebug keeps a single list of armed rules; arm all rules that must hold together with the same event (e.g. \"none\" for 'from the start')"))
            }
        }
        out += kvmscopeSectionChecks(config.kvmscope)
        return out.sorted { ($0.location?.line ?? 0, $0.severity) < ($1.location?.line ?? 0, $1.severity) }
    }

    private func eventChecks(_ event: BlkdebugEvent, location: RuleLocation, into out: inout [RuleDiagnostic]) {
        switch target {
        case .kvmscope:
            if let why = event.whyNotOnRawImage {
                out.append(RuleDiagnostic(.error, "event-not-here", at: location,
                    "event \(event.rawValue) never fires in kvmscope: \(why)"))
            }
        case let .qemu(format):
            guard event.source == .imageFormat || event.source == .unalignedWrite || event.source == .copyOnRead else { return }
            switch (event.source, format) {
            case (.imageFormat, .raw):
                out.append(RuleDiagnostic(.warning, "format-event-on-raw", at: location,
                    "event \(event.rawValue) is emitted by the qcow2 driver; on a raw image it never fires",
                    hint: "for a raw image use read_aio, write_aio, flush_to_disk, pwritev or none"))
            case (.imageFormat, .unknown):
                out.append(RuleDiagnostic(.note, "format-event", at: location,
                    "event \(event.rawValue) fires only with the qcow2 driver (give --image or --format to check)"))
            case (.unalignedWrite, _):
                out.append(RuleDiagnostic(.note, "rmw-event", at: location,
                    "event \(event.rawValue) fires only for unaligned writes that need read-modify-write (e.g. blkdebug align=4096)"))
            case (.copyOnRead, _):
                out.append(RuleDiagnostic(.note, "cor-event", at: location,
                    "event cor_write fires only with copy-on-read (copy-on-read=on) from a backing file"))
            default: break
            }
        }
    }

    /// States the engine can be in: 1, and every new_state of a [set-state] that acts in a reachable state.
    public static func reachableStates(_ config: BlkdebugConfig) -> Set<Int> {
        var reached: Set<Int> = [1]
        var changed = true
        while changed {
            changed = false
            for r in config.setStates where r.state == 0 || reached.contains(r.state) {
                if reached.insert(r.newState).inserted { changed = true }
            }
        }
        return reached
    }

    static func nbdWireName(_ errno: Int32) -> String {
        switch errno {
        case 1: return "EPERM"
        case 5: return "EIO"
        case 12: return "ENOMEM"
        case 22: return "EINVAL"
        case 28, 122, 27: return "ENOSPC"
        case 75: return "EOVERFLOW"
        case 95: return "ENOTSUP"
        case 108: return "ESHUTDOWN"
        default: return "EIO"
        }
    }
}
