import Foundation
import Testing
@testable import KVMScope

/// Numbers in blkdebug rules read the way QEMU reads them. Every expectation below was checked
/// against QEMU 7.2's qemu-io (`qemu-io -c 'read 0 512' -c 'read 512 512' -c 'read 1024 512'
/// blkdebug:r.cfg:img.raw`): QEMU_OPT_NUMBER is `qemu_strtou64` (strtoull, base 0, the whole
/// string), so a leading '-' is accepted and negates in unsigned 64-bit arithmetic; `add_rule`
/// then stores state, new_state and errno in C ints (the low 32 bits) and sector in an int64_t
/// whose -1 means "any sector"; `sector * 512` wraps (QEMU builds with -fwrapv).
@Suite struct BlkdebugNumberSemanticsTests {
    let reader = BlkdebugConfigReader()

    func rule(_ key: String, _ value: String, event: String = "read_aio") -> BlkdebugConfigReader.Result {
        reader.parse("[inject-error]\nevent = \"\(event)\"\n\(key) = \"\(value)\"\n", file: "r.cfg")
    }

    /// Which of reads at 0, 512 and 1024 (512 bytes each) the rules fail, as the engine decides.
    func failing(_ r: BlkdebugConfigReader.Result) -> [Int64] {
        let engine = FaultRuleEngine(config: r.config)
        return [0, 512, 1024].filter { off in
            engine.fire(.readAIO)
            return (engine.check(offset: off, bytes: 512, iotype: .read)?.errno ?? 0) > 0
        }
    }

    @Test func minusZeroIsZeroNotATrap() {
        for v in ["-0", "-00", "-0x0", " -0", "-0X0"] {
            let r = rule("sector", v)
            #expect(!r.hasErrors, "\(v): \(r.diagnostics)")
            #expect(r.config.injectErrors.first?.sector == 0, "\(v)")
            #expect(failing(r) == [0], "\(v)")
            #expect(rule("errno", v).config.injectErrors.first?.errno == 0, "\(v)")
            #expect(rule("state", v).config.injectErrors.first?.state == 0, "\(v)")
        }
    }

    @Test func sectorsWrapLikeQEMU() {
        // -1 and 2^64-1 are QEMU's "no sector": every offset fails.
        for v in ["-1", "18446744073709551615", "0xffffffffffffffff"] {
            let r = rule("sector", v)
            #expect(!r.hasErrors, "\(v)")
            #expect(r.config.injectErrors.first.map { $0.sector == nil } == true, "\(v)")
            #expect(failing(r) == [0, 512, 1024], "\(v)")
        }
        // -2: offset -1024 as uint64 is beyond any request: nothing fails.
        #expect(failing(rule("sector", "-2")) == [])
        // -(2^64-1) negates to 1.
        #expect(failing(rule("sector", "-18446744073709551615")) == [512])
        // 2^55+1 sectors: sector*512 wraps to byte 512.
        #expect(failing(rule("sector", "36028797018963969")) == [512])
        #expect(failing(rule("sector", "-36028797018963967")) == [512])
        // QEMU accepts all of these silently; kvmscope says what they turn into.
        for v in ["-1", "-2", "36028797018963969"] {
            #expect(rule("sector", v).diagnostics.contains { $0.severity == .warning }, "\(v)")
        }
    }

    @Test func intsKeepTheLowThirtyTwoBits() {
        // errno 2^32+5 is EIO; -(2^32-5) too; 2^32 is 0 (matches, injects nothing).
        #expect(rule("errno", "4294967301").config.injectErrors.first?.errno == 5)
        #expect(rule("errno", "-4294967291").config.injectErrors.first?.errno == 5)
        #expect(rule("errno", "4294967296").config.injectErrors.first?.errno == 0)
        #expect(failing(rule("errno", "4294967301")) == [0, 512, 1024])
        // state 2^32+1 is state 1 (the start state): the rule is armed.
        let s = reader.parse("[inject-error]\nevent = \"read_aio\"\nerrno = \"28\"\nstate = \"4294967297\"\n")
        #expect(s.config.injectErrors.first?.state == 1)
        #expect(failing(s) == [0, 512, 1024])
        // state -1 is reachable only through new_state -1.
        #expect(failing(reader.parse("[inject-error]\nevent = \"read_aio\"\nstate = \"-1\"\n")) == [])
        let both = reader.parse("[inject-error]\nevent = \"read_aio\"\nstate = \"-1\"\n[set-state]\nevent = \"none\"\nnew_state = \"-1\"\n")
        #expect(!both.hasErrors)
        #expect(both.config.setStates.first?.newState == -1)
        #expect(failing(both) == [0, 512, 1024])
    }

    @Test func negativeErrnoIsAcceptedByQEMUButRefusedForKvmscope() {
        // QEMU's rule_check returns -errno = +5: the read "succeeds" without reading anything.
        let r = rule("errno", "-5")
        #expect(!r.hasErrors)
        #expect(r.config.injectErrors.first?.errno == -5)
        let qemu = BlkdebugChecker(target: .qemu(.raw)).check(r.config)
        #expect(qemu.contains { $0.code == "errno-negative" && $0.severity == .warning })
        let ours = BlkdebugChecker(target: .kvmscope).check(r.config)
        #expect(ours.contains { $0.code == "errno-negative" && $0.severity == .error })
    }

    @Test func whatQEMURefusesIsAnErrorWithQEMUsMessage() {
        for v in ["-18446744073709551616", "18446744073709551616", "99999999999999999999", "0x10000000000000000"] {
            let r = rule("sector", v)
            #expect(r.diagnostics.map(\.code) == ["number-too-large"], "\(v)")
            #expect(r.diagnostics.first?.message.contains("Value '\(v)' is too large for parameter 'sector'") == true, "\(v)")
            #expect(r.config.injectErrors.isEmpty)
        }
        for v in ["5 ", "0x", "-", "--0", "- 0", "-+0", "+-0", "08", "-08", "0x1G", "", "1e3", "0b1"] {
            let r = rule("sector", v)
            #expect(r.diagnostics.map(\.code) == ["not-a-number"], "'\(v)'")
            #expect(r.config.injectErrors.isEmpty, "'\(v)'")
        }
        for v in [" 5", "\t5", "+5", "05", "0x5", "0X5", " +0x5"] {
            #expect(rule("sector", v).config.injectErrors.first?.sector == 5, "'\(v)'")
        }
    }

    @Test func checkAndIoSurviveMinusZero() throws {
        let dir = TempDir()
        let f = dir.file("rules.cfg", "[inject-error]\nevent = \"none\"\niotype = \"read\"\nsector = \"-0\"\nerrno = \"-00\"\nstate = \"-0x0\"\n")
        let r = try CLIRunner.run(["blkdebug", "check", f])
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")          // errno 0 is a warning
        #expect(r.stdout.contains("errno 0 injects nothing"))
        #expect(!r.stderr.contains("Fatal error"))
        let img = dir.image("disk.img", size: 1 << 20)
        let io = try CLIRunner.run(["io", "--rules", f, "-c", "read 0 512", img])
        #expect(io.status == 0, "\(io.stdout)\(io.stderr)")
        #expect(io.stdout.contains("read 512/512 bytes at offset 0"))
    }
}
