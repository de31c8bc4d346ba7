/// A SCSI command descriptor block as the guest printed it: `[sdX] tag#%d CDB: %s %02x %02x ...`
/// (drivers/scsi/scsi_logging.c scsi_print_command: the opcode's name from constants.c, or
/// `opcode=0x%x`, then every byte of a CDB of up to 16 bytes).
public struct SCSICommandDescriptor: Equatable, Sendable {
    /// The name as printed (`Write(10)`, `Synchronize Cache(10)`, `opcode=0x2a`).
    public var name: String
    public var bytes: [UInt8]

    public init(name: String, bytes: [UInt8]) { self.name = name; self.bytes = bytes }

    public var opcode: UInt8 { bytes.first ?? 0 }

    /// The length a CDB of this opcode's group has (SPC-4 4.2.5.1, scsi_command_size()): 6, 10,
    /// 12 or 16; nil for variable-length (0x7f) and vendor-specific groups.
    public static func length(opcode: UInt8) -> Int? {
        switch opcode >> 5 {
        case 0: return 6
        case 1, 2: return 10
        case 4: return 16
        case 5: return 12
        default: return nil
        }
    }

    public var operation: SCSIOperation { SCSIOperation(opcode: opcode) }

    /// The first logical block and the number of blocks, for the commands that address blocks
    /// (SBC-3 READ/WRITE/VERIFY/WRITE SAME/SYNCHRONIZE CACHE/PRE-FETCH in their 6/10/12/16-byte
    /// forms), read big-endian from the bytes. nil when the opcode carries no range or the CDB
    /// is shorter than its form. For READ(6)/WRITE(6) a length byte of 0 means 256 blocks.
    public var blockRange: (lba: UInt64, blocks: UInt32)? {
        func be(_ from: Int, _ count: Int) -> UInt64? {
            guard from >= 0, count > 0, from + count <= bytes.count else { return nil }
            var v: UInt64 = 0
            for b in bytes[from..<(from + count)] { v = (v << 8) | UInt64(b) }
            return v
        }
        switch opcode {
        case 0x08, 0x0A:   // READ(6), WRITE(6): 21-bit LBA in bytes 1–3, length in byte 4
            guard let lba = be(1, 3), let n = be(4, 1) else { return nil }
            return (lba & 0x1F_FFFF, n == 0 ? 256 : UInt32(n))
        case 0x28, 0x2A, 0x2E, 0x2F, 0x41, 0x35, 0x34:
            // READ(10), WRITE(10), WRITE AND VERIFY(10), VERIFY(10), WRITE SAME(10),
            // SYNCHRONIZE CACHE(10), PRE-FETCH(10): LBA bytes 2–5, length bytes 7–8
            guard let lba = be(2, 4), let n = be(7, 2) else { return nil }
            return (lba, UInt32(n))
        case 0xA8, 0xAA, 0xAE, 0xAF:   // READ(12), WRITE(12), WRITE AND VERIFY(12), VERIFY(12)
            guard let lba = be(2, 4), let n = be(6, 4) else { return nil }
            return (lba, UInt32(n))
        case 0x88, 0x8A, 0x8E, 0x8F, 0x93, 0x91, 0x90:
            // READ(16), WRITE(16), WRITE AND VERIFY(16), VERIFY(16), WRITE SAME(16),
            // SYNCHRONIZE CACHE(16), PRE-FETCH(16): LBA bytes 2–9, length bytes 10–13
            guard let lba = be(2, 8), let n = be(10, 4) else { return nil }
            return (lba, UInt32(n))
        default:
            return nil
        }
    }

    /// The bytes as the kernel printed them, for evidence.
    public var hex: String { bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: " ") }
}

/// What a SCSI command does, for matching it with the block layer's operation.
public enum SCSIOperation: String, CaseIterable, Sendable, Codable {
    case read, write, verify
    case writeSame = "write-same"
    case unmap
    case synchronizeCache = "synchronize-cache"
    case other

