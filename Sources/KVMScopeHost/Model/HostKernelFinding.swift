import KVMScopeGuestLog

/// What a host kernel message says went wrong (or came back) below QEMU. Each case names the
/// kernel source file whose format it is read from (Linux 6.1 unless said otherwise).
public enum HostFindingKind: String, CaseIterable, Sendable, Codable {
    /// A block request failed: `%s error, dev %s, sector %llu op 0x%x:(%s) ...` and the older
    /// `blk_update_request:` / `end_request:` shapes (block/blk-core.c blk_print_req_error).
    case blockError
    /// `Buffer I/O error on dev %pg, logical block %llu, lost async page write` (fs/buffer.c).
    case bufferIOError
    /// `sd H:C:T:L: [sdX] tag#N FAILED Result: hostbyte=%s driverbyte=%s` (drivers/scsi/scsi_logging.c).
    case scsiResult
    /// `[sdX] tag#N Sense Key : %s` / `Add. Sense: %s` (drivers/scsi/scsi_logging.c).
    case scsiSense
    /// `rejecting I/O to offline device` (drivers/scsi/scsi_lib.c scsi_device_state_check).
    case scsiOffline
    /// `%s: %s(0x%x) @ LBA %llu, %llu blocks, %s (sct 0x%x / sc 0x%x) %s%s` (drivers/nvme/host/core.c nvme_log_error).
    case nvmeCommandError
    /// `I/O %d QID %d timeout, aborting` (drivers/nvme/host/pci.c nvme_timeout).
    case nvmeTimeout
    /// `I/O %d QID %d timeout, reset controller`, `controller is down; will reset: CSTS=0x%x, PCI_STATUS=0x%hx`,
    /// `Removing after probe failure status: %d` (drivers/nvme/host/pci.c).
    case nvmeReset
    /// `ata%u.%02u: exception Emask 0x%x ...`, `failed command: %s`, `error: { ... }` (drivers/ata/libata-eh.c).
    case ataError
    /// `ata%u: hard resetting link` / `soft resetting link` (drivers/ata/libata-eh.c ata_eh_reset).
    case ataLinkReset
    /// `device-mapper: multipath: %s: Failing path %s.` (drivers/md/dm-mpath.c fail_path).
    case multipathFailingPath
    /// multipathd's `%s: remaining active paths: 0` (user space, multipathd/main.c; found in syslog/journal files).
    case multipathNoPaths
    /// `device-mapper: multipath: queue_if_no_path timeout on %s, failing queued IO` (drivers/md/dm-mpath.c).
    case multipathQueueTimeout
    /// `device-mapper: thin: %s: switching pool to out-of-data-space (queue IO|error IO) mode`
    /// (drivers/md/dm-thin.c notify_of_pool_mode_change).
    case thinPoolOutOfSpace
    /// `device-mapper: crypt: ...` errors (drivers/md/dm-crypt.c).
    case dmCryptError
    /// `md/raid1:%s: Disk failure on %pg, disabling device.` (drivers/md/raid1.c; raid10.c, raid5.c alike).
    case mdMemberFailed
    /// ` connection%d:%d: detected conn error (%d)` (drivers/scsi/scsi_transport_iscsi.c iscsi_conn_error_event, through iscsi_cls_conn_printk).
    case iscsiConnectionError
    /// ` session%d: session recovery timed out after %d secs` (drivers/scsi/scsi_transport_iscsi.c).
    case iscsiSessionRecoveryTimeout
    /// `%s: server %s not responding, still trying` / `, timed out` (net/sunrpc/clnt.c call_timeout).
    case nfsNotResponding
    /// `%s: server %s OK` (net/sunrpc/clnt.c call_decode): the server answers again.
    case nfsRecovered
    /// `libceph: %s%lld %s %s` with con->error_msg (`socket closed`, `socket error on write`, ...)
    /// (net/ceph/messenger.c con_fault), `session lost, hunting for new mon` (net/ceph/mon_client.c).
    case cephSocketError
    /// EXT4-fs / XFS / BTRFS errors, journal aborts, I/O errors on metadata.
    case filesystemError
    /// A host filesystem went read-only (ext4 `Remounting filesystem read-only`, btrfs `forced readonly`).
    case filesystemReadOnly
    /// XFS shut down (fs/xfs/xfs_fsops.c xfs_do_force_shutdown).
    case filesystemShutdown
    /// A filesystem says it is out of space (ext4 `Delayed block allocation failed ... with error 28`,
    /// btrfs `errno=-28 No space left`).
    case filesystemFull
    /// `INFO: task %s:%d blocked for more than %ld seconds.` (kernel/hung_task.c check_hung_task).
    case hungTask
    /// `Out of memory: Killed process %d (%s) ...`, `Memory cgroup out of memory: Killed process ...`
    /// (mm/oom_kill.c __oom_kill_process).
    case oomKill

