/// How a SCSI request ended, and the report.
extension ScsiRequestTracker {
    /// A request left the tracker. `response`/`status` come from virtio_scsi_cmd_resp; without
    /// it, sense data built for the request means CHECK CONDITION (every QEMU path that builds
    /// sense completes with it: scsi_check_condition() and scsi_handle_rw_error() in
    /// scsi-disk.c, the bus's invalid-opcode/field requests in scsi-bus.c).
    /// `superseded`: the tag started again with no end traced for this one.
    mutating func end(_ r: Request, ns: Int64?, response: Int?, status: Int?, superseded: Bool) {
        let key = DeviceKey(target: r.target, lun: r.lun)
        learnBlockSize(r, key)
        if superseded {
            counts.outcomeUnknown += 1
            return
        }
        if r.cancelled {
            counts.cancelled += 1
            return
        }
        let effectiveStatus = status ?? (r.sense != nil ? 0x02 : nil)
        let good = (response ?? 0) == 0 && (effectiveStatus ?? 0) == 0
        if good {
            counts.completed += 1
            self[device: key].completed += 1
            return
        }
        let op = r.opcode.map { ScsiNames.opcode($0, serviceAction: r.cdb.flatMap { $0.count > 1 ? Int($0[1] & 0x1f) : nil }) }
        let nonData = op.map { $0.kind == "other" && !$0.name.hasPrefix("opcode") } ?? false
        // The guest's bus scan: REPORT LUNS / INQUIRY to targets and LUNs that do not exist
        // (virtio_scsi_handle_cmd_req_prepare() answers BAD_TARGET or INCORRECT_LUN).
        if nonData, response == 3 || response == 12 {
            counts.rejectedProbes += 1
            return
        }
        if (response ?? 0) == 0, let sense = r.sense {
            if sense.key == 0x06 { counts.unitAttentions += 1; return }
            // Non-data commands answered ILLEGAL REQUEST or NOT READY: the guest probing
            // (INQUIRY pages, REPORT SUPPORTED OPERATION CODES, TEST UNIT READY on an empty CD).
            if nonData, sense.key == 0x05 || sense.key == 0x02 {
                counts.rejectedProbes += 1
                return
            }
        }
        counts.failed += 1
        self[device: key].failed += 1
        failuresTotal += 1
        let attemptKey = AttemptKey(device: key, opcode: r.opcode, lba: lba(r, op))
        var attempt: Int?
        if let n = attempts[attemptKey] {
            attempt = n + 1
            attempts[attemptKey] = n + 1
        } else if attempts.count < Self.maxAttemptKeys {
            attempt = 1
            attempts[attemptKey] = 1
        }
        guard failures.count < options.maxFailuresKept else { return }
        let command = self.command(r, op)
        let (sector, sectors, blockSize, source) = sectorRange(r, op, key)
        let timeNs = ns ?? r.dequeuedNs ?? r.senseNs ?? r.firstNs
        var f = ScsiFailure(
            target: r.target, lun: r.lun, tag: "0x" + String(r.tag, radix: 16), command: command,
            sector: sector, sectors: sectors, blockSize: blockSize, blockSizeSource: source,
            status: effectiveStatus, statusName: effectiveStatus.map(ScsiNames.status),
            response: response, responseName: response.map(ScsiNames.virtioResponse), sense: r.sense,
            attempt: attempt, time: timeNs.map(TraceTimestamp.decimalSeconds),
            sinceStart: timeNs.flatMap { t in firstNs.map { TraceTimestamp.decimalSeconds(t - $0) } },
            explanation: "")
        f.explanation = Self.explain(f, statusTraced: status != nil)
        failures.append(f)
    }

    subscript(device key: DeviceKey) -> DeviceCounters {
        get { devices[key] ?? DeviceCounters() }
        set {
            if devices[key] == nil { deviceOrder.append(key) }
            devices[key] = newValue
        }
    }

    /// The request's LBA when its command has one: scsi_req_parsed_lba prints whatever QEMU's
    /// generic parser took from the CDB (scsi_cmd_lba()), also for commands without an LBA
    /// (MAINTENANCE IN "lba 17956864"); only the block commands' LBA is an address.
    func lba(_ r: Request, _ op: ScsiNames.Opcode?) -> UInt64? {
        guard let op, op.layout != 0 else { return nil }
        return r.lba
    }

    func command(_ r: Request, _ op: ScsiNames.Opcode?) -> ScsiCommand? {
        guard let opcode = r.opcode, let op else { return nil }
        return ScsiCommand(opcode: opcode, name: op.name, kind: op.kind, lba: lba(r, op), blocks: r.blocks,
                           transferBytes: r.xfer, cdb: r.cdb.map { $0.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined(separator: " ") })
    }

    /// A data request with both a CDB length and QEMU's byte count shows the LUN's logical
    /// block size: QEMU computes the byte count as blocks × blocksize (scsi_req_xfer()).
    mutating func learnBlockSize(_ r: Request, _ key: DeviceKey) {
        guard let opcode = r.opcode, let blocks = r.blocks, blocks > 0, let xfer = r.xfer, xfer > 0 else { return }
        let kind = ScsiNames.opcode(opcode).kind
        guard kind == "read" || kind == "write", xfer % blocks == 0 else { return }
        let size = xfer / blocks
        // SBC logical block sizes QEMU accepts: powers of two from 512 to 32 KiB (block.c/blkconf).
        guard size >= 512, size <= 32768, size & (size - 1) == 0 else { return }
        self[device: key].blockSize = Int(size)
    }

