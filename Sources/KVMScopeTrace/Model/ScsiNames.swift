/// Names of SCSI codes, from the T10 standards (SPC-4 for status, sense keys and ASC/ASCQ;
/// SBC-3 for block commands) as QEMU's include/scsi/constants.h and scsi/utils.c use them, and
/// VIRTIO_SCSI_S_* from the virtio specification (5.6.6.1).
public enum ScsiNames {
    /// SAM status byte.
    public static func status(_ s: Int) -> String {
        switch s {
        case 0x00: return "GOOD"
        case 0x02: return "CHECK CONDITION"
        case 0x04: return "CONDITION MET"
        case 0x08: return "BUSY"
        case 0x18: return "RESERVATION CONFLICT"
        case 0x28: return "TASK SET FULL"
        case 0x30: return "ACA ACTIVE"
        case 0x40: return "TASK ABORTED"
        default: return "status 0x" + String(s, radix: 16)
        }
    }

    /// virtio-scsi command response (`response` of virtio_scsi_cmd_resp).
    public static func virtioResponse(_ r: Int) -> String {
        switch r {
        case 0: return "OK"
        case 1: return "OVERRUN"
        case 2: return "ABORTED"
        case 3: return "BAD_TARGET"
        case 4: return "RESET"
        case 5: return "BUSY"
        case 6: return "TRANSPORT_FAILURE"
        case 7: return "TARGET_FAILURE"
        case 8: return "NEXUS_FAILURE"
        case 9: return "FAILURE"
        case 12: return "INCORRECT_LUN"
        default: return "response \(r)"
        }
    }

    /// SPC sense keys, in the words Linux prints them (`Sense Key : Aborted Command [current]`
    /// comes from drivers/scsi/constants.c snstext[]; here in capitals as SPC writes them).
    public static func senseKey(_ k: Int) -> String {
        let names = ["NO SENSE", "RECOVERED ERROR", "NOT READY", "MEDIUM ERROR", "HARDWARE ERROR",
                     "ILLEGAL REQUEST", "UNIT ATTENTION", "DATA PROTECT", "BLANK CHECK", "VENDOR SPECIFIC",
                     "COPY ABORTED", "ABORTED COMMAND", "EQUAL", "VOLUME OVERFLOW", "MISCOMPARE", "COMPLETED"]
        return k >= 0 && k < names.count ? names[k] : "sense key 0x" + String(k, radix: 16)
    }

    /// The ASC/ASCQ pairs QEMU builds (include/scsi/utils.h SENSE_CODE list) and the common
    /// ones of real disks behind scsi-block, named as SPC-4 Annex D names them.
    public static func additionalSense(asc: Int, ascq: Int) -> String? {
        switch (asc, ascq) {
        case (0x00, 0x00): return "NO ADDITIONAL SENSE INFORMATION"
        case (0x00, 0x06): return "I/O PROCESS TERMINATED"
        case (0x04, 0x00): return "LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE"
        case (0x04, 0x01): return "LOGICAL UNIT IS IN PROCESS OF BECOMING READY"
        case (0x04, 0x02): return "LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED"
        case (0x04, 0x03): return "LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED"
        case (0x08, 0x00): return "LOGICAL UNIT COMMUNICATION FAILURE"
        case (0x0c, 0x00): return "WRITE ERROR"
        case (0x0c, 0x02): return "WRITE ERROR - AUTO REALLOCATION FAILED"
        case (0x11, 0x00): return "UNRECOVERED READ ERROR"
        case (0x11, 0x04): return "UNRECOVERED READ ERROR - AUTO REALLOCATE FAILED"
        case (0x1a, 0x00): return "PARAMETER LIST LENGTH ERROR"
        case (0x20, 0x00): return "INVALID COMMAND OPERATION CODE"
        case (0x21, 0x00): return "LOGICAL BLOCK ADDRESS OUT OF RANGE"
        case (0x24, 0x00): return "INVALID FIELD IN CDB"
        case (0x25, 0x00): return "LOGICAL UNIT NOT SUPPORTED"
        case (0x26, 0x00): return "INVALID FIELD IN PARAMETER LIST"
        case (0x27, 0x00): return "WRITE PROTECTED"
        case (0x27, 0x07): return "SPACE ALLOCATION FAILED WRITE PROTECT"
        case (0x28, 0x00): return "NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED"
        case (0x29, 0x00): return "POWER ON, RESET, OR BUS DEVICE RESET OCCURRED"
        case (0x29, 0x01): return "POWER ON OCCURRED"
        case (0x29, 0x02): return "SCSI BUS RESET OCCURRED"
        case (0x29, 0x03): return "BUS DEVICE RESET FUNCTION OCCURRED"
        case (0x2a, 0x01): return "MODE PARAMETERS CHANGED"
        case (0x2a, 0x09): return "CAPACITY DATA HAS CHANGED"
        case (0x2f, 0x00): return "COMMANDS CLEARED BY ANOTHER INITIATOR"
        case (0x30, 0x00): return "INCOMPATIBLE MEDIUM INSTALLED"
        case (0x31, 0x00): return "MEDIUM FORMAT CORRUPTED"
        case (0x3a, 0x00): return "MEDIUM NOT PRESENT"
        case (0x3a, 0x01): return "MEDIUM NOT PRESENT - TRAY CLOSED"
        case (0x3a, 0x02): return "MEDIUM NOT PRESENT - TRAY OPEN"
        case (0x3e, 0x03): return "LOGICAL UNIT FAILED SELF-TEST"
        case (0x3f, 0x0e): return "REPORTED LUNS DATA HAS CHANGED"
        case (0x44, 0x00): return "INTERNAL TARGET FAILURE"
        case (0x47, 0x00): return "SCSI PARITY ERROR"
        case (0x53, 0x02): return "MEDIUM REMOVAL PREVENTED"
        case (0x55, 0x03): return "INSUFFICIENT RESOURCES"
        case (0x5d, 0x00): return "FAILURE PREDICTION THRESHOLD EXCEEDED"
        default: return nil
        }
    }

