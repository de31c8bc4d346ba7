/// Counts of latencies per (time bucket × log2 latency bucket) in fixed memory. The time span
/// of a stream is unknown until it ends, so the buckets start narrow and, whenever a sample
/// falls past the last column, the width doubles and neighbouring columns merge: the grid never
/// grows, and no sample is lost or counted twice.
public struct LatencyHeatmap: Sendable {
    /// Row r holds latencies in [2^r, 2^(r+1)) ns (row 0 also holds 0): 1 ns ... 2^48 ns (78 h).
    public static let rows = 48
    public let columnCapacity: Int
    public private(set) var startNs: UInt64?
    public private(set) var bucketWidthNs: UInt64
    /// Columns that received samples so far: 0 ..< usedColumns.
    public private(set) var usedColumns = 0
    public private(set) var total: UInt64 = 0
    /// counts[column * rows + row]
    public private(set) var counts: [UInt32]

    /// - Parameters:
    ///   - initialWidthNs: the first bucket width (`--interval`, or 1 ms); it only ever doubles.
    ///   - columnCapacity: fixed number of columns kept (memory = capacity × 48 × 4 bytes).
    ///   - startNs: time of column 0 (default: the first sample's), to align several heatmaps.
    public init(initialWidthNs: UInt64 = 1_000_000, columnCapacity: Int = 1024, startNs: UInt64? = nil) {
        self.startNs = startNs
        self.bucketWidthNs = max(1, initialWidthNs)
        self.columnCapacity = max(2, columnCapacity)
        counts = [UInt32](repeating: 0, count: self.columnCapacity * Self.rows)
    }

    @inline(__always)
    public static func row(forLatency ns: UInt64) -> Int {
        ns <= 1 ? 0 : min(rows - 1, 63 - ns.leadingZeroBitCount)
    }

    /// Adds one latency observed at `timeNs` (the exit's timestamp).
    @inline(__always)
    public mutating func add(timeNs: UInt64, latencyNs: UInt64) {
        let start: UInt64
        if let s = startNs { start = s } else { startNs = timeNs; start = timeNs }
        var column = timeNs > start ? Int((timeNs - start) / bucketWidthNs) : 0
        while column >= columnCapacity {
            widen()
            column = Int((timeNs - start) / bucketWidthNs)
        }
        if column >= usedColumns { usedColumns = column + 1 }
        let i = column * Self.rows + Self.row(forLatency: latencyNs)
        counts[i] &+= 1
        total += 1
    }

    /// Doubles the bucket width, merging columns pairwise.
    mutating func widen() {
        bucketWidthNs *= 2
        let half = columnCapacity / 2
        for c in 0..<columnCapacity {
            for r in 0..<Self.rows {
                let merged: UInt32
                if c < half {
                    merged = counts[(2 * c) * Self.rows + r] &+ counts[(2 * c + 1) * Self.rows + r]
                } else {
                    merged = 0
                }
                counts[c * Self.rows + r] = merged
            }
        }
        usedColumns = (usedColumns + 1) / 2
    }

    public func count(column: Int, row: Int) -> UInt32 { counts[column * Self.rows + row] }

    /// The rows that hold any sample (nil when empty).
    public var usedRows: ClosedRange<Int>? {
        var lo = Self.rows, hi = -1
        for c in 0..<usedColumns {
            for r in 0..<Self.rows where counts[c * Self.rows + r] != 0 {
                lo = min(lo, r); hi = max(hi, r)
            }
        }
        return hi < 0 ? nil : lo...hi
    }

    /// The grid regrouped into at most `maxColumns` columns (merging k neighbours, k minimal):
    /// what renderers draw. `widthNs` is the width of one returned column.
    public func regrouped(maxColumns: Int) -> (columns: [[UInt64]], widthNs: UInt64) {
        let used = max(usedColumns, 1)
        let k = max(1, (used + maxColumns - 1) / max(1, maxColumns))
        let n = (used + k - 1) / k
        var out = [[UInt64]](repeating: [UInt64](repeating: 0, count: Self.rows), count: n)
        for c in 0..<usedColumns {
            for r in 0..<Self.rows { out[c / k][r] += UInt64(counts[c * Self.rows + r]) }
        }
        return (out, bucketWidthNs * UInt64(k))
    }
}
