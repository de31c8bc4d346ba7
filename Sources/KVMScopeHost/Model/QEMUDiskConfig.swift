/// What a QEMU command line says about one guest disk: how the guest sees it, what serves it,
/// and what QEMU does on an error. Options as QEMU 7.2 documents them (qemu-options.hx: -drive,
/// -blockdev, -device; blockdev.c for the -drive werror/rerror defaults).
public struct QEMUDiskConfig: Sendable, Equatable, Encodable {
    /// `-drive id=` or `-blockdev node-name=`: what QMP's BLOCK_IO_ERROR calls `device`/`node-name`.
    public var id: String?
    public var nodeName: String?
    /// The guest-visible device model (`virtio-blk-pci`, `scsi-hd`, `ide-hd`, `nvme`, …) when a
    /// `-device` names this drive, or `if=virtio` for an old-style -drive.
    public var device: String?
    /// The storage: `file`, `qcow2`, `raw`, `nbd`, `rbd`, `iscsi`, `blkdebug`, … (outermost first).
    public var drivers: [String]
    /// The image file or URL.
    public var file: String?
    /// NBD/iSCSI/Ceph server, when the options name one (`127.0.0.1:37973`, a unix socket path).
    public var server: String?
    public var export: String?
    public var cache: String?
    public var aio: String?
    /// The error policies as written; nil when the command line leaves the default
    /// (werror=enospc, rerror=report: blockdev.c).
    public var werror: String?
    public var rerror: String?

    public init(id: String? = nil, nodeName: String? = nil, device: String? = nil, drivers: [String] = [], file: String? = nil,
                server: String? = nil, export: String? = nil, cache: String? = nil, aio: String? = nil,
                werror: String? = nil, rerror: String? = nil) {
        self.id = id; self.nodeName = nodeName; self.device = device; self.drivers = drivers; self.file = file
        self.server = server; self.export = export; self.cache = cache; self.aio = aio; self.werror = werror; self.rerror = rerror
    }

    enum CodingKeys: String, CodingKey { case id, nodeName, device, drivers, file, server, export, cache, aio, werror, rerror }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id); try c.encode(nodeName, forKey: .nodeName); try c.encode(device, forKey: .device)
        try c.encode(drivers, forKey: .drivers); try c.encode(file, forKey: .file); try c.encode(server, forKey: .server)
        try c.encode(export, forKey: .export); try c.encode(cache, forKey: .cache); try c.encode(aio, forKey: .aio)
        try c.encode(werror, forKey: .werror); try c.encode(rerror, forKey: .rerror)
    }

    /// The policy in effect for writes (`werror`) or reads (`rerror`): as written, else QEMU's default.
    public func policy(read: Bool) -> (value: String, isDefault: Bool) {
        if read { return rerror.map { ($0, false) } ?? ("report", true) }
        return werror.map { ($0, false) } ?? ("enospc", true)
    }

    /// Names the drive is known by (QMP reports `device` = the -drive id, or the qdev id /
    /// node name with -blockdev).
    public var names: [String] { [id, nodeName].compactMap { $0 } }
}
