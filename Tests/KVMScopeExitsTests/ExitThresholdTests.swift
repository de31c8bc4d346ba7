import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeExits

/// `exits --than`: every exit at least that slow, in trace order, with its RIP, info fields and
/// what its vCPU did meanwhile (the kvm_pio and userspace exit between the exit and its entry).
@Suite struct ExitThresholdTests {
    static let trace = """
         qemu-system-x86-100 [001] d.... 1.000000: kvm_exit: vcpu 0 reason HLT rip 0xffffffff8113b1f9 info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000
         qemu-system-x86-100 [001] d.... 1.000050: kvm_entry: vcpu 0, rip 0xffffffff8113b1f9
         qemu-system-x86-100 [001] d.... 1.100000: kvm_exit: vcpu 0 reason IO_INSTRUCTION rip 0xffffffff81001234 info1 0x0000000000700008 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000
         qemu-system-x86-100 [001] ..... 1.100010: kvm_pio: pio_write at 0x70 size 1 count 1 val 0x8f
         qemu-system-x86-100 [001] ..... 1.100020: kvm_userspace_exit: reason KVM_EXIT_IO (2)
         qemu-system-x86-100 [001] d.... 1.102500: kvm_entry: vcpu 0, rip 0xffffffff81001236
         qemu-system-x86-100 [001] d.... 1.200000: kvm_exit: vcpu 0 reason HLT rip 0xffffffff8113b1f9 info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000
         qemu-system-x86-100 [001] d.... 1.201000: kvm_entry: vcpu 0, rip 0xffffffff8113b1f9

        """

    static func report(threshold: UInt64?, limit: Int = 10_000) throws -> ExitsReport {
        var o = ExitAnalysisOptions()
        o.thresholdNs = threshold
        o.thresholdListLimit = limit
        return try KVMExitTraceReader.analyze(MemoryByteSource(Self.trace), options: o)
    }

    @Test func everyExitOverTheThresholdInTraceOrder() throws {
        let t = try #require(try Self.report(threshold: 1_000_000).overThreshold)
        #expect(t.thresholdNs == 1_000_000 && t.count == 2)
        #expect(t.exits.map(\.reason) == ["IO_INSTRUCTION", "HLT"])          // trace order, not slowest first
        #expect(t.exits.map(\.latencyNs) == [2_500_000, 1_000_000])          // "at least": 1 ms itself is in
        let io = t.exits[0]
        #expect(io.rip == 0xffffffff81001234 && io.info1 == 0x700008 && io.vcpu == 0 && io.tid == 100)
        #expect(io.context.contains { $0.contains("kvm_pio: pio_write at 0x70") })
        #expect(io.context.contains { $0.hasPrefix("> ") && $0.contains("kvm_entry") })
        let text = ExitsTextRenderer.render(try Self.report(threshold: 1_000_000), style: .plain, options: .init())
        #expect(text.contains("Exits of 1.00ms or more: 2"))
        #expect(text.contains("IO_INSTRUCTION  rip 0xffffffff81001234 info1 0x700008"))
    }

    /// All counted, the first N listed; without --than there is no such section (and null in JSON).
    @Test func countedBeyondTheListAndAbsentWithoutThan() throws {
        let t = try #require(try Self.report(threshold: 1, limit: 1).overThreshold)
        #expect(t.count == 3 && t.exits.count == 1)
        #expect(try Self.report(threshold: nil).overThreshold == nil)
        let json = try JSONReport.encode(try Self.report(threshold: nil))
        #expect(json.contains("\"overThreshold\" : null"))
    }
}
