/// QEMU's `BlkdebugEvent` enum (qapi/block-core.json), in QEMU's order: the points in the block
/// layer where blkdebug rules can be armed. Unchanged since QEMU 4.1 (`cluster_alloc_space`, `none`).
public enum BlkdebugEvent: String, CaseIterable, Sendable, Codable, Hashable {
    case l1Update = "l1_update"
    case l1GrowAllocTable = "l1_grow_alloc_table"
    case l1GrowWriteTable = "l1_grow_write_table"
    case l1GrowActivateTable = "l1_grow_activate_table"
    case l2Load = "l2_load"
    case l2Update = "l2_update"
    case l2UpdateCompressed = "l2_update_compressed"
    case l2AllocCowRead = "l2_alloc_cow_read"
    case l2AllocWrite = "l2_alloc_write"
    case readAIO = "read_aio"
    case readBackingAIO = "read_backing_aio"
    case readCompressed = "read_compressed"
    case writeAIO = "write_aio"
    case writeCompressed = "write_compressed"
    case vmstateLoad = "vmstate_load"
    case vmstateSave = "vmstate_save"
    case cowRead = "cow_read"
    case cowWrite = "cow_write"
    case reftableLoad = "reftable_load"
    case reftableGrow = "reftable_grow"
    case reftableUpdate = "reftable_update"
    case refblockLoad = "refblock_load"
    case refblockUpdate = "refblock_update"
    case refblockUpdatePart = "refblock_update_part"
    case refblockAlloc = "refblock_alloc"
    case refblockAllocHookup = "refblock_alloc_hookup"
    case refblockAllocWrite = "refblock_alloc_write"
    case refblockAllocWriteBlocks = "refblock_alloc_write_blocks"
    case refblockAllocWriteTable = "refblock_alloc_write_table"
    case refblockAllocSwitchTable = "refblock_alloc_switch_table"
    case clusterAlloc = "cluster_alloc"
    case clusterAllocBytes = "cluster_alloc_bytes"
    case clusterFree = "cluster_free"
    case flushToOS = "flush_to_os"
    case flushToDisk = "flush_to_disk"
    case pwritevRMWHead = "pwritev_rmw_head"
    case pwritevRMWAfterHead = "pwritev_rmw_after_head"
    case pwritevRMWTail = "pwritev_rmw_tail"
    case pwritevRMWAfterTail = "pwritev_rmw_after_tail"
    case pwritev = "pwritev"
    case pwritevZero = "pwritev_zero"
    case pwritevDone = "pwritev_done"
    case emptyImagePrepare = "empty_image_prepare"
    case l1ShrinkWriteTable = "l1_shrink_write_table"
    case l1ShrinkFreeL2Clusters = "l1_shrink_free_l2_clusters"
    case corWrite = "cor_write"
    case clusterAllocSpace = "cluster_alloc_space"
    case none = "none"

    /// Who emits the event in QEMU, which decides whether kvmscope (a raw image, no format
    /// driver) can ever fire it.
    public enum Source: String, Sendable, Codable {
        /// blkdebug itself, once when the node is opened.
        case open
        /// The raw (and qcow2) format driver, for every guest read/write passed down.
        case formatDataPath = "format-data-path"
        /// The generic block layer (block/io.c), whatever the format.
        case blockLayer = "block-layer"
        /// block/io.c read-modify-write of unaligned writes: only with blkdebug's `align` option.
        case unalignedWrite = "unaligned-write"
        /// Copy-on-read from a backing file (block/io.c), only with copy-on-read enabled.
        case copyOnRead = "copy-on-read"
        /// qcow2 (some also qcow, qed, vmdk) metadata and cluster handling.
        case imageFormat = "image-format"
    }

    public var source: Source {
        switch self {
        case .none: return .open
        case .readAIO, .writeAIO: return .formatDataPath
        case .flushToOS, .flushToDisk, .pwritev, .pwritevZero, .pwritevDone: return .blockLayer
        case .pwritevRMWHead, .pwritevRMWAfterHead, .pwritevRMWTail, .pwritevRMWAfterTail: return .unalignedWrite
        case .corWrite: return .copyOnRead
        default: return .imageFormat
        }
    }

    /// Whether kvmscope's raw-image path (`kvmscope io`, `kvmscope nbd serve`) emits this event.
    public var firesOnRawImage: Bool {
        switch source {
        case .open, .formatDataPath, .blockLayer: return true
        case .unalignedWrite, .copyOnRead, .imageFormat: return false
        }
    }

    /// Why the event never fires on kvmscope's raw-image path, for error messages.
    public var whyNotOnRawImage: String? {
        switch source {
        case .open, .formatDataPath, .blockLayer: return nil
        case .unalignedWrite:
            return "it fires only for read-modify-write of unaligned writes (blkdebug's align option); kvmscope writes any byte range directly"
        case .copyOnRead:
            return "it fires only for copy-on-read from a backing file, which a raw image has not"
        case .imageFormat:
            return "it is emitted by QEMU's qcow2 driver (image metadata); kvmscope serves raw images, so use QEMU's own qcow2 driver with blkdebug for it"
        }
    }

    /// Accepts today's names and recognises the old dotted ones (`l1_grow.alloc_table`),
    /// which current QEMU rejects.
    public static func lookup(_ name: String) -> Lookup {
        if let e = BlkdebugEvent(rawValue: name) { return .found(e) }
        if name.contains("."), let e = BlkdebugEvent(rawValue: name.replacingOccurrences(of: ".", with: "_")) {
            return .legacyDotted(e)
        }
        let lowered = name.lowercased().replacingOccurrences(of: "-", with: "_")
        if lowered != name, let e = BlkdebugEvent(rawValue: lowered) { return .misspelled(suggestion: e) }
        let best = allCases.min { editDistance($0.rawValue, name) < editDistance($1.rawValue, name) }
        if let best, editDistance(best.rawValue, name) <= max(2, name.count / 4) { return .misspelled(suggestion: best) }
        return .unknown
    }

    public enum Lookup: Equatable {
        case found(BlkdebugEvent)
        case legacyDotted(BlkdebugEvent)
        case misspelled(suggestion: BlkdebugEvent)
        case unknown
    }
}

/// Levenshtein distance for "did you mean" hints on short names.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8), b = Array(b.utf8)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var prev = Array(0...b.count), cur = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        cur[0] = i
        for j in 1...b.count {
            cur[j] = Swift.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&prev, &cur)
    }
    return prev[b.count]
}

/// QEMU's `BlkdebugIOType`: which kind of request an `inject-error` rule fails.
public enum BlkdebugIOType: String, CaseIterable, Sendable, Codable, Hashable {
    case read, write
    case writeZeroes = "write-zeroes"
    case discard, flush
    case blockStatus = "block-status"

    public var bit: UInt8 {
        switch self {
        case .read: return 1 << 0
        case .write: return 1 << 1
        case .writeZeroes: return 1 << 2
        case .discard: return 1 << 3
        case .flush: return 1 << 4
        case .blockStatus: return 1 << 5
        }
    }

    /// blkdebug's default when `iotype` is absent: everything except block-status.
    public static let defaultMask: UInt8 = read.bit | write.bit | writeZeroes.bit | discard.bit | flush.bit

    public static func names(in mask: UInt8) -> [String] {
        allCases.filter { mask & $0.bit != 0 }.map(\.rawValue)
    }
}
