/// Half-open sector ranges `[start, end)` indexed for overlap queries in O(log n + k).
///
/// An AVL tree keyed by range start and augmented with the largest `end` in each subtree:
/// a subtree whose `maxEnd` is at or below a query's start cannot overlap it, so a query
/// visits only the paths that can. `explain` indexes every host request of a trace here and
/// asks, per guest error, which requests covered that sector — millions of requests stay
/// O(log n) per question. Nodes live in one array (no per-node allocation, no ARC traffic).
public struct IntervalTree<Value> {
    @usableFromInline struct Node {
        var start: UInt64
        var end: UInt64
        var maxEnd: UInt64
        var value: Value
        var left: Int32 = -1
        var right: Int32 = -1
        var height: Int8 = 1
    }

    @usableFromInline var nodes: [Node] = []
    @usableFromInline var root: Int32 = -1

    public init() {}

    public var count: Int { nodes.count }
    public var isEmpty: Bool { nodes.isEmpty }

    /// Adds `[start, end)`. Empty ranges (`end <= start`, e.g. a flush) are stored as one
    /// sector wide at `start` so they can still be found at their position (at UInt64.max,
    /// where no sector follows, they stay empty and match nothing).
    public mutating func insert(start: UInt64, end: UInt64, value: Value) {
        let e = end > start ? end : (start == .max ? start : start + 1)
        nodes.append(Node(start: start, end: e, maxEnd: e, value: value))
        root = insert(Int32(nodes.count - 1), into: root)
    }

    /// Every value whose range overlaps `[start, end)`, in ascending start order.
    public func overlapping(start: UInt64, end: UInt64) -> [Value] {
        var result: [Value] = []
        forEachOverlapping(start: start, end: end) { result.append($0) }
        return result
    }

    /// Calls `body` for each overlapping value in ascending start order, without allocating.
    public func forEachOverlapping(start: UInt64, end: UInt64, _ body: (Value) -> Void) {
        guard end > start || start < .max else { return }      // an empty query at the top: nothing
        let qEnd = end > start ? end : start + 1
        // Iterative in-order walk with pruning; depth is bounded by the AVL height (< 64).
        var stack: [Int32] = []
        stack.reserveCapacity(64)
        var current = root
        while current >= 0 || !stack.isEmpty {
            while current >= 0 {
                let n = nodes[Int(current)]
                if n.maxEnd <= start { current = -1; break }   // nothing here reaches the query
                stack.append(current)
                current = n.left
            }
            guard let top = stack.popLast() else { break }
            let n = nodes[Int(top)]
            if n.start >= qEnd { break }                       // in-order: all later starts are past the query
            if n.end > start { body(n.value) }
            current = n.right
        }
    }

    // MARK: AVL balancing, keeping maxEnd up to date on every node whose children change.

    @usableFromInline func height(_ i: Int32) -> Int8 { i < 0 ? 0 : nodes[Int(i)].height }
    @usableFromInline func maxEnd(_ i: Int32) -> UInt64 { i < 0 ? 0 : nodes[Int(i)].maxEnd }

    @usableFromInline mutating func update(_ i: Int32) {
        let n = nodes[Int(i)]
        nodes[Int(i)].height = max(height(n.left), height(n.right)) + 1
        nodes[Int(i)].maxEnd = max(n.end, maxEnd(n.left), maxEnd(n.right))
    }

    @usableFromInline mutating func rotateRight(_ i: Int32) -> Int32 {
        let l = nodes[Int(i)].left
        nodes[Int(i)].left = nodes[Int(l)].right
        nodes[Int(l)].right = i
        update(i)
        update(l)
        return l
    }

    @usableFromInline mutating func rotateLeft(_ i: Int32) -> Int32 {
        let r = nodes[Int(i)].right
        nodes[Int(i)].right = nodes[Int(r)].left
        nodes[Int(r)].left = i
        update(i)
        update(r)
        return r
    }

    @usableFromInline mutating func insert(_ new: Int32, into i: Int32) -> Int32 {
        guard i >= 0 else { return new }
        if nodes[Int(new)].start < nodes[Int(i)].start {
            nodes[Int(i)].left = insert(new, into: nodes[Int(i)].left)
        } else {
            nodes[Int(i)].right = insert(new, into: nodes[Int(i)].right)
        }
        update(i)
        let balance = Int(height(nodes[Int(i)].left)) - Int(height(nodes[Int(i)].right))
        if balance > 1 {
            if height(nodes[Int(nodes[Int(i)].left)].left) < height(nodes[Int(nodes[Int(i)].left)].right) {
                nodes[Int(i)].left = rotateLeft(nodes[Int(i)].left)
            }
            return rotateRight(i)
        }
        if balance < -1 {
            if height(nodes[Int(nodes[Int(i)].right)].right) < height(nodes[Int(nodes[Int(i)].right)].left) {
                nodes[Int(i)].right = rotateRight(nodes[Int(i)].right)
            }
            return rotateLeft(i)
        }
        return i
    }

    /// Tree height, for tests that check the balance guarantee (≤ 1.44 log2 n).
    public var height: Int { Int(height(root)) }
}
