import Foundation

/// The kinds of request a block device answers (NBD commands, qemu-io commands).
public enum BlockOperation: String, Sendable, Codable {
    case read, write
    case writeZeroes = "write-zeroes"
    case discard, flush
    /// An allocation query (NBD_CMD_BLOCK_STATUS; blkdebug's `block-status` iotype).
    case blockStatus = "block-status"

    public var iotype: BlkdebugIOType {
        switch self {
        case .read: return .read
        case .write: return .write
        case .writeZeroes: return .writeZeroes
        case .discard: return .discard
        case .flush: return .flush
        case .blockStatus: return .blockStatus
        }
    }
}

/// A fault a rule injected into one request, for logs.
public struct InjectedFault: Sendable {
    public var rule: InjectErrorRule
    public var ruleIndex: Int
    public var operation: BlockOperation
    public var offset: Int64
    public var length: Int64
    /// Host errno the rule asked for (0 with a delay: slow success).
    public var errno: Int32
    public var delayNanoseconds: UInt64
    /// Which kind of rule injected it (blkdebug's [inject-error] or a kvmscope section).
    public var kind: FaultKind = .injectError
    /// What it did to the request.
    public var effect: FaultEffect = .error
    /// Bits a [bit-flips] section changed in the data read (0 otherwise).
    public var bitsFlipped: Int = 0
    /// A [rate] section's `connection-rate`: the request's bytes go through the connection's own
    /// pipe of this many bits per second, which the connection applies (`ConnectionRatePipes`)
    /// before it waits or logs; 0 for every other fault.
    public var connectionBitsPerSecond: UInt64 = 0
    /// A [rate] section's overall `rate`, that the wait was measured at (0 for other faults): a
    /// change of rules lets the wait go unless the section still has that rate.
    public var bitsPerSecond: UInt64 = 0
}

/// The section a fault came from.
public enum FaultKind: String, Sendable, Codable {
    case injectError = "inject-error"
    case errorRate = "error-rate"
    case delay, stall
    case badBlocks = "bad-blocks"
    case bitFlips = "bit-flips"
    case flakey, rate
}

public enum FaultEffect: String, Sendable, Codable {
    /// The request failed with `errno`.
    case error
    /// It succeeded, `delayNanoseconds` late.
    case delay
    /// Its reply was held back until a release file went away or a timeout passed.
    case stall
    /// A write was acknowledged and not made (flakey drop-writes).
    case dropWrite = "drop-write"
    /// Data read came back with bits flipped.
    case bitFlips = "bit-flips"
}

/// How a request ended: errno 0 = success. `delayNanoseconds` is how long the caller must wait
/// before completing it (the server schedules the reply, `kvmscope io` sleeps).
public struct BlockCompletion: Sendable {
    public var errno: Int32
    public var delayNanoseconds: UInt64
    public var faults: [InjectedFault]
    /// Answer only once this releases ([stall]); nil: answer after `delayNanoseconds`.
    public var stall: FaultStall?

    public init(errno: Int32 = 0, delayNanoseconds: UInt64 = 0, faults: [InjectedFault] = [], stall: FaultStall? = nil) {
        self.errno = errno
        self.delayNanoseconds = delayNanoseconds
        self.faults = faults
        self.stall = stall
    }

    public static let ok = BlockCompletion()
    public var succeeded: Bool { errno == 0 }
}

/// A disk as the NBD server and `kvmscope io` see it. Calls are synchronous (page-cache I/O on a
/// local file) and thread-safe; offsets and lengths are checked by the caller against `size`.
public protocol BlockBackend: AnyObject, Sendable {
    var size: Int64 { get }
    var isReadOnly: Bool { get }
    /// What the NBD server may announce for it (default: everything, page-cache calls).
    var capabilities: DiskCapabilities { get }
    func read(offset: Int64, into buffer: UnsafeMutableRawBufferPointer) -> BlockCompletion
    func write(offset: Int64, from buffer: UnsafeRawBufferPointer, fua: Bool) -> BlockCompletion
    func writeZeroes(offset: Int64, length: Int64, mayUnmap: Bool, fua: Bool) -> BlockCompletion
    /// qemu-io's `write -z -n` (BDRV_REQ_NO_FALLBACK): zeroes only if the disk can do it
    /// itself; ENOTSUP instead of writing a buffer of zeroes (block/io.c bdrv_co_do_pwrite_zeroes).
    func writeZeroes(offset: Int64, length: Int64, mayUnmap: Bool, fua: Bool, noFallback: Bool) -> BlockCompletion
    func discard(offset: Int64, length: Int64) -> BlockCompletion
    func flush() -> BlockCompletion
    /// The allocation of `offset ..< offset+length`, as runs in order from `offset` (NBD's
    /// `base:allocation` context, proto.md "Metadata querying"). The runs may stop short of
    /// `length` (a client asks again from where they end) but never go past it, and there is at
    /// least one when the request succeeds.
    func blockStatus(offset: Int64, length: Int64) -> BlockStatusResult
    /// qemu-io's `truncate`: nil when done, else QEMU's message for why not.
    func resize(to size: Int64, preallocation: Preallocation) -> String?
    /// For a reply still held back when the rules changed: how much of `fault`'s wait the rules
    /// in force now ask for (default: all of it).
    func owedDelay(_ fault: InjectedFault) -> UInt64
    /// For a reply held by a [stall] when the rules changed: whether the rules in force still
    /// have that section (default: yes).
    func holdsStall(_ stall: FaultStall) -> Bool
}

extension BlockBackend {
    public func owedDelay(_ fault: InjectedFault) -> UInt64 { fault.delayNanoseconds }
    public func holdsStall(_ stall: FaultStall) -> Bool { true }
}

/// One run of a disk's allocation map. The flags are NBD's `base:allocation` bits: a hole has
/// no storage behind it (NBD_STATE_HOLE), a zero run reads as zeroes (NBD_STATE_ZERO). A run
/// with neither is data: "may be allocated, read it to know", the only answer that is always true.
public struct BlockExtent: Sendable, Equatable {
    public var length: Int64
    public var isHole: Bool
    public var readsAsZeroes: Bool

    public init(length: Int64, isHole: Bool = false, readsAsZeroes: Bool = false) {
        self.length = length
        self.isHole = isHole
        self.readsAsZeroes = readsAsZeroes
    }

    /// NBD_STATE_HOLE (1) | NBD_STATE_ZERO (2).
    public var nbdFlags: UInt32 { (isHole ? 1 : 0) | (readsAsZeroes ? 2 : 0) }
}

public struct BlockStatusResult: Sendable {
    public var completion: BlockCompletion
    public var extents: [BlockExtent]

    public init(completion: BlockCompletion = .ok, extents: [BlockExtent]) {
        self.completion = completion
        self.extents = extents
    }
}

extension BlockBackend {
    /// A backend that does not say otherwise cannot promise a write-zeroes without a fallback.
    public func writeZeroes(offset: Int64, length: Int64, mayUnmap: Bool, fua: Bool, noFallback: Bool) -> BlockCompletion {
        noFallback ? BlockCompletion(errno: ENOTSUP) : writeZeroes(offset: offset, length: length, mayUnmap: mayUnmap, fua: fua)
    }

    /// A backend that cannot see its allocation says "data" for the whole range: never a hole it
    /// does not know of (a client would skip copying it).
    public func blockStatus(offset: Int64, length: Int64) -> BlockStatusResult {
        BlockStatusResult(extents: [BlockExtent(length: length)])
    }

    public func resize(to size: Int64, preallocation: Preallocation) -> String? { "Cannot resize this disk" }
}