    public init(opcode: UInt8) {
        switch opcode {
        case 0x08, 0x28, 0xA8, 0x88: self = .read
        case 0x0A, 0x2A, 0xAA, 0x8A, 0x2E, 0xAE, 0x8E: self = .write
        case 0x2F, 0xAF, 0x8F: self = .verify
        case 0x41, 0x93: self = .writeSame
        case 0x42: self = .unmap
        case 0x35, 0x91: self = .synchronizeCache
        default: self = .other
        }
    }
}

/// One failed SCSI command as the guest logged it (6.1 drivers/scsi/scsi_lib.c
/// scsi_io_completion_action, in this order, each line `sd H:C:T:L: [sdX] tag#N ...`):
///   `FAILED Result: hostbyte=%s driverbyte=%s cmd_age=%lus`   scsi_print_result
///   `Sense Key : %s [current|deferred]`                       scsi_print_sense (when sense is valid)
///   `Add. Sense: %s` / `ASC=0x%x ASCQ=0x%x`
///   `CDB: %s %02x ...`                                        scsi_print_command
/// then the block layer's `%s error, dev sdX, sector %llu op 0x%x:(%s) ...` for the request.
/// Failures of the same request (operation and sector) are folded into one with a count.
public struct SCSICommandFailure: Sendable, Equatable {
    public var tag: Int?
    public var hostbyte: String?
    public var driverbyte: String?
    public var commandAgeSeconds: UInt64?
    public var senseKey: String?
    public var senseDeferred: Bool?
    public var additionalSense: String?
    /// ASC/ASCQ as numbers: printed (`ASC=0x%x ASCQ=0x%x`) or looked up from the printed words.
    public var asc: UInt8?
    public var ascq: UInt8?
    public var cdb: SCSICommandDescriptor?
    /// The block-layer error line tied to this command (same device, the CDB's range starts at
    /// its sector when both are known).
    public var blockErrorLine: Int?
    public var blockErrorSector: UInt64?
    public var blockOperation: BlockIOOperation?
    /// The tied block error's type (not in the JSON: the block error itself is).
    public var blockErrorType: BlockErrorType?
    /// The CDB's first block in 512-byte sectors (needs the disk's logical block size: from its
    /// capacity line, or from the tied block error line).
    public var sector: UInt64?
    public var sectors: UInt64?
    /// How many times the guest logged this same command failing (same operation, same first
    /// block): each is a request the guest submitted again after the previous one failed.
    public var loggedFailures = 1
    public var first: GuestLogLocation
    public var last: GuestLogLocation

    public init(tag: Int?, at: GuestLogLocation) {
        self.tag = tag; first = at; last = at
    }

    /// NOT READY with ASC 3A (medium not present: 3A/00, tray closed 3A/01, tray open 3A/02, …):
    /// the drive has no medium, as an empty virtual CD-ROM answers every read. Not a failure of
    /// the device. Known by the numbers, or by the kernel's words when it printed only those.
    public var isNoMedium: Bool {
        guard senseKey == "Not Ready" else { return false }
        if let asc { return asc == 0x3A }
        return additionalSense?.hasPrefix("Medium not present") ?? false
    }

    /// Retries the guest's SCSI midlayer makes before logging a failure, silently (the host sees
    /// each attempt, e.g. one QMP BLOCK_IO_ERROR per attempt): ABORTED COMMAND other than a
    /// protection error (ASC 0x10) is NEEDS_RETRY (scsi_error.c scsi_check_sense), retried while
    /// `++retries <= allowed`, and sd allows SD_MAX_RETRIES = 5 (drivers/scsi/sd.h). Unit
    /// attention is retried likewise. nil for sense keys that fail at once or when unknown.
    public var silentRetriesUpTo: Int? {
        guard let key = senseKey else { return nil }
        switch key {
        case "Aborted Command": return asc == 0x10 ? 0 : 5
        case "Unit Attention": return 5
        case "Medium Error", "Hardware Error", "Illegal Request", "Data Protect", "Blank Check": return 0
        default: return nil
        }
    }
}

