/// One block-layer I/O error line: the kernel gave up on a request to `device` starting at `sector`.
///
/// The kernel prints the request's first sector only, never its length, and for some shapes no
/// operation at all. Formats, oldest first (quoted from the kernel, block/blk-core.c, blk-mq.c):
///   ≤3.17      `end_request: %s error, dev %s, sector %llu`
///   3.18–4.12  `blk_update_request: %s error, dev %s, sector %llu`
///   4.13–4.20  `print_req_error: %s error, dev %s, sector %llu`
///   5.0–5.2    `print_req_error: %s error, dev %s, sector %llu flags %x`
///   5.3–5.15   `blk_update_request: %s error, dev %s, sector %llu op 0x%x:(%s) flags 0x%x phys_seg %u prio class %u`
///   5.16+      `%s error, dev %s, sector %llu op 0x%x:(%s) flags 0x%x phys_seg %u prio class %u`
public struct BlockErrorEvent: Equatable, Sendable {
    public var device: String
    public var sector: UInt64
    public var errorType: BlockErrorType
    /// The operation the line names (`op 0x1:(WRITE)`), or decodes from a bare op number.
    public var reportedOperation: BlockIOOperation?
    public var opCode: UInt32?
    public var flags: UInt32?
    public var physSegments: UInt32?
    public var prioClass: UInt32?
    /// The function name before the message (`end_request`, `blk_update_request`,
    /// `print_req_error`); nil for 5.16+, which prints none.
    public var caller: String?
    public var shape: BlockErrorShape
    public var location: GuestLogLocation

    public init(device: String, sector: UInt64, errorType: BlockErrorType, reportedOperation: BlockIOOperation? = nil,
                opCode: UInt32? = nil, flags: UInt32? = nil, physSegments: UInt32? = nil, prioClass: UInt32? = nil,
                caller: String? = nil, shape: BlockErrorShape, location: GuestLogLocation) {
        self.device = device; self.sector = sector; self.errorType = errorType
        self.reportedOperation = reportedOperation; self.opCode = opCode; self.flags = flags
        self.physSegments = physSegments; self.prioClass = prioClass
        self.caller = caller; self.shape = shape; self.location = location
    }

    /// A data-less WRITE at sector 0 (`phys_seg 0`) is the empty REQ_PREFLUSH request that
    /// fsync() sends: a failed cache flush, not a failed write of sector 0.
    public var isCacheFlush: Bool {
        reportedOperation == .flush || (reportedOperation == .write && physSegments == 0 && sector == 0)
    }

    /// What failed: the reported operation, with empty preflush writes shown as `flush`.
    public var operation: BlockIOOperation? { isCacheFlush ? .flush : reportedOperation }
}

/// Which kernel printed a block error line, told apart by its shape.
public enum BlockErrorShape: String, CaseIterable, Sendable, Codable {
    case endRequest = "end_request"
    case blkUpdateRequest = "blk_update_request"
    case printReqError = "print_req_error"
    case printReqErrorFlags = "print_req_error-flags"
    case callerWithOp = "caller-op"
    case op = "op"

    /// Kernel versions that print this shape.
    public var kernels: String {
        switch self {
        case .endRequest: return "≤3.17"
        case .blkUpdateRequest: return "3.18–4.12"
        case .printReqError: return "4.13–4.20"
        case .printReqErrorFlags: return "5.0–5.2"
        case .callerWithOp: return "5.3–5.15"
        case .op: return "5.16+"
        }
    }
}

/// The request operation (REQ_OP_*), lower-case for reports.
public enum BlockIOOperation: String, CaseIterable, Sendable, Codable {
    case read, write, flush, discard
    case secureErase = "secure-erase"
    case writeSame = "write-same"
    case writeZeroes = "write-zeroes"
    case zoneReport = "zone-report"
    case zoneReset = "zone-reset"
    case zoneResetAll = "zone-reset-all"
    case zoneOpen = "zone-open"
    case zoneClose = "zone-close"
    case zoneFinish = "zone-finish"
    case zoneAppend = "zone-append"
    case scsiIn = "scsi-in"
    case scsiOut = "scsi-out"
    case driverIn = "drv-in"
    case driverOut = "drv-out"
    /// blk_op_str() printed `UNKNOWN`, or an op number whose meaning changed between versions.
    case unknown

    /// From blk_op_str()'s names (block/blk-core.c `blk_op_name[]`): READ, WRITE, FLUSH, ...
    public init?(kernelName: String) {
        switch kernelName {
        case "READ": self = .read
        case "WRITE": self = .write
        case "FLUSH": self = .flush
        case "DISCARD": self = .discard
        case "SECURE_ERASE": self = .secureErase
        case "WRITE_SAME": self = .writeSame
        case "WRITE_ZEROES": self = .writeZeroes
        case "ZONE_REPORT": self = .zoneReport
        case "ZONE_RESET": self = .zoneReset
        case "ZONE_RESET_ALL": self = .zoneResetAll
        case "ZONE_OPEN": self = .zoneOpen
        case "ZONE_CLOSE": self = .zoneClose
        case "ZONE_FINISH": self = .zoneFinish
        case "ZONE_APPEND": self = .zoneAppend
        case "SCSI_IN": self = .scsiIn
        case "SCSI_OUT": self = .scsiOut
        case "DRV_IN": self = .driverIn
        case "DRV_OUT": self = .driverOut
        case "UNKNOWN": self = .unknown
        default: return nil
        }
    }

