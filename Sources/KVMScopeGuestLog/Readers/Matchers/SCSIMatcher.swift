/// SCSI disk lines, `sd H:C:T:L: [sdX] ...` (dev_printk prefix, drivers/scsi/sd.c and
/// scsi_logging.c), and the same lines of CD-ROM drives, `sr H:C:T:L: [srN] ...`, with an optional `tag#%d ` after the disk name:
///
///   `[sdX] tag#%d FAILED Result: hostbyte=%s driverbyte=%s cmd_age=%lus`   scsi_print_result, 4.x+
///   `[sdX]  Result: hostbyte=%s driverbyte=%s`                             ≤3.x (also `Synchronize Cache(10) failed: Result: ...`)
///   `[sdX] tag#%d Sense Key : %s [current|deferred] [descriptor]`         scsi_format_sense_hdr
///   `[sdX] tag#%d Add. Sense: %s` or `ASC=0x%x ASCQ=0x%x`                 scsi_format_extd_sense
///   `[sdX] Unhandled error code`, `Unhandled sense code`                    ≤3.x sd_done
///   `rejecting I/O to offline device`                                       scsi_prep_state_check
///   `[sdX] %llu %d-byte logical blocks: (%s/%s)`                            sd_print_capacity
///   `[sdX] tag#%d CDB: %s %02x ...`                                        scsi_print_command (≤16 bytes)
/// Timeouts and error handling (6.1):
///   `[sdX] tag#%d abort`                      drivers/scsi/virtio_scsi.c virtscsi_abort (scmd_printk)
///   `device reset`                            virtio_scsi.c virtscsi_device_reset (sdev_printk: no `[sdX]`)
///   `[sdX] tag#%d timing out command, waited %lus`   scsi_lib.c scsi_cmd_runtime_exceeced
///   `Device offlined - not ready after error recovery`  scsi_error.c scsi_eh_offline_sdevs (sdev_printk)
enum SCSIMatcher {
    public static func match(_ ctx: MatchContext) -> MatchOutcome {
        let line = ctx.line
        let s = ctx.start
        // sd (disks) or sr (CD-ROM drives): the same midlayer lines under the driver's name.
        guard line.matches("sd ", at: s) || line.matches("sr ", at: s), line.isDigit(at: s + 3) else { return .noMatch }
        let driver = line[s + 1] == UInt8(ascii: "r") ? "sr" : "sd"
        let addr = line.token(at: s + 3, stop: UInt8(ascii: " "))
        guard addr.count >= 8, line[addr.upperBound - 1] == UInt8(ascii: ":") else { return .noMatch }
        let address = line.string(addr.lowerBound..<(addr.upperBound - 1))
        var i = addr.upperBound + 1
        if line.matches("rejecting I/O to offline device", at: i) {
            return .event(.scsi(SCSIEvent(device: "?", address: address, kind: .offline, location: ctx.location)))
        }
        if line.matches("device reset", at: i) {
            return timeout(ctx, "\(driver) \(address)", address, .scsiDeviceReset, tag: nil)
        }
        if line.matches("Device offlined - not ready after error recovery", at: i) {
            return timeout(ctx, "\(driver) \(address)", address, .scsiDeviceOfflined, tag: nil)
        }
        guard line.matches("[", at: i), let (device, devEnd) = line.deviceName(at: i + 1, stop: UInt8(ascii: "]")),
              line.matches("]", at: devEnd) else { return .noMatch }
        i = line.skipBlanks(devEnd + 1)
        var tag: Int? = nil
        if line.matches("tag#", at: i), let (t, e) = line.decimal(at: i + 4) {
            if t <= UInt64(Int32.max) { tag = Int(t) }
            i = line.skipBlanks(e)
        }
        let location = ctx.location
        func scsi(_ k: SCSIEventKind) -> MatchOutcome {
            .event(.scsi(SCSIEvent(device: device, address: address, kind: k, tag: tag, location: location)))
        }
        if line.matches("abort", at: i), line.skipBlanks(i + 5) == line.count {
            return timeout(ctx, device, address, .scsiAbort, tag: tag)
        }
        if line.matches("timing out command, waited ", at: i) {
            guard let (w, e) = line.decimal(at: i + 27), line.matches("s", at: e) else { return .malformed }
            return .event(.deviceTimeout(DeviceTimeoutEvent(device: device, address: address, kind: .scsiCommandTimeout,
                                                            tag: tag, waitedSeconds: w, message: ctx.message,
                                                            location: location)))
        }
        if line.matches("CDB: ", at: i) { return cdb(ctx, device, address, tag, i + 5) }
        if line.matches("Sense Key : ", at: i) {
            let start = i + 12
            let end = line.find(" [", from: start) ?? line.count
            var deferred: Bool? = nil
            if end < line.count { deferred = line.matches(" [deferred]", at: end) }
            return .event(.scsi(SCSIEvent(device: device, address: address, kind: .senseKey(line.string(start..<end)),
                                          tag: tag, senseDeferred: deferred, location: location)))
        }
        if line.matches("Add. Sense: ", at: i) {
            return scsi(.additionalSense(line.string(from: i + 12).trimmingTrailingBlanks()))
        }
        if line.matches("ASC=0x", at: i) {
            return scsi(.additionalSense(line.string(from: i).trimmingTrailingBlanks()))
        }
        if line.matches("Unhandled error code", at: i) || line.matches("Unhandled sense code", at: i) {
            return scsi(.unhandled)
        }
        if let r = line.find("Result: hostbyte=", from: i) {
            let hb = line.token(at: r + 17)
            guard !hb.isEmpty, line.matches(" driverbyte=", at: hb.upperBound) else { return .malformed }
            let db = line.token(at: hb.upperBound + 12)
            guard !db.isEmpty else { return .malformed }
            // `%s Result:` with the disposition word (FAILED, SUCCESS, UNKNOWN(0x..)) right before.
            var disposition: String? = nil
            let word = line.token(at: i)
            if word.upperBound + 1 == r, !word.isEmpty, word.count <= 24 { disposition = line.string(word) }
            var age: UInt64? = nil
            if line.matches(" cmd_age=", at: db.upperBound), let (a, e) = line.decimal(at: db.upperBound + 9),
               line.matches("s", at: e) {
                age = a
            }
            return .event(.scsi(SCSIEvent(device: device, address: address,
                                          kind: .result(hostbyte: line.string(hb), driverbyte: line.string(db)),
                                          tag: tag, disposition: disposition, commandAgeSeconds: age, location: location)))
        }
        if line.isDigit(at: i), let (blocks, e) = line.decimal(at: i), line.matches(" ", at: e),
           let (size, se) = line.decimal(at: e + 1), line.matches("-byte logical blocks", at: se), size <= UInt64(UInt32.max) {
            return .event(.capacity(DiskCapacityEvent(device: device, driver: "sd", logicalBlocks: blocks,
                                                      logicalBlockSize: UInt32(size), resized: false, location: location)))
        }
        return .noMatch
    }
}

