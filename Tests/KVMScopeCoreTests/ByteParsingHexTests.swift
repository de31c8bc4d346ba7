import Testing
import KVMScopeCore

/// The eight-digits-at-a-time hex readers (ByteParsing.hexRun, ByteParsing.hex, and
/// LineBytes.hex on top of them) against byte-by-byte ones on random bytes (seeded), drawn
/// mostly from hex digits and the bytes next to their ranges, so that runs of every length,
/// every boundary byte, over-long runs and runs cut by the end of the line all come up.
@Suite struct ByteParsingHexTests {
    /// Bytes around the digit and letter ranges, where an off-by-one would show, plus any byte.
    static func byte(_ random: inout SplitMix64) -> UInt8 {
        let near: [UInt8] = Array(0x2F...0x3A) + Array(0x40...0x47) + Array(0x60...0x67)
            + [0x10, 0x19, 0x20, 0x2E, 0x3A, 0x40, 0x7F, 0x80, 0xB0, 0xBA, 0xC6, 0xE1, 0xFF]
        return random.below(4) == 0 ? UInt8(truncatingIfNeeded: random.next()) : near[Int(random.below(UInt64(near.count)))]
    }

    static let hexDigits: [UInt8] = Array("0123456789abcdefABCDEF".utf8)

    /// Mostly digits, a boundary byte now and then: long runs (up to the length) are common.
    static func bytes(_ n: Int, _ random: inout SplitMix64, oddOneIn: UInt64) -> [UInt8] {
        (0..<n).map { _ in
            random.below(oddOneIn) == 0 ? byte(&random) : hexDigits[Int(random.below(UInt64(hexDigits.count)))]
        }
    }

    @Test func hexRunAgreesWithTheByteLoop() {
        var random = SplitMix64(seed: 19)
        for _ in 0..<50_000 {
            let bytes = Self.bytes(8, &random, oddOneIn: 3)
            var count = 0
            var value: UInt64 = 0
            while count < 8, let d = Self.hexValue(bytes[count]) { value = value << 4 | d; count += 1 }
            let got = bytes.withUnsafeBytes { ByteParsing.hexRun($0.baseAddress!) }
            guard got.count == count, got.value == value else {
                Issue.record("\(bytes): \(got), the byte loop \((count, value))")
                return
            }
        }
    }

    /// ByteParsing.hex at every start in random buffers of 0–40 bytes, against a loop that
    /// reads every digit and refuses more than 16.
    @Test func hexAgreesWithTheByteLoop() {
        var random = SplitMix64(seed: 1919)
        for _ in 0..<20_000 {
            let bytes = Self.bytes(Int(random.below(41)), &random, oddOneIn: 1 + random.below(24))
            for start in 0...bytes.count {
                let want = Self.simpleHex(bytes, start)
                let got = bytes.withUnsafeBufferPointer { b -> (UInt64, Int)? in
                    guard let base = b.baseAddress else { return nil }
                    return ByteParsing.hex(base, start, b.count)
                }
                guard got?.0 == want?.0, got?.1 == want?.1 else {
                    Issue.record("\(bytes) at \(start): \(String(describing: got)), the byte loop \(String(describing: want))")
                    return
                }
            }
        }
    }

    /// LineBytes.hex (`0x`/`0X` optional) against the byte loop it replaced, at every start
    /// of random lines that often hold a `0x`.
    @Test func lineBytesHexAgreesWithTheOldLoop() {
        var random = SplitMix64(seed: 190)
        for _ in 0..<20_000 {
            var bytes = Self.bytes(Int(random.below(41)), &random, oddOneIn: 1 + random.below(24))
            for _ in 0..<random.below(3) where bytes.count >= 2 {
                let at = Int(random.below(UInt64(bytes.count - 1)))
                bytes[at] = 0x30
                bytes[at + 1] = random.below(2) == 0 ? 0x78 : 0x58
            }
            bytes.withUnsafeBufferPointer { b in
                let line = LineBytes(b)
                for start in 0...b.count {
                    let got = line.hex(at: start), want = Self.oldLineHex(b, start)
                    if got?.value != want?.0 || got?.end != want?.1 {
                        Issue.record("\(bytes) at \(start): \(String(describing: got)), the old loop \(String(describing: want))")
                        return
                    }
                }
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

    static func simpleHex(_ b: [UInt8], _ start: Int) -> (UInt64, Int)? {
        var i = start, v: UInt64 = 0
        while i < b.count, let d = hexValue(b[i]) { v = v &<< 4 | d; i += 1 }
        return i == start || i - start > 16 ? nil : (v, i)
    }

    /// LineBytes.hex as it was before ByteParsing.hex (a digit at a time).
    static func oldLineHex(_ b: UnsafeBufferPointer<UInt8>, _ at: Int) -> (UInt64, Int)? {
        var i = at
        if i + 2 <= b.count, b[i] == 0x30, b[i + 1] == 0x78 || b[i + 1] == 0x58 { i += 2 }
        let start = i
        var v: UInt64 = 0
        while i < b.count, i - start < 16 {
            guard let d = hexValue(b[i]) else { return i == start ? nil : (v, i) }
            v = v << 4 | d
            i += 1
        }
        if i < b.count, hexValue(b[i]) != nil { return nil }
        return i == start ? nil : (v, i)
    }
}
