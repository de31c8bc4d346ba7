/// SCSI disk lines, `sd H:C:T:L: [sdX] ...` (dev_printk prefix, drivers/scsi/sd.c and
/// scsi_logging.c), with an optional `tag#%d ` after the disk name:
///
///   `[sdX] tag#%d FAILED Result: hostbyte=%s driverbyte=%s cmd_age=%lus`   scsi_print_result, 4.x+
///   `[sdX]  Result: hostbyte=%s driverbyte=%s`                             ≤3.x (also `Synchronize Cache(10) failed: Result: ...`)
///   `[sdX] tag#%d Sense Key : %s [current|deferred] [descriptor]`         scsi_format_sense_hdr
///   `[sdX] tag#%d Add. Sense: %s` or `ASC=0x%x ASCQ=0x%x`                 scsi_format_extd_sense
///   `[sdX] Unhandled error code`, `Unhandled sense code`                    ≤3.x sd_done
///   `rejecting I/O to offline device`                                       scsi_prep_state_check
///   `[sdX] %llu %d-byte logical blocks: (%s/%s)`                            sd_print_capacity
enum SCSIMatcher {
    public static func match(_ ctx: MatchContext) -> MatchOutcome {
        let line = ctx.line
        let s = ctx.start
        guard line.matches("sd ", at: s), line.isDigit(at: s + 3) else { return .noMatch }
        let addr = line.token(at: s + 3, stop: UInt8(ascii: " "))
        guard addr.count >= 8, line[addr.upperBound - 1] == UInt8(ascii: ":") else { return .noMatch }
        let address = line.string(addr.lowerBound..<(addr.upperBound - 1))
        var i = addr.upperBound + 1
        if line.matches("rejecting I/O to offline device", at: i) {
            return .event(.scsi(SCSIEvent(device: "?", address: address, kind: .offline, location: ctx.location)))
        }
        guard line.matches("[", at: i), let (device, devEnd) = line.deviceName(at: i + 1, stop: UInt8(ascii: "]")),
              line.matches("]", at: devEnd) else { return .noMatch }
        i = line.skipBlanks(devEnd + 1)
        if line.matches("tag#", at: i), let (_, e) = line.decimal(at: i + 4) { i = line.skipBlanks(e) }
        let location = ctx.location
        func scsi(_ k: SCSIEventKind) -> MatchOutcome {
            .event(.scsi(SCSIEvent(device: device, address: address, kind: k, location: location)))
        }
        if line.matches("Sense Key : ", at: i) {
            let start = i + 12
            let end = line.find(" [", from: start) ?? line.count
            return scsi(.senseKey(line.string(start..<end)))
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
            return scsi(.result(hostbyte: line.string(hb), driverbyte: line.string(db)))
        }
        if line.isDigit(at: i), let (blocks, e) = line.decimal(at: i), line.matches(" ", at: e),
           let (size, se) = line.decimal(at: e + 1), line.matches("-byte logical blocks", at: se), size <= UInt64(UInt32.max) {
            return .event(.capacity(DiskCapacityEvent(device: device, driver: "sd", logicalBlocks: blocks,
                                                      logicalBlockSize: UInt32(size), resized: false, location: location)))
        }
        return .noMatch
    }
}

extension String {
    func trimmingTrailingBlanks() -> String {
        var s = Substring(self)
        while let last = s.last, last == " " || last == "\t" { s.removeLast() }
        return String(s)
    }
}