    /// The host errno QEMU turned into this sense (scsi_sense_from_errno() in QEMU 7.2's
    /// scsi/utils.c): what the storage under QEMU failed with, or nil when QEMU builds this
    /// sense for something else.
    public static func hostErrno(forSenseKey key: Int, asc: Int, ascq: Int) -> String? {
        switch (key, asc, ascq) {
        case (0x0b, 0x00, 0x06): return "EIO or another errno without a SCSI equivalent"
        case (0x03, 0x11, 0x00): return "ENODATA"
        case (0x04, 0x44, 0x00): return "EREMOTEIO or ENOMEM"
        case (0x02, 0x3a, 0x00): return "ENOMEDIUM"
        case (0x05, 0x24, 0x00): return "EINVAL"
        case (0x07, 0x27, 0x07): return "ENOSPC"
        default: return nil
        }
    }

    /// What a CDB asks for: the opcode's name, the kind of access, and how to read its LBA and
    /// transfer length (SBC-3 4.2.2: 6-, 10-, 12- and 16-byte CDBs).
    struct Opcode {
        var name: String
        var kind: String
        /// CDB layout for LBA and length: 0 none, 6, 10, 12, 16.
        var layout: Int
    }

    static func opcode(_ op: Int, serviceAction: Int? = nil) -> Opcode {
        switch op {
        case 0x00: return Opcode(name: "TEST UNIT READY", kind: "other", layout: 0)
        case 0x03: return Opcode(name: "REQUEST SENSE", kind: "other", layout: 0)
        case 0x04: return Opcode(name: "FORMAT UNIT", kind: "other", layout: 0)
        case 0x08: return Opcode(name: "READ(6)", kind: "read", layout: 6)
        case 0x0a: return Opcode(name: "WRITE(6)", kind: "write", layout: 6)
        case 0x12: return Opcode(name: "INQUIRY", kind: "other", layout: 0)
        case 0x15: return Opcode(name: "MODE SELECT(6)", kind: "other", layout: 0)
        case 0x1a: return Opcode(name: "MODE SENSE(6)", kind: "other", layout: 0)
        case 0x1b: return Opcode(name: "START STOP UNIT", kind: "other", layout: 0)
        case 0x1e: return Opcode(name: "PREVENT ALLOW MEDIUM REMOVAL", kind: "other", layout: 0)
        case 0x25: return Opcode(name: "READ CAPACITY(10)", kind: "other", layout: 0)
        case 0x28: return Opcode(name: "READ(10)", kind: "read", layout: 10)
        case 0x2a: return Opcode(name: "WRITE(10)", kind: "write", layout: 10)
        case 0x2b: return Opcode(name: "SEEK(10)", kind: "other", layout: 0)
        case 0x2e: return Opcode(name: "WRITE AND VERIFY(10)", kind: "write", layout: 10)
        case 0x2f: return Opcode(name: "VERIFY(10)", kind: "verify", layout: 10)
        case 0x34: return Opcode(name: "PRE-FETCH(10)", kind: "other", layout: 10)
        case 0x35: return Opcode(name: "SYNCHRONIZE CACHE(10)", kind: "flush", layout: 10)
        case 0x3b: return Opcode(name: "WRITE BUFFER", kind: "other", layout: 0)
        case 0x3c: return Opcode(name: "READ BUFFER", kind: "other", layout: 0)
        case 0x41: return Opcode(name: "WRITE SAME(10)", kind: "write-same", layout: 10)
        case 0x42: return Opcode(name: "UNMAP", kind: "discard", layout: 0)
        case 0x43: return Opcode(name: "READ TOC", kind: "other", layout: 0)
        case 0x46: return Opcode(name: "GET CONFIGURATION", kind: "other", layout: 0)
        case 0x4a: return Opcode(name: "GET EVENT STATUS NOTIFICATION", kind: "other", layout: 0)
        case 0x4d: return Opcode(name: "LOG SENSE", kind: "other", layout: 0)
        case 0x55: return Opcode(name: "MODE SELECT(10)", kind: "other", layout: 0)
        case 0x5a: return Opcode(name: "MODE SENSE(10)", kind: "other", layout: 0)
        case 0x5e: return Opcode(name: "PERSISTENT RESERVE IN", kind: "other", layout: 0)
        case 0x5f: return Opcode(name: "PERSISTENT RESERVE OUT", kind: "other", layout: 0)
        case 0x85: return Opcode(name: "ATA PASS-THROUGH(16)", kind: "other", layout: 0)
        case 0x88: return Opcode(name: "READ(16)", kind: "read", layout: 16)
        case 0x89: return Opcode(name: "COMPARE AND WRITE", kind: "write", layout: 16)
        case 0x8a: return Opcode(name: "WRITE(16)", kind: "write", layout: 16)
        case 0x8e: return Opcode(name: "WRITE AND VERIFY(16)", kind: "write", layout: 16)
        case 0x8f: return Opcode(name: "VERIFY(16)", kind: "verify", layout: 16)
        case 0x91: return Opcode(name: "SYNCHRONIZE CACHE(16)", kind: "flush", layout: 16)
        case 0x93: return Opcode(name: "WRITE SAME(16)", kind: "write-same", layout: 16)
        case 0x9e:
            if serviceAction == 0x10 { return Opcode(name: "READ CAPACITY(16)", kind: "other", layout: 0) }
            return Opcode(name: "SERVICE ACTION IN(16)", kind: "other", layout: 0)
        case 0xa0: return Opcode(name: "REPORT LUNS", kind: "other", layout: 0)
        case 0xa1: return Opcode(name: "ATA PASS-THROUGH(12)", kind: "other", layout: 0)
        case 0xa3: return Opcode(name: "MAINTENANCE IN", kind: "other", layout: 0)
        case 0xa8: return Opcode(name: "READ(12)", kind: "read", layout: 12)
        case 0xaa: return Opcode(name: "WRITE(12)", kind: "write", layout: 12)
        case 0xae: return Opcode(name: "WRITE AND VERIFY(12)", kind: "write", layout: 12)
        case 0xaf: return Opcode(name: "VERIFY(12)", kind: "verify", layout: 12)
        default: return Opcode(name: "opcode 0x" + (op < 16 ? "0" : "") + String(op, radix: 16), kind: "other", layout: 0)
        }
    }

