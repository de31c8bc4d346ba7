/// kvmscope's own rule sections, beside blkdebug's `[inject-error]` and `[set-state]`. QEMU's
/// blkdebug refuses a file that has any of them ("There is no option group 'error-rate'"), so they
/// belong only in rules files for `kvmscope io` and `kvmscope nbd serve`. Each copies a fault
/// injector whose semantics are documented elsewhere (nbdkit's error, delay and evil filters,
/// dm-dust, null_blk, dm-flakey); docs/faults.md lists the keys.
public struct KvmscopeFaultSections: Hashable, Sendable, Codable {
    public var errorRates: [ErrorRateSection] = []
    public var delays: [DelaySection] = []
    public var stalls: [StallSection] = []
    public var badBlocks: [BadBlocksSection] = []
    public var bitFlips: [BitFlipSection] = []
    public var flakeys: [FlakeySection] = []
    public var rates: [RateSection] = []

    public init() {}

    /// Section names, as written in brackets.
    public static let names: [String] = ["error-rate", "delay", "stall", "bad-blocks", "bit-flips", "flakey", "rate"]

    public var isEmpty: Bool {
        errorRates.isEmpty && delays.isEmpty && stalls.isEmpty && badBlocks.isEmpty && bitFlips.isEmpty && flakeys.isEmpty && rates.isEmpty
    }

    public var count: Int {
        errorRates.count + delays.count + stalls.count + badBlocks.count + bitFlips.count + flakeys.count + rates.count
    }

    /// Every section's name and where it starts, in file order.
    public var locations: [(section: String, location: RuleLocation)] {
        entries.map { ($0.section, $0.location) }
    }

    /// Every section's name, where it starts and its `[name "id"]` id, in file order (by line;
    /// sections of the same line, from files added later, in the order they were added).
    public var entries: [(section: String, location: RuleLocation, id: String?)] {
        let all: [(section: String, location: RuleLocation, id: String?)] =
            errorRates.map { ("error-rate", $0.location, $0.id) } + delays.map { ("delay", $0.location, $0.id) }
            + stalls.map { ("stall", $0.location, $0.id) } + badBlocks.map { ("bad-blocks", $0.location, $0.id) }
            + bitFlips.map { ("bit-flips", $0.location, $0.id) } + flakeys.map { ("flakey", $0.location, $0.id) }
            + rates.map { ("rate", $0.location, $0.id) }
        return all.enumerated().sorted { ($0.element.location.line, $0.offset) < ($1.element.location.line, $1.offset) }.map(\.element)
    }
}

/// The operations a kvmscope section distinguishes, with nbdkit's names for them.
public enum FaultOperationKind: Int, Sendable, Codable, CaseIterable {
    case read, write, zero, trim, flush

    /// nbdkit's per-operation key stems: error-pread-rate, delay-write, ...
    public var key: String {
        switch self {
        case .read: return "read"
        case .write: return "write"
        case .zero: return "zero"
        case .trim: return "trim"
        case .flush: return "flush"
        }
    }

    /// nil for block status: kvmscope's own sections act on data requests only (blkdebug's
    /// block-status iotype is for block status queries).
    public init?(_ op: BlockOperation) {
        switch op {
        case .blockStatus: return nil
        case .read: self = .read
        case .write: self = .write
        case .writeZeroes: self = .zero
        case .discard: self = .trim
        case .flush: self = .flush
        }
    }

    /// Operations that change the disk (dm-flakey's "writes").
    public var isWrite: Bool { self == .write || self == .zero || self == .trim }
}

/// `[error-rate]`: nbdkit's error filter. Each request of an operation fails with its rate (from
/// a generator seeded with `seed`), and only while `file` exists when it is given.
public struct ErrorRateSection: Hashable, Sendable, Codable {
    /// Probability per operation (`FaultOperationKind.rawValue` index); 0 = never.
    public var rates: [Double]
    public var errno: Int32
    public var triggerFile: String?
    public var seed: UInt64
    public var location: RuleLocation
    public var id: String?

    public init(rates: [Double], errno: Int32 = 5, triggerFile: String? = nil, seed: UInt64 = 1,
                location: RuleLocation, id: String? = nil) {
        self.rates = rates; self.errno = errno; self.triggerFile = triggerFile; self.seed = seed
        self.location = location; self.id = id
    }
}

/// `[delay]`: nbdkit's delay filter (delay-read, delay-write, delay-zero, delay-trim, delay-flush).
public struct DelaySection: Hashable, Sendable, Codable {
    /// Nanoseconds per operation (`FaultOperationKind.rawValue` index).
    public var delays: [UInt64]
    public var location: RuleLocation
    public var id: String?

    public init(delays: [UInt64], location: RuleLocation, id: String? = nil) {
        self.delays = delays; self.location = location; self.id = id
    }
}

/// `[stall]`: a matching request is carried out but its reply is held back until `release-file`
/// no longer exists or `timeout` has passed (whichever comes first), to test guest timeouts.
public struct StallSection: Hashable, Sendable, Codable {
    /// Bit set of `1 << FaultOperationKind.rawValue`.
    public var operations: UInt8
    /// 512-byte sector the request must cover; nil = any request.
    public var sector: Int64?
    /// Let the first N matching requests through.
    public var after: Int
    /// Stall only one request (then the section is spent until the rules are reloaded).
    public var once: Bool
    public var releaseFile: String?
    public var timeoutNanoseconds: UInt64?
    public var location: RuleLocation
    public var id: String?

