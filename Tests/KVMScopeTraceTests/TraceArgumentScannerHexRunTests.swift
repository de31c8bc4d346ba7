import Testing
import KVMScopeCore
@testable import KVMScopeTrace

/// The scanner's eight-digits-at-a-time hex reader against a byte-by-byte one on random bytes
/// (seeded), drawn mostly from hex digits and the bytes next to their ranges, so that runs of
/// every length and every boundary byte come up.
@Suite struct TraceArgumentScannerHexRunTests {
    /// Bytes around the digit and letter ranges, where an off-by-one would show, plus any byte.
    static func byte(_ random: inout SplitMix64) -> UInt8 {
        let near: [UInt8] = Array(0x2F...0x3A) + Array(0x40...0x47) + Array(0x60...0x67)
            + [0x10, 0x19, 0x20, 0x2E, 0x3A, 0x40, 0x7F, 0x80, 0xB0, 0xBA, 0xC6, 0xE1, 0xFF]
        return random.below(4) == 0 ? UInt8(truncatingIfNeeded: random.next()) : near[Int(random.below(UInt64(near.count)))]
    }

    @Test func hexRunAgreesWithTheByteLoop() {
        let hexDigits: [UInt8] = Array("0123456789abcdefABCDEF".utf8)
        var random = SplitMix64(seed: 19)
        for _ in 0..<50_000 {
            let bytes: [UInt8] = (0..<8).map { _ in
                random.below(3) == 0 ? Self.byte(&random) : hexDigits[Int(random.below(UInt64(hexDigits.count)))]
            }
            var count = 0
            var value: UInt64 = 0
            while count < 8, let d = Self.hexValue(bytes[count]) { value = value << 4 | d; count += 1 }
            let got = bytes.withUnsafeBytes { TraceArgumentScanner.hexRun($0.baseAddress!) }
            guard got.count == count, got.value == value else {
                Issue.record("\(bytes): \(got), the byte loop \((count, value))")
                return
            }
        }
    }

    static func hexValue(_ c: UInt8) -> UInt64? {
        switch c {
        case 0x30...0x39: return UInt64(c - 0x30)
        case 0x61...0x66: return UInt64(c - 0x61 + 10)
        case 0x41...0x46: return UInt64(c - 0x41 + 10)
        default: return nil
        }
    }
}
