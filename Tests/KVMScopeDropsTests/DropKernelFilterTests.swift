import Foundation
import Testing
import KVMScope
import KVMScopeTestSupport
@testable import KVMScopeDrops
@testable import KVMScopeTracefs

/// The tracefs filter expression `drops` writes into events/skb/kfree_skb/filter, built from this
/// kernel's own reason table and kallsyms (real 6.18 files).
@Suite struct DropKernelFilterTests {
    static func format() throws -> TracepointFormat {
        try TracepointFormat.parse(DropFixtures.text("kfree_skb-format-6.18.txt"))
    }
    static func symbols() throws -> KernelSymbolTable {
        try KernelSymbolTable.load(path: DropFixtures.path("kallsyms-excerpt-6.18.txt"))
    }

    @Test func nothingAskedIsNoFilter() throws {
        #expect(try DropKernelFilter.expression(reasons: [], protocols: [], locations: [], format: Self.format(), symbols: nil) == nil)
    }

    @Test func reasonsUseThisKernelsNumbers() throws {
        let e = try DropKernelFilter.expression(reasons: ["NO_SOCKET", "netfilter_drop"], protocols: [], locations: [],
                                                format: Self.format(), symbols: nil)
        #expect(e == "reason == 3 || reason == 12")
    }

    @Test func groupsAreAndedAndFunctionsBecomeAddressRanges() throws {
        let e = try DropKernelFilter.expression(reasons: ["NO_SOCKET"], protocols: ["ipv4"], locations: ["__udp4_lib_rcv"],
                                                format: Self.format(), symbols: Self.symbols())
        let ranges = try Self.symbols().ranges(named: "__udp4_lib_rcv")
        let r = try #require(ranges.first)
        #expect(e == "(reason == 3) && (protocol == 2048) && ((location >= 0x\(String(r.lowerBound, radix: 16)) && location < 0x\(String(r.upperBound, radix: 16))))")
    }

    @Test func whatTheKernelCannotFilterIsOneClearError() throws {
        #expect(throws: DropsError.unknownReason(name: "NO_SUCH_REASON", known: try Self.format().symbolTables["reason"]?.count ?? 0)) {
            _ = try DropKernelFilter.expression(reasons: ["NO_SUCH_REASON"], protocols: [], locations: [], format: Self.format(), symbols: nil)
        }
        #expect(throws: DropsError.locationNeedsAddresses) {
            _ = try DropKernelFilter.expression(reasons: [], protocols: [], locations: ["tcp_v4_rcv"], format: Self.format(), symbols: nil)
        }
        #expect(throws: DropsError.unknownFunction(name: "no_such_function")) {
            _ = try DropKernelFilter.expression(reasons: [], protocols: [], locations: ["no_such_function"],
                                                format: Self.format(), symbols: Self.symbols())
        }
        let noReasons = try TracepointFormat.parse(DropFixtures.text("consume_skb-format-6.18.txt"))
        #expect(throws: DropsError.reasonsNeedNewerKernel) {
            _ = try DropKernelFilter.expression(reasons: ["NO_SOCKET"], protocols: [], locations: [], format: noReasons, symbols: nil)
        }
    }
}
