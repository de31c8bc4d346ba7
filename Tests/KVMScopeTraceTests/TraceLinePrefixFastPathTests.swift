import Testing
import KVMScopeCore
@testable import KVMScopeTrace

/// The log-backend prefix's fast path against the general parse, and its eight-digit reader
/// against a byte-by-byte one, on random input (seeded).
@Suite struct TraceLinePrefixFastPathTests {
    /// Bytes around the digit range, where an off-by-one would show, plus any byte.
    static func byte(_ random: inout SplitMix64) -> UInt8 {
        let near: [UInt8] = Array(0x2F...0x3A) + Array(0x40...0x47) + Array(0x60...0x67)
            + [0x10, 0x19, 0x20, 0x2E, 0x3A, 0x40, 0x7F, 0x80, 0xB0, 0xBA, 0xC6, 0xE1, 0xFF]
        return random.below(4) == 0 ? UInt8(truncatingIfNeeded: random.next()) : near[Int(random.below(UInt64(near.count)))]
    }

    static func words(seed: UInt64, count: Int, digitBias: ClosedRange<UInt8>) -> [[UInt8]] {
        var random = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            (0..<8).map { _ in random.below(3) == 0 ? byte(&random) : digitBias.randomElement(using: &random)! }
        }
    }

    @Test func digitRunAgreesWithTheByteLoop() {
        for bytes in Self.words(seed: 600, count: 50_000, digitBias: 0x30...0x39) {
            var count = 0
            var value: UInt64 = 0
            while count < 8, bytes[count] >= 0x30, bytes[count] <= 0x39 { value = value * 10 + UInt64(bytes[count] - 0x30); count += 1 }
            let got = bytes.withUnsafeBytes { TraceLinePrefix.digitRun($0.baseAddress!) }
            guard got.count == count, got.value == value else {
                Issue.record("\(bytes): \(got), the byte loop \((count, value))")
                return
            }
        }
    }

    /// The fast `TID@SEC.USEC:` path gives what the general parse gives, wherever it answers.
    @Test func logTimestampPathAgreesWithTheGeneralParse() {
        var random = SplitMix64(seed: 0x1D)
        let pieces = ["20471", "1", "1234567", "12345678", "@", "1795000000", "123456789012345", "1234567890123456",
                      "9223372036", "9223372035", ".", "150176", "1", "1234567", "12345678", ":", "x", " "]
        var answered = 0
        for _ in 0..<20_000 {
            var line = ""
            for _ in 0..<(3 + random.below(6)) { line += pieces[Int(random.below(UInt64(pieces.count)))] }
            if random.below(2) == 0 { line = "20471@1795000000.150176:" }
            line += "virtqueue_pop vq 0x7f0a4c470010"
            let bytes = Array(line.utf8)
            bytes.withUnsafeBufferPointer { b in
                guard let fast = TraceLinePrefix.parseLogTimestamp(b.baseAddress!, b.count) else { return }
                answered += 1
                let general = TraceLinePrefix.parseGeneral(b.baseAddress!, b.count)
                if fast.style != general.style || fast.timestamp != general.timestamp || fast.thread != general.thread
                    || fast.nameStart != general.nameStart || fast.badTimestamp != general.badTimestamp {
                    Issue.record("\(line): \(fast), the general parse \(general)")
                }
            }
        }
        #expect(answered > 9_000)
    }
}
