/// A set of operations as a bit mask (one bit per BlockIOOperation case).
public struct BlockIOOperationSet: Equatable, Hashable, Sendable {
    public var bits: UInt32
    public init(bits: UInt32 = 0) { self.bits = bits }
    public init(_ op: BlockIOOperation?) { bits = op.map { 1 << UInt32(Self.index($0)) } ?? 0 }

    static func index(_ op: BlockIOOperation) -> Int {
        switch op {
        case .read: return 0
        case .write: return 1
        case .flush: return 2
        case .discard: return 3
        case .secureErase: return 4
        case .writeSame: return 5
        case .writeZeroes: return 6
        case .zoneReport: return 7
        case .zoneReset: return 8
        case .zoneResetAll: return 9
        case .zoneOpen: return 10
        case .zoneClose: return 11
        case .zoneFinish: return 12
        case .zoneAppend: return 13
        case .scsiIn: return 14
        case .scsiOut: return 15
        case .driverIn: return 16
        case .driverOut: return 17
        case .unknown: return 18
        }
    }

    public mutating func formUnion(_ other: BlockIOOperationSet) { bits |= other.bits }
    public var operations: [BlockIOOperation] {
        BlockIOOperation.allCases.enumerated().filter { bits & (1 << UInt32($0.offset)) != 0 }.map(\.element)
    }
}

/// Start sectors of failed requests, merged into ranges. The kernel prints a failed request's
/// first sector but not its length, so neighbours closer than `mergeGap` sectors are merged
/// (8 sectors = one 4 KiB page: requests on consecutive pages become one range).
public struct SectorRange: Equatable, Sendable {
    public var first: UInt64
    public var last: UInt64
    public var errors: Int
    public var operations: BlockIOOperationSet

    public init(first: UInt64, last: UInt64, errors: Int, operations: BlockIOOperationSet) {
        self.first = first; self.last = last; self.errors = errors; self.operations = operations
    }
}

/// Sorted, disjoint ranges with bounded memory whatever the input size: sectors are buffered
/// unsorted, then sorted and merged in batches (amortised O(log n) per error). When more than
/// `limit` ranges exist the merge gap is widened until they fit in half of it, and the set says
/// it was coalesced. Error counts stay exact; only the range boundaries get coarser.
struct SectorRangeSet: Sendable {
    public let limit: Int
    public private(set) var mergeGap: UInt64
    public private(set) var coalesced = false
    private var merged: [SectorRange] = []
    private var pending: [SectorRange] = []
    private let batch: Int

    public init(limit: Int = 4096, mergeGap: UInt64 = 8, batch: Int = 4096) {
        self.limit = max(2, limit)
        self.mergeGap = mergeGap
        self.batch = max(1, batch)
    }

    public mutating func insert(_ sector: UInt64, operation: BlockIOOperation?, count: Int = 1) {
        let ops = BlockIOOperationSet(operation)
        // A sector that fails again and again (the common case) costs an increment.
        if let last = pending.indices.last, pending[last].first == sector {
            pending[last].errors += count
            pending[last].operations.formUnion(ops)
            return
        }
        // A sector inside an already merged range changes no boundary: count it in place
        // instead of buffering and sorting it again.
        var lo = 0, hi = merged.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if merged[mid].last < sector { lo = mid + 1 } else { hi = mid }
        }
        if lo < merged.count, merged[lo].first <= sector {
            merged[lo].errors += count
            merged[lo].operations.formUnion(ops)
            return
        }
        pending.append(SectorRange(first: sector, last: sector, errors: count, operations: ops))
        if pending.count >= batch { flush() }
    }

    /// The ranges, sorted by first sector.
    public var ranges: [SectorRange] {
        var copy = self
        copy.flush()
        return copy.merged
    }

    public var totalErrors: Int { merged.reduce(0) { $0 + $1.errors } + pending.reduce(0) { $0 + $1.errors } }

    mutating func flush() {
        guard !pending.isEmpty else { return }
        pending.sort { $0.first < $1.first }
        var out: [SectorRange] = []
        out.reserveCapacity(merged.count + pending.count)
        var a = 0, b = 0
        while a < merged.count || b < pending.count {
            let next: SectorRange
            if b >= pending.count || (a < merged.count && merged[a].first <= pending[b].first) {
                next = merged[a]; a += 1
            } else {
                next = pending[b]; b += 1
            }
            append(next, to: &out, gap: mergeGap)
        }
        pending.removeAll(keepingCapacity: true)
        merged = out
        // Over the limit: widen the gap until the ranges fit in half of it, so that the next
        // batches do not trigger another pass right away.
        if merged.count > limit {
            coalesced = true
            repeat {
                let (wider, overflow) = max(mergeGap, 2).multipliedReportingOverflow(by: 4)
                mergeGap = overflow ? .max : wider
                var widened: [SectorRange] = []
                widened.reserveCapacity(merged.count)
                for r in merged { append(r, to: &widened, gap: mergeGap) }
                merged = widened
            } while merged.count > limit / 2
        }
    }

    private func append(_ r: SectorRange, to out: inout [SectorRange], gap: UInt64) {
        if let i = out.indices.last, r.first <= out[i].last || r.first - out[i].last <= gap {
            out[i].last = max(out[i].last, r.last)
            out[i].errors += r.errors
            out[i].operations.formUnion(r.operations)
        } else {
            out.append(r)
        }
    }
}
