/// Where a rule or a problem came from: `rules.cfg:7`.
public struct RuleLocation: Hashable, Sendable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public init(file: String, line: Int) { self.file = file; self.line = line }
    public var description: String { "\(file):\(line)" }
}

/// kvmscope-only rule keys (QEMU's blkdebug rejects them: "Invalid parameter").
public struct FaultExtensions: Hashable, Sendable, Codable {
    /// Each otherwise matching request fails with this probability (0...1), from a seeded generator.
    public var probability: Double?
    /// Delay before the request completes (with errno 0: slow but successful I/O).
    public var delayNanoseconds: UInt64?
    /// Let the first N matching requests through.
    public var after: Int?
    /// dm-flakey-style window: the rule injects only during the `down` seconds of each
    /// `up + down` cycle, counted from when the rules were loaded.
    public var upSeconds: Double?
    public var downSeconds: Double?

    public init(probability: Double? = nil, delayNanoseconds: UInt64? = nil, after: Int? = nil,
                upSeconds: Double? = nil, downSeconds: Double? = nil) {
        self.probability = probability
        self.delayNanoseconds = delayNanoseconds
        self.after = after
        self.upSeconds = upSeconds
        self.downSeconds = downSeconds
    }

    public var isEmpty: Bool {
        probability == nil && delayNanoseconds == nil && after == nil && upSeconds == nil && downSeconds == nil
    }
}

/// One `[inject-error]` section.
public struct InjectErrorRule: Hashable, Sendable, Codable {
    public var event: BlkdebugEvent
    /// 0 = any state.
    public var state: Int
    /// Bit set of `BlkdebugIOType.bit`; `iotype` absent = `BlkdebugIOType.defaultMask`.
    public var iotypeMask: UInt8
    /// Positive host errno; 0 = the rule matches but injects nothing (QEMU's semantics).
    public var errno: Int32
    /// 512-byte sector; nil = any offset.
    public var sector: Int64?
    public var once: Bool
    public var immediately: Bool
    public var extensions: FaultExtensions
    public var location: RuleLocation
    /// The `[inject-error "id"]` id, if any.
    public var id: String?

    public init(event: BlkdebugEvent, state: Int = 0, iotypeMask: UInt8 = BlkdebugIOType.defaultMask,
                errno: Int32 = 5, sector: Int64? = nil, once: Bool = false, immediately: Bool = false,
                extensions: FaultExtensions = FaultExtensions(), location: RuleLocation, id: String? = nil) {
        self.event = event
        self.state = state
        self.iotypeMask = iotypeMask
        self.errno = errno
        self.sector = sector
        self.once = once
        self.immediately = immediately
        self.extensions = extensions
        self.location = location
        self.id = id
    }

    /// Byte offset blkdebug compares against: `sector * 512`, wrapping as QEMU's does (it is
    /// built with -fwrapv; the reader warns when it wraps). Negative: beyond every request.
    public var byteOffset: Int64? { sector.map { $0 &* 512 } }
}

/// One `[set-state]` section.
public struct SetStateRule: Hashable, Sendable, Codable {
    public var event: BlkdebugEvent
    public var state: Int
    public var newState: Int
    public var location: RuleLocation
    public var id: String?

    public init(event: BlkdebugEvent, state: Int = 0, newState: Int = 0, location: RuleLocation, id: String? = nil) {
        self.event = event
        self.state = state
        self.newState = newState
        self.location = location
        self.id = id
    }
}

/// A whole blkdebug config file, rules in file order (which decides which rule wins).
public struct BlkdebugConfig: Hashable, Sendable, Codable {
    public var injectErrors: [InjectErrorRule]
    public var setStates: [SetStateRule]
    /// kvmscope-only sections ([error-rate], [delay], [stall], [bad-blocks], [bit-flips], [flakey]).
    public var kvmscope: KvmscopeFaultSections

    public init(injectErrors: [InjectErrorRule] = [], setStates: [SetStateRule] = [],
                kvmscope: KvmscopeFaultSections = KvmscopeFaultSections()) {
        self.injectErrors = injectErrors
        self.setStates = setStates
        self.kvmscope = kvmscope
    }

    public var isEmpty: Bool { injectErrors.isEmpty && setStates.isEmpty && kvmscope.isEmpty }
}

/// A problem found in a rules file.
public struct RuleDiagnostic: Hashable, Sendable, Codable {
    public enum Severity: String, Sendable, Codable, Comparable {
        /// QEMU refuses the file (and so does kvmscope).
        case error
        /// QEMU accepts it silently, but it does not do what it says.
        case warning
        /// Worth knowing (kvmscope-only keys, behaviour differences); not a mistake.
        case note

        private var rank: Int { self == .error ? 0 : self == .warning ? 1 : 2 }
        public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
    }

    public var severity: Severity
    /// Stable identifier for scripts, e.g. `unknown-event`, `unreachable-state`.
    public var code: String
    public var location: RuleLocation?
    public var message: String
    /// What to do about it, if there is something to say.
    public var hint: String?

    public init(_ severity: Severity, _ code: String, at location: RuleLocation?, _ message: String, hint: String? = nil) {
        self.severity = severity
        self.code = code
        self.location = location
        self.message = message
        self.hint = hint
    }
}
