import Foundation

/// The kinds of request a block device answers (NBD commands, qemu-io commands).
public enum BlockOperation: String, Sendable, Codable {
    case read, write
    case writeZeroes = "write-zeroes"
    case discard, flush

    public var iotype: BlkdebugIOType {
        switch self {
        case .read: return .read
        case .write: return .write
        case .writeZeroes: return .writeZeroes
        case .discard: return .discard
        case .flush: return .flush
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
}

/// How a request ended: errno 0 = success. `delayNanoseconds` is how long the caller must wait
/// before completing it (the server schedules the reply, `kvmscope io` sleeps).
public struct BlockCompletion: Sendable {
    public var errno: Int32
    public var delayNanoseconds: UInt64
    public var faults: [InjectedFault]

    public init(errno: Int32 = 0, delayNanoseconds: UInt64 = 0, faults: [InjectedFault] = []) {
        self.errno = errno
        self.delayNanoseconds = delayNanoseconds
        self.faults = faults
    }

    public static let ok = BlockCompletion()
    public var succeeded: Bool { errno == 0 }
}

/// A disk as the NBD server and `kvmscope io` see it. Calls are synchronous (page-cache I/O on a
/// local file) and thread-safe; offsets and lengths are checked by the caller against `size`.
public protocol BlockBackend: AnyObject, Sendable {
    var size: Int64 { get }
    var isReadOnly: Bool { get }
    func read(offset: Int64, into buffer: UnsafeMutableRawBufferPointer) -> BlockCompletion
    func write(offset: Int64, from buffer: UnsafeRawBufferPointer, fua: Bool) -> BlockCompletion
    func writeZeroes(offset: Int64, length: Int64, mayUnmap: Bool, fua: Bool) -> BlockCompletion
    func discard(offset: Int64, length: Int64) -> BlockCompletion
    func flush() -> BlockCompletion
}
