import Foundation

/// Turns exit-reason bytes (`EPT_VIOLATION`, `npf`, `EXIT_NPF`, `DE excp`) or raw numbers
/// (`exit_reason=48 isa=1`) into small integer ids, without making a String per line: the
/// bytes are hashed and compared in place, and a String is made once per distinct reason.
/// Plugin names and numbers resolve to the kernel's name, so `EXIT_NPF`, `npf` and
/// `exit_reason=1024 isa=2` are one reason.
final class ExitReasonInterner {
    /// Display name per id.
    public private(set) var names: [String] = []
    /// The ISA each reason belongs to, when the name or number tells.
    public private(set) var isas: [ExitISA?] = []

    // Open-addressing table over the spelling bytes: slot → id + 1 (0 = empty).
    private var slots: [Int32]
    private var spellings: [[UInt8]] = []     // per spelling entry
    private var spellingID: [Int32] = []       // spelling entry → reason id
    private var byName: [String: Int32] = [:]  // display name → id (distinct spellings, one reason)
    private var byNumber: [UInt64: Int32] = [:]
    /// `byNumber`'s entries by the key's low bits (id -1: none): the binary readers look a
    /// number up for every exit, and the Dictionary hashes it each time.
    @exclusivity(unchecked) private var recentNumbers = [(key: UInt64, id: Int32)](repeating: (0, -1), count: 256)

    /// Kernel name → ISA, for telling Intel from AMD traces.
    private static let isaOfName: [String: ExitISA] = {
        var t: [String: ExitISA] = [:]
        for (_, n) in ExitReasonTable.svm { t[n] = .svm }
        for (_, n) in ExitReasonTable.vmx { t[n] = .vmx }
        return t
    }()

    public init() { slots = [Int32](repeating: 0, count: 256) }

    public var count: Int { names.count }

    /// Id for the reason spelled by `bytes` (as printed in a trace line).
    @inline(__always)
    public func id(spelling bytes: UnsafeBufferPointer<UInt8>) -> Int32 {
        let h = Self.hash(bytes)
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let s = slots[i]
            if s == 0 { return insert(bytes, at: i) }
            let e = Int(s - 1)
            let stored = spellings[e]
            if stored.count == bytes.count,
               stored.withUnsafeBufferPointer({ memcmp($0.baseAddress!, bytes.baseAddress!, bytes.count) == 0 }) {
                return spellingID[e]
            }
            i = (i + 1) & mask
        }
    }

    /// Id for a raw exit_reason number of `isa` (trace-cmd report -R, or a plugin's `UNKNOWN (n)`).
    public func id(isa: ExitISA, exitReason: UInt32) -> Int32 {
        let key = (isa == .vmx ? UInt64(1) << 32 : UInt64(2) << 32) | UInt64(exitReason)
        let slot = Int(truncatingIfNeeded: (key ^ key >> 24) & 255)
        if recentNumbers[slot].id >= 0, recentNumbers[slot].key == key { return recentNumbers[slot].id }
        let id: Int32
        if let known = byNumber[key] { id = known } else {
            id = reason(named: ExitReasonTable.name(isa: isa, exitReason: exitReason), isa: isa)
            byNumber[key] = id
        }
        recentNumbers[slot] = (key, id)
        return id
    }

    private func insert(_ bytes: UnsafeBufferPointer<UInt8>, at slot: Int) -> Int32 {
        let spelled = String(decoding: bytes, as: UTF8.self)
        let kernelName = ExitReasonTable.kernelName(forPluginName: spelled)
        let display = kernelName ?? spelled
        let isa: ExitISA? = kernelName != nil ? .svm : Self.isaOfName[Self.baseName(display)]
        let id = reason(named: display, isa: isa)
        spellings.append(Array(bytes))
        spellingID.append(id)
        slots[slot] = Int32(spellings.count)
        if spellings.count * 2 > slots.count { rehash() }
        return id
    }

    private func reason(named display: String, isa: ExitISA?) -> Int32 {
        if let id = byName[display] { return id }
        let id = Int32(names.count)
        names.append(display)
        isas.append(isa)
        byName[display] = id
        return id
    }

    private func rehash() {
        slots = [Int32](repeating: 0, count: slots.count * 2)
        let mask = slots.count - 1
        for (e, bytes) in spellings.enumerated() {
            var i = bytes.withUnsafeBufferPointer { Int(truncatingIfNeeded: Self.hash($0)) } & mask
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = Int32(e + 1)
        }
    }

    /// `INVALID_STATE FAILED_VMENTRY` → `INVALID_STATE`; `DE excp` stays whole.
    static func baseName(_ name: String) -> String {
        if name.hasSuffix(" FAILED_VMENTRY") { return String(name.dropLast(" FAILED_VMENTRY".count)) }
        return name
    }

    @inline(__always)
    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h ^ (h >> 29)
    }
}
