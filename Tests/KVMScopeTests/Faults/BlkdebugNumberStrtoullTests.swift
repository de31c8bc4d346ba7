#if canImport(Glibc)
import Glibc
import Testing
@testable import KVMScope

/// The rules reader's number parser against the C library's own strtoull, used the way
/// qemu_strtou64 and check_strtox_error (util/cutils.c) use it: base 0, no conversion or
/// anything left over is EINVAL ("expects a number"), then ERANGE ("too large").
@Suite struct BlkdebugNumberStrtoullTests {
    static func qemuStrtou64(_ s: String) -> BlkdebugConfigReader.ParsedNumber {
        s.withCString { p -> BlkdebugConfigReader.ParsedNumber in
            var end: UnsafeMutablePointer<CChar>?
            errno = 0
            let v = strtoull(p, &end, 0)
            let libcErrno = errno
            guard let end else { return .invalid }
            if libcErrno == 0 && end == UnsafeMutablePointer(mutating: p) { return .invalid }
            if end.pointee != 0 { return .invalid }
            if libcErrno == ERANGE { return .tooLarge }
            // strtoull negates in unsigned arithmetic; "negated" is whether a '-' made it wrap.
            let negative = s.drop(while: { " \t\n\u{0B}\u{0C}\r".contains($0) }).hasPrefix("-")
            return .value(v, negated: negative && v != 0)
        }
    }

    @Test(arguments: [UInt64(41), 42])
    func sameAsStrtoull(seed: UInt64) {
        let pieces = [" ", "\t", "\n", "+", "-", "0", "1", "7", "8", "9", "a", "f", "g", "x", "X", "F", "e",
                      "18446744073709551615", "18446744073709551616", "0x", "ffffffffffffffff", "01777777777777777777777",
                      "02000000000000000000000", "4294967296", "9223372036854775808"]
        var rng = SplitMix64(seed: seed)
        var values = 0
        for _ in 0..<20_000 {
            var s = ""
            for _ in 0..<rng.below(6) { s += pieces[Int(rng.below(UInt64(pieces.count)))] }
            let want = Self.qemuStrtou64(s)
            #expect(BlkdebugConfigReader.parseQEMUNumber(s) == want, "'\(s)'")
            if case .value = want { values += 1 }
        }
        #expect(values > 1_000)   // about 9 % of the strings are numbers QEMU takes
    }
}
#endif
