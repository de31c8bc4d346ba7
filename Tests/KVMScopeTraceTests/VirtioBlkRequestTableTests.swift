import Testing
import KVMScopeCore
@testable import KVMScopeTrace

/// The tracker's open-addressing table against a Dictionary on the same random operations.
@Suite struct VirtioBlkRequestTableTests {
    /// One state per key, told apart by a field the table never looks at.
    static func state(_ key: UInt64, _ tag: Int) -> VirtioBlkRequestState {
        var s = VirtioBlkRequestState(elem: key, at: nil)
        s.attempts = tag
        return s
    }

    static func check(_ table: VirtioBlkRequestTable, _ reference: [UInt64: Int], _ keys: [UInt64]) {
        #expect(table.count == reference.count)
        for key in keys {
            let position = table.find(key)
            #expect(position.map { table[$0].attempts } == reference[key], "key \(key)")
            if let position { #expect(table[position].elem == key) }
        }
        #expect(Set(table.states.map(\.elem)) == Set(reference.keys))
    }

    /// Inserts, replacements, removals by key and by position, and filters, seeded; keys from
    /// a small pool (so that they come back after removal), pointers 8-byte aligned as QEMU's.
    @Test(arguments: [1, 2, 3, 0x5EED] as [UInt64])
    func randomOperationsAgreeWithADictionary(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var table = VirtioBlkRequestTable(seed: random.next())
        var reference: [UInt64: Int] = [:]
        let pool = (0..<3000).map { _ in 0x55d0_c8a0_0000 &+ random.below(1 << 20) << 3 } + [0, .max]
        for step in 0..<40_000 {
            let key = pool[Int(random.below(UInt64(pool.count)))]
            switch random.below(10) {
            case 0...4:
                table.insert(Self.state(key, step))
                reference[key] = step
            case 5...6:
                #expect(table.removeValue(forKey: key)?.attempts == reference.removeValue(forKey: key))
            case 7:
                if !table.isEmpty {
                    let position = Int(random.below(UInt64(table.count)))
                    let removed = table.remove(at: position)
                    #expect(reference.removeValue(forKey: removed.elem) == removed.attempts)
                }
            case 8:
                if let position = table.find(key) {
                    table.update(at: position) { $0.attempts = -step }
                    reference[key] = -step
                }
            default:
                if step % 1000 == 0 {
                    table.removeAll { $0.elem & 8 != 0 }
                    reference = reference.filter { $0.key & 8 == 0 }
                }
            }
            if step % 4000 == 0 { Self.check(table, reference, pool) }
        }
        Self.check(table, reference, pool)
    }

    /// 50 000 keys: the table grows from 16 slots through many doublings, then half the keys
    /// leave in reverse order (backward shifts across probe runs) and the rest after them.
    @Test func growsAndShrinksBackToEmpty() {
        var table = VirtioBlkRequestTable(seed: 42)
        let keys = (1...50_000).map { UInt64($0) << 12 }
        for (i, key) in keys.enumerated() { table.insert(Self.state(key, i)) }
        #expect(table.count == keys.count)
        for (i, key) in keys.enumerated() { #expect(table.find(key).map { table[$0].attempts } == i) }
        for key in keys.reversed() where key & 0x1000 != 0 { table.removeValue(forKey: key) }
        #expect(table.count == keys.count / 2)
        for (i, key) in keys.enumerated() {
            #expect(table.find(key).map { table[$0].attempts } == (key & 0x1000 != 0 ? nil : i))
        }
        for key in keys { table.removeValue(forKey: key) }
        #expect(table.isEmpty && table.find(keys[0]) == nil)
    }
}
