/// The requests in flight, keyed by element pointer: an open-addressing hash table in place of
/// `[UInt64: VirtioBlkRequestState]`, which hashed the pointer with SipHash about twice per
/// event and copied the whole state out and back on every update.
///
/// The states sit densely in `states` (so an update is in place, through the position `find`
/// returns); `slots` is a power-of-two array of positions + 1 (0: empty), probed linearly from
/// the key's hash. Removal moves the last state into the hole and shifts the probe run back
/// (no tombstones, so lookups never slow down with churn). Positions change on removal:
/// look a key up again after removing anything. Iteration order is not the insertion order;
/// every caller that lists requests sorts them.
///
/// The hash mixes the pointer with a per-table random seed (splitmix64's finaliser): a trace is
/// untrusted input, and with a fixed hash a crafted trace could put all its pointers on one
/// probe run, which is what SipHash's seeding prevented.
struct VirtioBlkRequestTable {
    private(set) var states: [VirtioBlkRequestState] = []
    private var slots: [Int32]
    private var mask: Int
    private let seed: UInt64

    init(seed: UInt64 = UInt64.random(in: .min ... .max)) {
        self.seed = seed
        slots = [Int32](repeating: 0, count: 16)
        mask = 15
    }

    var count: Int { states.count }
    var isEmpty: Bool { states.isEmpty }

    @inline(__always)
    private func home(_ key: UInt64) -> Int {
        var z = key &+ seed
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int(truncatingIfNeeded: z ^ (z >> 31)) & mask
    }

    /// The slot holding `key`, or the empty slot where it would go.
    @inline(__always)
    private func slot(of key: UInt64) -> (slot: Int, found: Bool) {
        var s = home(key)
        while true {
            let p = Int(slots[s])
            if p == 0 { return (s, false) }
            if states[p - 1].elem == key { return (s, true) }
            s = (s + 1) & mask
        }
    }

    /// The position in `states` of the request keyed `key`.
    func find(_ key: UInt64) -> Int? {
        let (s, found) = slot(of: key)
        return found ? Int(slots[s]) - 1 : nil
    }

    subscript(position: Int) -> VirtioBlkRequestState {
        get { states[position] }
        _modify { yield &states[position] }
    }

    /// Changes the request at `position` in place (one access for several fields).
    @inline(__always)
    mutating func update(at position: Int, _ change: (inout VirtioBlkRequestState) -> Void) {
        change(&states[position])
    }

    /// Adds `state` under `state.elem`, replacing a request with the same key; its position.
    @discardableResult
    mutating func insert(_ state: VirtioBlkRequestState) -> Int {
        let (s, found) = slot(of: state.elem)
        if found {
            let p = Int(slots[s]) - 1
            states[p] = state
            return p
        }
        states.append(state)
        slots[s] = Int32(states.count)
        // At most half full: short probe runs.
        if states.count * 2 > slots.count { grow() }
        return states.count - 1
    }

    /// Removes the request at `position` and returns it; the last request takes its position.
    @discardableResult
    mutating func remove(at position: Int) -> VirtioBlkRequestState {
        let (s, _) = slot(of: states[position].elem)
        vacate(s)
        let last = states.count - 1
        if position != last {
            let (moved, _) = slot(of: states[last].elem)
            slots[moved] = Int32(position + 1)
            states.swapAt(position, last)
        }
        return states.removeLast()
    }

    @discardableResult
    mutating func removeValue(forKey key: UInt64) -> VirtioBlkRequestState? {
        find(key).map { remove(at: $0) }
    }

    /// Removes every request `remove` accepts.
    mutating func removeAll(where remove: (VirtioBlkRequestState) -> Bool) {
        let kept = states.filter { !remove($0) }
        guard kept.count != states.count else { return }
        rebuild(kept)
    }

    /// Empties slot `s` and moves later members of its probe run back into the gap, so that
    /// every key stays reachable from its home slot without crossing an empty slot
    /// (backward-shift deletion for linear probing).
    private mutating func vacate(_ s: Int) {
        var gap = s
        var next = (s + 1) & mask
        while slots[next] != 0 {
            let h = home(states[Int(slots[next]) - 1].elem)
            // The member at `next` may fill the gap when its home is not cyclically in (gap, next].
            if (next &- h) & mask >= (next &- gap) & mask {
                slots[gap] = slots[next]
                gap = next
            }
            next = (next + 1) & mask
        }
        slots[gap] = 0
    }

    private mutating func grow() {
        let kept = states
        states = []
        slots = [Int32](repeating: 0, count: slots.count * 2)
        mask = slots.count - 1
        for state in kept { insert(state) }
    }

    private mutating func rebuild(_ kept: [VirtioBlkRequestState]) {
        states = []
        var capacity = 16
        while capacity < kept.count * 2 { capacity *= 2 }
        slots = [Int32](repeating: 0, count: capacity)
        mask = capacity - 1
        for state in kept { insert(state) }
    }
}
