/// A mergeable min-heap (leftist heap): insert, pop and merge of two heaps in O(log n).
///
/// `explain` merges several time-ordered inputs (guest log, trace, QMP) by keeping the next
/// event of each in this heap and popping the earliest, instead of loading and sorting
/// everything. Merge is what makes a leftist heap the right tool: heaps built per input can
/// be joined in O(log n). Nodes live in one array; freed slots are reused.
struct LeftistHeap<Element> {
    @usableFromInline struct Node {
        var element: Element
        var left: Int32 = -1
        var right: Int32 = -1
        var rank: Int32 = 1     // length of the right spine (null path length)
    }

    @usableFromInline var nodes: [Node?] = []
    @usableFromInline var free: [Int32] = []
    @usableFromInline var root: Int32 = -1
    public private(set) var count = 0
    @usableFromInline let areInIncreasingOrder: (Element, Element) -> Bool

    public init(by areInIncreasingOrder: @escaping (Element, Element) -> Bool) {
        self.areInIncreasingOrder = areInIncreasingOrder
    }

    public var isEmpty: Bool { count == 0 }

    /// The smallest element, without removing it.
    public var min: Element? { root < 0 ? nil : nodes[Int(root)]!.element }

    public mutating func insert(_ element: Element) {
        let slot: Int32
        if let reused = free.popLast() {
            slot = reused
            nodes[Int(slot)] = Node(element: element)
        } else {
            nodes.append(Node(element: element))
            slot = Int32(nodes.count - 1)
        }
        root = merge(root, slot)
        count += 1
    }

    /// Removes and returns the smallest element.
    public mutating func popMin() -> Element? {
        guard root >= 0, let top = nodes[Int(root)] else { return nil }
        nodes[Int(root)] = nil
        free.append(root)
        root = merge(top.left, top.right)
        count -= 1
        return top.element
    }

    /// Moves every element of `other` into this heap in O(log n + log m) merges of spines
    /// (plus copying `other`'s node storage, which a value-type heap cannot share).
    public mutating func merge(_ other: LeftistHeap<Element>) {
        guard other.root >= 0 else { return }
        let offset = Int32(nodes.count)
        for n in other.nodes {
            guard var n else { nodes.append(nil); free.append(Int32(nodes.count - 1)); continue }
            if n.left >= 0 { n.left += offset }
            if n.right >= 0 { n.right += offset }
            nodes.append(n)
        }
        root = merge(root, other.root + offset)
        count += other.count
    }

    @usableFromInline func rank(_ i: Int32) -> Int32 { i < 0 ? 0 : nodes[Int(i)]!.rank }

    /// Merges two subtrees along their right spines, then restores the leftist property.
    @usableFromInline mutating func merge(_ a: Int32, _ b: Int32) -> Int32 {
        if a < 0 { return b }
        if b < 0 { return a }
        var (small, large) = (a, b)
        if areInIncreasingOrder(nodes[Int(b)]!.element, nodes[Int(a)]!.element) { (small, large) = (b, a) }
        let merged = merge(nodes[Int(small)]!.right, large)
        nodes[Int(small)]!.right = merged
        if rank(nodes[Int(small)]!.left) < rank(nodes[Int(small)]!.right) {
            let l = nodes[Int(small)]!.left
            nodes[Int(small)]!.left = nodes[Int(small)]!.right
            nodes[Int(small)]!.right = l
        }
        nodes[Int(small)]!.rank = rank(nodes[Int(small)]!.right) + 1
        return small
    }
}

/// Merges several sequences that are each sorted by `key` into one sorted stream, holding
/// only one pending element per input (a k-way merge over a leftist heap).
struct TimeOrderedMerge<Element>: Sequence, IteratorProtocol {
    private var iterators: [AnyIterator<Element>]
    private var heap: LeftistHeap<(key: Double, source: Int, seq: Int, element: Element)>
    private var sequence = 0

    public init(_ inputs: [AnyIterator<Element>], key: @escaping (Element) -> Double) {
        iterators = inputs
        self.key = key
        // Ties keep input order (source index, then arrival), so merging is stable.
        heap = LeftistHeap { a, b in
            a.key != b.key ? a.key < b.key : (a.source != b.source ? a.source < b.source : a.seq < b.seq)
        }
        for i in iterators.indices { pull(i) }
    }

    private let key: (Element) -> Double

    private mutating func pull(_ source: Int) {
        guard let next = iterators[source].next() else { return }
        sequence += 1
        heap.insert((key(next), source, sequence, next))
    }

    public mutating func next() -> Element? {
        guard let top = heap.popMin() else { return nil }
        pull(top.source)
        return top.element
    }
}
