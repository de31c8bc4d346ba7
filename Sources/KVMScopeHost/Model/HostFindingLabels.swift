/// The words `kvmscope host` prints for a kind in its text report. The JSON keeps the
/// camelCase names (`HostFindingKind.rawValue`, the contract in docs/json.md).
extension HostFindingKind {
    public var label: String {
        switch self {
        case .blockError: return "block I/O error"
        case .bufferIOError: return "buffer I/O error"
        case .scsiResult: return "SCSI command failed"
        case .scsiSense: return "SCSI sense"
        case .scsiOffline: return "SCSI device offline"
        case .nvmeCommandError: return "NVMe command error"
        case .nvmeTimeout: return "NVMe command timeout"
        case .nvmeReset: return "NVMe controller reset"
        case .ataError: return "ATA error"
        case .ataLinkReset: return "ATA link reset"
        case .multipathFailingPath: return "multipath path failed"
        case .multipathNoPaths: return "multipath map without paths"
        case .multipathQueueTimeout: return "multipath queue timeout"
        case .thinPoolOutOfSpace: return "thin pool out of space"
        case .dmCryptError: return "dm-crypt error"
        case .mdMemberFailed: return "md member failed"
        case .iscsiConnectionError: return "iSCSI connection error"
        case .iscsiSessionRecoveryTimeout: return "iSCSI session recovery timeout"
        case .nfsNotResponding: return "NFS server not responding"
        case .nfsRecovered: return "NFS server OK again"
        case .cephSocketError: return "Ceph socket error"
        case .filesystemError: return "filesystem error"
        case .filesystemReadOnly: return "filesystem read-only"
        case .filesystemShutdown: return "filesystem shut down"
        case .filesystemFull: return "filesystem full"
        case .hungTask: return "hung task"
        case .oomKill: return "OOM kill"
        }
    }
}

extension HostNoiseKind {
    public var label: String {
        switch self {
        case .capacityChange: return "capacity change"
        case .unsupportedOptionalOperation: return "optional operation not supported"
        case .filesystemMounted: return "filesystem mounted"
        }
    }
}
