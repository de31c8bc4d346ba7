/// Which clock a trace's timestamps come from. The log backend and SystemTap print wall-clock
/// time (gettimeofday); simpletrace records CLOCK_MONOTONIC nanoseconds.
public enum TraceClock: String, Sendable, Codable {
    case wall
    case monotonic
}

/// A point in time of a trace, in nanoseconds (since the Unix epoch for `.wall`).
/// Readers only make timestamps in `validNanoseconds` (0...Int64.max), so the difference of
/// two of them (an age, a latency) never overflows.
public struct TraceTimestamp: Sendable, Hashable, Comparable {
    public var nanoseconds: Int64
    public var clock: TraceClock

    public init(nanoseconds: Int64, clock: TraceClock) {
        self.nanoseconds = nanoseconds
        self.clock = clock
    }

    public var seconds: Double { Self.decimalSeconds(nanoseconds) }

    /// What a trace can stamp: from the epoch (or boot, for CLOCK_MONOTONIC) to April 2262.
    public static let validNanoseconds: ClosedRange<Int64> = 0...Int64.max

    /// `seconds * 1e9 + fraction` when it fits `validNanoseconds`, nil otherwise.
    static func nanoseconds(seconds: UInt64, fraction: Int64) -> Int64? {
        guard seconds <= UInt64(Int64.max), fraction >= 0, fraction < 1_000_000_000 else { return nil }
        let (whole, o1) = Int64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        let (ns, o2) = whole.addingReportingOverflow(fraction)
        return o1 || o2 ? nil : ns
    }

    /// Nanoseconds as the Double nearest to the exact decimal `S.NNNNNNNNN`, so that reports
    /// print `1795363562.458993`, not the `…4589930001` that `Double(ns) / 1e9` can give.
    public static func decimalSeconds(_ ns: Int64) -> Double {
        let m = ns.magnitude
        let frac = String(m % 1_000_000_000)
        let text = (ns < 0 ? "-" : "") + String(m / 1_000_000_000) + "."
            + String(repeating: "0", count: 9 - frac.count) + frac
        return Double(text) ?? Double(ns) / 1e9
    }

    public static func < (a: TraceTimestamp, b: TraceTimestamp) -> Bool { a.nanoseconds < b.nanoseconds }
}

/// A decoded argument value.
public enum TraceValue: Sendable, Hashable, CustomStringConvertible {
    case signed(Int64)
    case unsigned(UInt64)
    case pointer(UInt64)
    case string(String)

    public var description: String {
        switch self {
        case let .signed(v): return String(v)
        case let .unsigned(v): return String(v)
        case let .pointer(v): return "0x" + String(v, radix: 16)
        case let .string(s): return s
        }
    }

    /// The 64-bit pattern simpletrace would store (strings have none).
    public var bits: UInt64? {
        switch self {
        case let .signed(v): return UInt64(bitPattern: v)
        case let .unsigned(v), let .pointer(v): return v
        case .string: return nil
        }
    }
}

/// One trace event as any reader decodes it: the definition it matched, when, which thread or
/// process, and its arguments. Integer and pointer arguments live inline (no allocation);
/// strings, rare on the hot path, in a small array. Analyses resolve argument indices once
/// (`definition.argumentIndex("req")`) and then read values by index.
public struct TraceEvent {
    /// QEMU limits events to 10 arguments (tracetool: "more than maximum permitted argument count").
    public static let maxArguments = 10

    public let definition: TraceEventDefinition
    public var timestamp: TraceTimestamp?
    /// What QEMU printed or stored as the event's origin: the thread id for the log backend
    /// (`qemu_get_thread_id()`), the process id for simpletrace and SystemTap.
    public var thread: Int64?
    /// Each integer or pointer argument as a 64-bit pattern (signed values sign-extended), the
    /// way simpletrace stores them.
    public var bits: InlineArray<10, UInt64>
    /// String arguments as the bytes QEMU wrote, in argument order (`definition.stringSlots`).
    public var stringBytes: [[UInt8]]

    public init(definition: TraceEventDefinition, timestamp: TraceTimestamp? = nil, thread: Int64? = nil) {
        self.definition = definition
        self.timestamp = timestamp
        self.thread = thread
        self.bits = InlineArray(repeating: 0)
        self.stringBytes = []
    }

    public var name: String { definition.name }
    public var argumentCount: Int { definition.arguments.count }

    /// The argument at `index` as a signed integer (sign-extended from its C width).
    @inlinable public func signed(_ index: Int) -> Int64 { Int64(bitPattern: bits[index]) }
    /// The argument at `index` as an unsigned integer or pointer.
    @inlinable public func unsigned(_ index: Int) -> UInt64 { bits[index] }

    /// A string argument (invalid UTF-8 shown as U+FFFD), or nil when argument `index` is not a string.
    public func string(_ index: Int) -> String? {
        stringArgumentBytes(index).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A string argument's raw bytes, or nil when argument `index` is not a string.
    public func stringArgumentBytes(_ index: Int) -> [UInt8]? {
        let slot = definition.stringSlots[index]
        return slot >= 0 && slot < stringBytes.count ? stringBytes[slot] : nil
    }

    /// The argument at `index`, typed by its C declaration.
    public func value(_ index: Int) -> TraceValue {
        switch definition.arguments[index].kind {
        case .signed: return .signed(signed(index))
        case .unsigned: return .unsigned(unsigned(index))
        case .pointer: return .pointer(unsigned(index))
        case .string: return .string(string(index) ?? "")
        }
    }

    /// The argument called `name` (a linear scan of at most 10 names; no allocation).
    public func value(named name: String) -> TraceValue? {
        guard let i = definition.argumentIndex(name) else { return nil }
        return value(i)
    }

    /// Stores a scanned integer, normalised to its C type: sign-extended for signed types,
    /// truncated for unsigned ones — what `(uint64_t)arg` gives in QEMU's simple backend.
    @inlinable
    public mutating func setInteger(_ index: Int, bits raw: UInt64) {
        let argument = definition.arguments[index]
        let width = argument.bitWidth
        guard width < 64 else { bits[index] = raw; return }
        switch argument.kind {
        case .signed:
            let shift = UInt64(64 - width)
            bits[index] = UInt64(bitPattern: Int64(bitPattern: raw << shift) >> shift)
        case .unsigned:
            bits[index] = raw & ((1 << UInt64(width)) - 1)
        case .pointer, .string:
            bits[index] = raw
        }
    }
}