    public init(operations: UInt8, sector: Int64? = nil, after: Int = 0, once: Bool = false, releaseFile: String?,
                timeoutNanoseconds: UInt64?, location: RuleLocation, id: String? = nil) {
        self.operations = operations; self.sector = sector; self.after = after; self.once = once
        self.releaseFile = releaseFile; self.timeoutNanoseconds = timeoutNanoseconds
        self.location = location; self.id = id
    }
}

/// `[bad-blocks]`: unreadable sectors.
public struct BadBlocksSection: Hashable, Sendable, Codable {
    public enum Mode: String, Hashable, Sendable, Codable, CaseIterable {
        /// dm-dust: reads of a bad sector fail; a write that covers the whole sector succeeds and
        /// clears it, as a drive remaps a sector it is given new data for. A write covering only
        /// part of a bad sector fails (the drive would have to read the sector to merge it).
        case remapOnWrite = "remap-on-write"
        /// null_blk `badblocks_once`: the first read or write that touches a bad sector fails and
        /// clears it.
        case failOnce = "fail-once"
        /// null_blk `badblocks`: every read or write that touches a bad sector fails.
        case permanent
    }

    /// Disjoint, sorted, non-adjacent inclusive sector ranges.
    public var sectors: [ClosedRange<Int64>]
    public var mode: Mode
    public var errno: Int32
    public var location: RuleLocation
    public var id: String?

    public init(sectors: [ClosedRange<Int64>], mode: Mode = .remapOnWrite, errno: Int32 = 5,
                location: RuleLocation, id: String? = nil) {
        self.sectors = sectors; self.mode = mode; self.errno = errno; self.location = location; self.id = id
    }
}

/// `[bit-flips]`: nbdkit's evil filter, on reads only (the image keeps the correct data).
public struct BitFlipSection: Hashable, Sendable, Codable {
    public enum Mode: String, Hashable, Sendable, Codable, CaseIterable {
        /// Every bit read flips with `probability`, afresh on each read.
        case cosmicRays = "cosmic-rays"
        /// Fixed bits of the disk (a function of `seed` and the bit's position) are stuck high or
        /// low; each read of a stuck bit shows the stuck value with `stuckProbability`.
        case stuckBits = "stuck-bits"
    }

    public var mode: Mode
    public var probability: Double
    public var stuckProbability: Double
    public var seed: UInt64
    public var location: RuleLocation
    public var id: String?

    public init(mode: Mode = .stuckBits, probability: Double = 1e-8, stuckProbability: Double = 1, seed: UInt64 = 1,
                location: RuleLocation, id: String? = nil) {
        self.mode = mode; self.probability = probability; self.stuckProbability = stuckProbability
        self.seed = seed; self.location = location; self.id = id
    }
}

/// `[flakey]`: dm-flakey. The disk works for `up` seconds, then misbehaves for `down` seconds,
/// repeating, counted from when the rules were loaded.
public struct FlakeySection: Hashable, Sendable, Codable {
    public enum Mode: String, Hashable, Sendable, Codable, CaseIterable {
        /// dm-flakey without features: every request fails while down.
        case error
        /// dm-flakey `error_writes`: writes (write, zero, trim) fail while down, reads work.
        case errorWrites = "error-writes"
        /// dm-flakey `drop_writes`: writes are acknowledged and silently thrown away while down.
        /// Loses data by design; the rule must say `drop-writes = "yes-i-understand"`.
        case dropWrites = "drop-writes"
    }

    public var upSeconds: Double
    public var downSeconds: Double
    public var mode: Mode
    public var errno: Int32
    public var location: RuleLocation
    public var id: String?

    public init(upSeconds: Double, downSeconds: Double, mode: Mode = .error, errno: Int32 = 5,
                location: RuleLocation, id: String? = nil) {
        self.upSeconds = upSeconds; self.downSeconds = downSeconds; self.mode = mode; self.errno = errno
        self.location = location; self.id = id
    }

    /// The confirmation `drop-writes` mode needs, spelled out in the rule.
    public static let dropWritesConfirmation = "yes-i-understand"
}

/// `[rate]`: nbdkit's rate filter. `rate=BITSPERSEC` over all of the server's clients together:
/// the data of reads and writes goes through one pipe of that many bits per second, in the
/// order requests arrive; a reply is sent when its data has passed (a delay, scheduled).
/// `connection-rate=BITSPERSEC`: a pipe of its own for each connection (`ConnectionRatePipes`,
/// kept by the connection: the engine does not know connections). Either or both.
public struct RateSection: Hashable, Sendable, Codable {
    /// The overall pipe; 0 when the section has only `connection-rate`.
    public var bitsPerSecond: UInt64
    public var connectionBitsPerSecond: UInt64?
    public var location: RuleLocation
    public var id: String?

    public init(bitsPerSecond: UInt64, connectionBitsPerSecond: UInt64? = nil, location: RuleLocation, id: String? = nil) {
        self.bitsPerSecond = bitsPerSecond; self.connectionBitsPerSecond = connectionBitsPerSecond
        self.location = location; self.id = id
    }

    /// Whether `other`, from before a change of rules, is this section's overall pipe: the same
    /// section (where it starts) at the same overall speed. Its backlog then carries over, as
    /// its waiters keep their wait (`FaultInjectingBackend.owedDelay`); another speed starts empty.
    public func sharesOverallPipe(with other: RateSection) -> Bool {
        bitsPerSecond > 0 && bitsPerSecond == other.bitsPerSecond && location == other.location
    }
}