    /// From a bare REQ_OP number (5.0–5.2 print only `flags %x`, whose low 8 bits are the op).
    /// Only numbers that kept their meaning across kernel versions are decoded; 4, 6, 7, 8 and
    /// 10–17 were reassigned (zone operations, WRITE_SAME's removal) and come back `unknown`.
    public init(stableOpCode op: UInt32) {
        switch op {
        case 0: self = .read
        case 1: self = .write
        case 2: self = .flush
        case 3: self = .discard
        case 5: self = .secureErase
        case 9: self = .writeZeroes
        case 34: self = .driverIn
        case 35: self = .driverOut
        default: self = .unknown
        }
    }

    /// Whether the sector of a failed request of this kind names data on the disk. A flush or
    /// a reset-all has no meaningful sector, so it stays out of the sector ranges.
    public var touchesSectors: Bool {
        switch self {
        case .flush, .zoneResetAll, .driverIn, .driverOut, .scsiIn, .scsiOut, .zoneReport: return false
        default: return true
        }
    }
}

/// The `%s` in `%s error, dev ...`: blk_errors[].name (block/blk-core.c), which also gives the
/// errno the failing system call saw. Older kernels (≤4.12) chose the words from the errno
/// directly, including `critical nexus` (later `reservation conflict`).
public enum BlockErrorType: Hashable, Sendable {
    case io, notSupported, timeout, criticalSpaceAllocation, recoverableTransport, criticalTarget
    case criticalNexus, reservationConflict, criticalMedium, protection, kernelResource, deviceResource
    case nonblockingRetry, deviceOffline, dmInternalRetry, openZonesExceeded, activeZonesExceeded
    case durationLimitExceeded, invalid
    /// A name this table does not know (a newer kernel); kept verbatim.
    case other(String)

    public static let known: [BlockErrorType] = [
        .io, .notSupported, .timeout, .criticalSpaceAllocation, .recoverableTransport, .criticalTarget,
        .criticalNexus, .reservationConflict, .criticalMedium, .protection, .kernelResource, .deviceResource,
        .nonblockingRetry, .deviceOffline, .dmInternalRetry, .openZonesExceeded, .activeZonesExceeded,
        .durationLimitExceeded, .invalid,
    ]

    /// The words as the kernel prints them.
    public var text: String {
        switch self {
        case .io: return "I/O"
        case .notSupported: return "operation not supported"
        case .timeout: return "timeout"
        case .criticalSpaceAllocation: return "critical space allocation"
        case .recoverableTransport: return "recoverable transport"
        case .criticalTarget: return "critical target"
        case .criticalNexus: return "critical nexus"
        case .reservationConflict: return "reservation conflict"
        case .criticalMedium: return "critical medium"
        case .protection: return "protection"
        case .kernelResource: return "kernel resource"
        case .deviceResource: return "device resource"
        case .nonblockingRetry: return "nonblocking retry"
        case .deviceOffline: return "device offline"
        case .dmInternalRetry: return "dm internal retry"
        case .openZonesExceeded: return "open zones exceeded"
        case .activeZonesExceeded: return "active zones exceeded"
        case .durationLimitExceeded: return "duration limit exceeded"
        case .invalid: return "invalid"
        case .other(let s): return s
        }
    }

    /// The errno the kernel returned to the program for this status (blk_errors[].errno),
    /// decoded through the errno table by the renderers. nil for names this table does not know.
    public var errnoName: String? {
        switch self {
        case .io: return "EIO"
        case .notSupported: return "EOPNOTSUPP"
        case .timeout: return "ETIMEDOUT"
        case .criticalSpaceAllocation: return "ENOSPC"
        case .recoverableTransport: return "ENOLINK"
        case .criticalTarget: return "EREMOTEIO"
        case .criticalNexus, .reservationConflict: return "EBADE"
        case .criticalMedium: return "ENODATA"
        case .protection: return "EILSEQ"
        case .kernelResource: return "ENOMEM"
        case .deviceResource: return "EBUSY"
        case .nonblockingRetry: return "EAGAIN"
        case .deviceOffline: return "ENODEV"
        case .dmInternalRetry: return "EREMCHG"
        case .openZonesExceeded: return "ETOOMANYREFS"
        case .activeZonesExceeded: return "EOVERFLOW"
        case .durationLimitExceeded: return "ETIME"
        case .invalid: return "EINVAL"
        case .other: return nil
        }
    }

    public init(text: String) {
        self = Self.known.first { $0.text == text } ?? .other(text)
    }
}

/// blk_status_t numbers (include/linux/blk_types.h), which ext4 prints since 4.13 where it used
/// to print an errno: `I/O error 10 writing to inode` means BLK_STS_IOERR, not errno 10.
/// Numbers 1–13 have been stable since 4.13; higher ones were renumbered (6.x) and are left
/// undecoded rather than guessed.
enum BlockStatus {
    public static func name(_ value: Int) -> String? {
        switch value {
        case 0: return "BLK_STS_OK"
        case 1: return "BLK_STS_NOTSUPP"
        case 2: return "BLK_STS_TIMEOUT"
        case 3: return "BLK_STS_NOSPC"
        case 4: return "BLK_STS_TRANSPORT"
        case 5: return "BLK_STS_TARGET"
        case 6: return "BLK_STS_RESV_CONFLICT"
        case 7: return "BLK_STS_MEDIUM"
        case 8: return "BLK_STS_PROTECTION"
        case 9: return "BLK_STS_RESOURCE"
        case 10: return "BLK_STS_IOERR"
        case 11: return "BLK_STS_DM_REQUEUE"
        case 12: return "BLK_STS_AGAIN"
        case 13: return "BLK_STS_DEV_RESOURCE"
        default: return nil
        }
    }
}