extension SCSIMatcher {
    static func timeout(_ ctx: MatchContext, _ device: String, _ address: String, _ kind: DeviceTimeoutKind,
                        tag: Int?) -> MatchOutcome {
        .event(.deviceTimeout(DeviceTimeoutEvent(device: device, address: address, kind: kind, tag: tag,
                                                 message: ctx.message, location: ctx.location)))
    }

    /// `CDB: <name> <hex bytes>`: the name (which may contain blanks and parentheses) is what
    /// precedes the trailing run of two-digit hex bytes; the run's first byte is the opcode and
    /// its length must be the CDB length of that opcode's group, else the line is not trusted.
    static func cdb(_ ctx: MatchContext, _ device: String, _ address: String, _ tag: Int?, _ at: Int) -> MatchOutcome {
        let line = ctx.line
        var end = line.count
        while end > at, line[end - 1] == 0x20 { end -= 1 }
        // Walk back over ` hh` groups (at most 16: longer CDBs are printed as CDB[%02x] lines).
        var bytes: [UInt8] = []
        var j = end
        while j - 3 >= at, bytes.count < 17, line[j - 3] == 0x20, let hi = hexDigit(line[j - 2]), let lo = hexDigit(line[j - 1]) {
            bytes.append(hi << 4 | lo)
            j -= 3
        }
        bytes.reverse()
        guard !bytes.isEmpty, bytes.count <= 16 else { return .malformed }
        // The name may itself end in something hex-looking; trust the split whose first byte's
        // CDB length equals the number of bytes after it.
        var start = 0
        while start < bytes.count, SCSICommandDescriptor.length(opcode: bytes[start]) != bytes.count - start { start += 1 }
        if start == bytes.count {
            // A vendor or variable-length opcode: keep all bytes, decode nothing beyond the opcode.
            start = 0
        }
        let nameEnd = j + 3 * start
        guard nameEnd > at else { return .malformed }
        let name = line.string(at..<nameEnd).trimmingTrailingBlanks()
        let descriptor = SCSICommandDescriptor(name: name, bytes: Array(bytes[start...]))
        return .event(.scsi(SCSIEvent(device: device, address: address, kind: .cdb(descriptor), tag: tag,
                                      location: ctx.location)))
    }

    static func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }
}

extension String {
    func trimmingTrailingBlanks() -> String {
        var s = Substring(self)
        while let last = s.last, last == " " || last == "\t" { s.removeLast() }
        return String(s)
    }
}