    /// Position in `allCases`, for counters kept in arrays (a dictionary hash per finding was a
    /// measurable share of the time on logs where every line is a failure).
    @inline(__always)
    public var ordinal: Int {
        switch self {
        case .blockError: return 0
        case .bufferIOError: return 1
        case .scsiResult: return 2
        case .scsiSense: return 3
        case .scsiOffline: return 4
        case .nvmeCommandError: return 5
        case .nvmeTimeout: return 6
        case .nvmeReset: return 7
        case .ataError: return 8
        case .ataLinkReset: return 9
        case .multipathFailingPath: return 10
        case .multipathNoPaths: return 11
        case .multipathQueueTimeout: return 12
        case .thinPoolOutOfSpace: return 13
        case .dmCryptError: return 14
        case .mdMemberFailed: return 15
        case .iscsiConnectionError: return 16
        case .iscsiSessionRecoveryTimeout: return 17
        case .nfsNotResponding: return 18
        case .nfsRecovered: return 19
        case .cephSocketError: return 20
        case .filesystemError: return 21
        case .filesystemReadOnly: return 22
        case .filesystemShutdown: return 23
        case .filesystemFull: return 24
        case .hungTask: return 25
        case .oomKill: return 26
        }
    }

    /// A finding that says a failure stopped (not a failure itself).
    public var isRecovery: Bool { self == .nfsRecovered }
}

/// Host kernel lines that are not failures, counted so the reader can say they were seen.
public enum HostNoiseKind: String, CaseIterable, Sendable, Codable {
    /// `%s: detected capacity change from %lld to %lld` (block/genhd.c set_capacity_and_notify):
    /// a loop device attached, a disk resized.
    case capacityChange
    /// `operation not supported error, dev %s, ... op 0x3:(DISCARD)` / `WRITE_ZEROES` / `SECURE_ERASE` /
    /// zone operations: mkfs and fstrim try them on devices that lack them, then fall back.
    case unsupportedOptionalOperation
    /// A filesystem mounted or unmounted (`EXT4-fs (%s): mounted filesystem ...`, `XFS (%s): Mounting ...`).
    case filesystemMounted
}

/// Where a finding was read: a kernel message, or a `block:block_rq_error` tracepoint record
/// (BlockRequestErrorTracepoint: every failed request, where the message is rate-limited).
public enum HostFindingSource: String, Sendable, Codable {
    case kernelLog = "kernel-log"
    case blockTracepoint = "block-rq-error-tracepoint"
}

/// One host kernel message that matters below QEMU.
public struct HostKernelFinding: Equatable, Sendable {
    public var kind: HostFindingKind
    public var source: HostFindingSource = .kernelLog
    /// The host device or object the kernel named: `loop0`, `sdb`, `nvme0n1`, `nvme0` (controller),
    /// `dm-3` or `253:3` (device-mapper), `md0`, `ata1.00`, `connection1:0`, `session1`; nil when none.
    public var device: String?
    /// The other end, for network storage: the NFS server, the Ceph peer and address.
    public var peer: String?
    /// 512-byte sector on `device` (block layer, XFS daddr) or the NVMe LBA (`lba` says which).
    public var sector: UInt64?
    /// True when `sector` is an NVMe LBA in the namespace's own block size.
    public var sectorIsLBA: Bool = false
    /// The operation as the kernel named it: `WRITE`, `READ`, `FLUSH`, NVMe `Write`, ATA `WRITE FPDMA QUEUED`.
    public var operation: String?
    /// The request flags the block layer printed (`flags 0x8800`: REQ_SYNC | REQ_IDLE), when it did.
    public var flags: UInt32?
    /// The status words the kernel printed: blk_errors name (`I/O`), NVMe status, SCSI hostbyte, ATA Emask.
    public var status: String?
    /// The errno the failure means, when the line says (`EIO` for `I/O error`, `ENOSPC` for errno=-28).
    public var errno: String?
    /// Hung tasks and OOM kills: the task's comm and pid.
    public var process: String?
    public var pid: Int?
    /// The process is QEMU (`qemu-system-*`, `qemu-kvm`, or a QEMU vCPU thread `CPU N/KVM`).
    public var isQEMU: Bool = false
    /// The SCSI command's `tag#N`, when the line prints it (ties a command's Result and Sense lines).
    public var tag: Int?
    /// The line of the first message of the failure this message is part of, when it is not
    /// that first message (HostFailureGrouping: a SCSI command's Result, Sense and `I/O error`
    /// lines are one failed request); nil for a failure's first message.
    public var partOfLine: Int?
    /// When, as the line says: uptime, wall clock or both.
    public var time: GuestLogTime
    /// 1-based line number in the input (in the tracepoint recording's, for `.blockTracepoint`).
    public var line: Int
    /// The kernel message, after the time stamp ("" when the sink did not want it, see
    /// HostKernelEventSink.wantsMessages).
    public var message: String

    public init(kind: HostFindingKind, device: String?, time: GuestLogTime, line: Int, message: String) {
        self.kind = kind; self.device = device; self.time = time; self.line = line; self.message = message
    }
}

/// What the reader hands its sink.
public enum HostKernelEvent: Equatable, Sendable {
    case finding(HostKernelFinding)
    /// A line that is not a failure (`device` when the line names one).
    case noise(HostNoiseKind, device: String?, line: Int)
}