    /// LBA and transfer length (in logical blocks) of a CDB, by its layout; nil fields when the
    /// CDB is too short for them. A READ/WRITE(6) length of 0 means 256 blocks (SBC-3 5.10).
    static func lbaAndLength(_ cdb: [UInt8], layout: Int) -> (lba: UInt64?, blocks: UInt64?) {
        func be(_ from: Int, _ count: Int) -> UInt64? {
            guard cdb.count >= from + count else { return nil }
            var v: UInt64 = 0
            for i in from..<(from + count) { v = v << 8 | UInt64(cdb[i]) }
            return v
        }
        switch layout {
        case 6:
            guard cdb.count >= 5 else { return (nil, nil) }
            let lba = UInt64(cdb[1] & 0x1f) << 16 | UInt64(cdb[2]) << 8 | UInt64(cdb[3])
            let n = UInt64(cdb[4])
            let isReadWrite = cdb[0] == 0x08 || cdb[0] == 0x0a
            return (lba, n == 0 && isReadWrite ? 256 : n)
        case 10: return (be(2, 4), be(7, 2))
        case 12: return (be(2, 4), be(6, 4))
        case 16:
            // COMPARE AND WRITE has a one-byte NUMBER OF LOGICAL BLOCKS at byte 13.
            if cdb.first == 0x89 { return (be(2, 8), be(13, 1)) }
            return (be(2, 8), be(10, 4))
        default: return (nil, nil)
        }
    }
}
