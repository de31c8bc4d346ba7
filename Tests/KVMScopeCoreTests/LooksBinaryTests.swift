import Testing
import KVMScopeCore

/// LineBytes.looksBinary, eight bytes a test, against the byte loop it replaced, on seeded
/// random lines of printable text with control bytes, tabs, ESC, DEL and high bytes mixed in
/// at every position (and lines shorter than a word).
@Suite struct LooksBinaryTests {
    @Test func agreesWithTheByteLoop() {
        var random = SplitMix64(seed: 1919_0)
        let odd: [UInt8] = [0x00, 0x01, 0x08, 0x09, 0x0A, 0x0D, 0x1A, 0x1B, 0x1F, 0x20, 0x7F, 0x80, 0x9F, 0xA0, 0xFF]
        for _ in 0..<100_000 {
            let oddOneIn = 2 + random.below(60)
            let line: [UInt8] = (0..<Int(random.below(48))).map { _ in
                random.below(oddOneIn) == 0 ? odd[Int(random.below(UInt64(odd.count)))] : UInt8(0x20 + random.below(0x5F))
            }
            let want = line.contains { $0 < 0x20 && $0 != 0x09 && $0 != 0x1B }
            let got = line.withUnsafeBufferPointer { LineBytes($0).looksBinary }
            guard got == want else {
                Issue.record("\(line): \(got), the byte loop \(want)")
                return
            }
        }
    }
}
