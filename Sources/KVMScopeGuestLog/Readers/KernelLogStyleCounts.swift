/// Lines per KernelLogStyle, counted on every kernel line by the guest and host readers.
///
/// A fixed block of counters, not an `[Int]`: an array element bumped per line paid a
/// uniqueness check and a bounds check each time, which showed in profiles of the reader.
public struct KernelLogStyleCounts: Sendable {
    private var counts: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    public init() {}

    @inline(__always)
    public mutating func add(_ style: KernelLogStyle) {
        let offset = style.counterIndex &* MemoryLayout<Int>.stride
        withUnsafeMutableBytes(of: &counts) { raw in
            // A count of lines cannot overflow 64 bits.
            raw.storeBytes(of: raw.load(fromByteOffset: offset, as: Int.self) &+ 1, toByteOffset: offset, as: Int.self)
        }
    }

    public func count(_ style: KernelLogStyle) -> Int {
        withUnsafeBytes(of: counts) { $0.load(fromByteOffset: style.counterIndex &* MemoryLayout<Int>.stride, as: Int.self) }
    }

    /// The styles seen, with their counts (styles with none are left out).
    public var nonZero: [KernelLogStyle: Int] {
        var d: [KernelLogStyle: Int] = [:]
        for style in KernelLogStyle.allCases where count(style) > 0 { d[style] = count(style) }
        return d
    }
}

extension KernelLogStyle {
    /// 0..<13, one counter per style (the tuple above has one slot per case).
    @inline(__always)
    var counterIndex: Int {
        switch self {
        case .printk: return 0
        case .printkCaller: return 1
        case .dmesgWallClock: return 2
        case .dmesgISO: return 3
        case .kmsg: return 4
        case .journal: return 5
        case .syslog: return 6
        case .bare: return 7
        case .journalJSON: return 8
        case .journalExport: return 9
        case .dmesgDelta: return 10
        case .dmesgWallClockDelta: return 11
        case .dmesgRelTime: return 12
        }
    }
}