/// The words 6.1's drivers/scsi/sense_codes.h gives the ASC/ASCQ pairs that QEMU's SCSI
/// emulation returns (QEMU scsi/utils.c `sense_code_*`; and the tray variants of 3A/00, which an
/// empty drive's `Add. Sense:` may print), so that the guest's `Add. Sense:`
/// words can be compared with the numbers in QEMU's trace events.
public enum SCSIAdditionalSense {
    public static let known: [(asc: UInt8, ascq: UInt8, text: String)] = [
        (0x00, 0x00, "No additional sense information"),
        (0x00, 0x06, "I/O process terminated"),
        (0x04, 0x03, "Logical unit not ready, manual intervention required"),
        (0x08, 0x00, "Logical unit communication failure"),
        (0x1A, 0x00, "Parameter list length error"),
        (0x20, 0x00, "Invalid command operation code"),
        (0x21, 0x00, "Logical block address out of range"),
        (0x24, 0x00, "Invalid field in cdb"),
        (0x25, 0x00, "Logical unit not supported"),
        (0x26, 0x00, "Invalid field in parameter list"),
        (0x27, 0x00, "Write protected"),
        (0x27, 0x07, "Space allocation failed write protect"),
        (0x28, 0x00, "Not ready to ready change, medium may have changed"),
        (0x29, 0x04, "Device internal reset"),
        (0x29, 0x07, "I_T nexus loss occurred"),
        (0x3A, 0x00, "Medium not present"),
        (0x3A, 0x01, "Medium not present - tray closed"),
        (0x3A, 0x02, "Medium not present - tray open"),
        (0x3E, 0x01, "Logical unit failure"),
        (0x3F, 0x0E, "Reported luns data has changed"),
        (0x44, 0x00, "Internal target failure"),
        (0x4E, 0x00, "Overlapped commands attempted"),
        (0x53, 0x02, "Medium removal prevented"),
    ]

    private static let byText: [String: (asc: UInt8, ascq: UInt8)] =
        Dictionary(known.map { ($0.text, ($0.asc, $0.ascq)) }, uniquingKeysWith: { a, _ in a })

    public static func code(for text: String) -> (asc: UInt8, ascq: UInt8)? { byText[text] }
}

extension SCSICommandFailure: Encodable {
    enum CodingKeys: String, CodingKey {
        case tag, hostbyte, driverbyte, commandAgeSeconds, senseKey, senseDeferred, additionalSense, asc, ascq
        case cdb, blockErrorLine, blockErrorSector, blockOperation, sector, sectors, loggedFailures, guestRetries
        case silentRetriesUpTo, first, last
    }

    enum CDBKeys: String, CodingKey { case name, opcode, bytes, operation, lba, blocks }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(tag, forKey: .tag)
        try c.encode(hostbyte, forKey: .hostbyte)
        try c.encode(driverbyte, forKey: .driverbyte)
        try c.encode(commandAgeSeconds, forKey: .commandAgeSeconds)
        try c.encode(senseKey, forKey: .senseKey)
        try c.encode(senseDeferred, forKey: .senseDeferred)
        try c.encode(additionalSense, forKey: .additionalSense)
        try c.encode(asc, forKey: .asc)
        try c.encode(ascq, forKey: .ascq)
        if let cdb {
            var d = c.nestedContainer(keyedBy: CDBKeys.self, forKey: .cdb)
            try d.encode(cdb.name, forKey: .name)
            try d.encode(cdb.opcode, forKey: .opcode)
            try d.encode(cdb.hex, forKey: .bytes)
            try d.encode(cdb.operation.rawValue, forKey: .operation)
            let range = cdb.blockRange
            try d.encode(range?.lba, forKey: .lba)
            try d.encode(range?.blocks, forKey: .blocks)
        } else {
            try c.encodeNil(forKey: .cdb)
        }
        try c.encode(blockErrorLine, forKey: .blockErrorLine)
        try c.encode(blockErrorSector, forKey: .blockErrorSector)
        try c.encode(blockOperation?.rawValue, forKey: .blockOperation)
        try c.encode(sector, forKey: .sector)
        try c.encode(sectors, forKey: .sectors)
        try c.encode(loggedFailures, forKey: .loggedFailures)
        try c.encode(loggedFailures - 1, forKey: .guestRetries)
        try c.encode(silentRetriesUpTo, forKey: .silentRetriesUpTo)
        try c.encode(first, forKey: .first)
        try c.encode(last, forKey: .last)
    }
}