    /// The request's range in 512-byte sectors, as a guest's sd driver prints it (its
    /// `sector N` is in 512-byte units whatever the logical block size). LBA × blocksize / 512,
    /// checked: a hostile LBA that does not fit gives no sector.
    func sectorRange(_ r: Request, _ op: ScsiNames.Opcode?, _ key: DeviceKey) -> (UInt64?, UInt64?, Int?, String?) {
        guard let lba = lba(r, op) else { return (nil, nil, nil, nil) }
        let learned = devices[key]?.blockSize
        let blockSize = learned ?? 512
        let perBlock = UInt64(blockSize / 512)
        let (sector, overflow) = lba.multipliedReportingOverflow(by: perBlock)
        var sectors: UInt64?
        let kind = op?.kind ?? "other"
        if let xfer = r.xfer, kind == "read" || kind == "write" {
            sectors = xfer / 512
        } else if let blocks = r.blocks {
            let (n, o) = blocks.multipliedReportingOverflow(by: perBlock)
            sectors = o ? nil : n
        }
        return (overflow ? nil : sector, overflow ? nil : sectors, blockSize, learned != nil ? "transfer" : "assumed")
    }

    /// One sentence saying what QEMU did with the request.
    static func explain(_ f: ScsiFailure, statusTraced: Bool) -> String {
        var what = f.command?.name ?? "a command (opcode not traced)"
        if let s = f.sector { what += " of sector \(s)" + (f.sectors.map { "+\($0)" } ?? "") }
        var s: String
        if let response = f.response, response != 0 {
            s = "QEMU's virtio-scsi completed \(what) with response \(f.responseName ?? String(response))"
            switch response {
            case 2, 4: s += ": the request was aborted or reset (task management from the guest, or a device reset)"
            case 3, 12: s += ": no such target or LUN"
            default: break
            }
            return s
        }
        s = "QEMU completed \(what) with \(f.statusName ?? "an error status")" + (statusTraced ? "" : " (the sense data says so; virtio_scsi_cmd_resp not traced)")
        if let sense = f.sense {
            s += ", sense \(sense.keyName)"
            if let name = sense.ascName { s += " / \(name)" }
            s += String(format: " (%02x/%02x)", sense.asc, sense.ascq)
            if let errno = sense.hostErrno {
                s += ": the sense QEMU builds when the storage under it fails with \(errno) and the drive's error policy passes the error to the guest instead of pausing the VM (werror/rerror=report, or werror=enospc for all but ENOSPC)"
            }
        }
        return s
    }

    /// The report. Call once, after the last event.
    public mutating func report() -> ScsiReport {
        var out = ScsiReport()
        out.seen = events > 0
        // Requests dequeued (scsi_req_complete) whose virtio_scsi_cmd_resp is not in the
        // trace have ended; the others are in flight when the trace holds a completion
        // family, else their end is unknown.
        let completionTraced = respSeen || dequeueSeen
        var inFlight: [ScsiInFlightRequest] = []
        var inFlightTotal = 0
        for r in open.values.sorted(by: { ($0.firstNs ?? 0, $0.tag) < ($1.firstNs ?? 0, $1.tag) }) {
            if r.dequeuedNs != nil {
                end(r, ns: r.dequeuedNs, response: nil, status: nil, superseded: false)
                continue
            }
            guard completionTraced else {
                counts.outcomeUnknown += 1
                continue
            }
            let key = DeviceKey(target: r.target, lun: r.lun)
            self[device: key].inFlight += 1
            inFlightTotal += 1
            if inFlight.count < options.maxInFlightListed {
                let op = r.opcode.map { ScsiNames.opcode($0) }
                let (sector, sectors, _, _) = sectorRange(r, op, key)
                let age = r.firstNs.flatMap { s in lastNs.map { TraceTimestamp.decimalSeconds($0 - s) } }
                inFlight.append(ScsiInFlightRequest(
                    target: r.target, lun: r.lun, tag: "0x" + String(r.tag, radix: 16), command: command(r, op),
                    sector: sector, sectors: sectors, ageSeconds: age, since: r.firstNs.map(TraceTimestamp.decimalSeconds)))
            }
        }
        open.removeAll()
        counts.inFlightAtEnd = inFlightTotal
        out.requests = counts
        out.devices = deviceOrder.map { k in
            let d = devices[k]!
            return ScsiDeviceSummary(target: k.target, lun: k.lun, blockSize: d.blockSize,
                                     completed: d.completed, failed: d.failed, inFlightAtEnd: d.inFlight)
        }
        out.failuresTotal = failuresTotal
        out.failuresShown = failures.count
        out.failures = failures
        out.inFlightTotal = inFlightTotal
        out.inFlight = inFlight
        return out
    }

    /// What limits the SCSI account (for the report's warnings).
    var warnings: [String] {
        var w: [String] = []
        guard events > 0 else { return w }
        if !respSeen && !dequeueSeen {
            w.append("SCSI events without virtio_scsi_cmd_resp or scsi_req_dequeue: SCSI requests' ends are not in the trace (enable "
                + TraceCoverage.qemuOptions(for: [.virtioScsi]) + ")")
        }
        if counts.outcomeUnknown > 0 {
            w.append("\(counts.outcomeUnknown) SCSI requests have no end in the trace")
        }
        if untracked > 0 {
            w.append("\(untracked) SCSI events not tracked: over \(Self.maxOpen) tags open at once")
        }
        return w
    }
}
