import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
import KVMScopeDrops
@testable import KVMScopeTracefs

@Suite struct KernelSymbolTableTests {
    func table(_ text: String) throws -> KernelSymbolTable {
        try KernelSymbolTable(parsing: MemoryByteSource(text, maxChunk: 13))
    }

    @Test func resolvesLikePercentPS() throws {
        // The kallsyms lines of the 6.18 capture: same text as that kernel's %pS printed.
        let t = try table(try DropFixtures.text("kallsyms-excerpt-6.18.txt"))
        #expect(t.lookup(0xffffffff82046f4c)?.text == "__udp4_lib_rcv+0x4bc/0xd00")
        #expect(t.lookup(0xffffffff81f63638)?.text == "nft_do_chain+0x3e8/0x610")
        #expect(t.lookup(0xffffffff82107981)?.text == "__udp6_lib_rcv+0xe1/0xb00")
        #expect(t.lookup(0xffffffff82046a90)?.offset == 0)
        #expect(t.lookup(0xffffffff81000000) == nil)            // before the first symbol
        #expect(!t.addressesHidden)
        #expect(t.count == 6)
    }

    @Test func modulesAliasesAndGaps() throws {
        let t = try table("""
        ffffffff81000000 T _stext
        ffffffff81000000 T _text
        ffffffff81000100 t helper
        ffffffff81000200 T _etext
        0000000000000000 A fixed_percpu_data
        ffffffffc0a0c000 t nft_do_chain\t[nf_tables]
        ffffffffc0a0c400 t nft_rule_x\t[nf_tables]
        ffffffffc0b00000 t tun_net_xmit\t[tun]
        garbage line
        """)
        #expect(t.skippedLines == 1)
        #expect(t.lookup(0xffffffff81000010)?.name == "_stext")          // first alias, as the kernel picks
        #expect(t.lookup(0xffffffff81000010)?.size == 0x100)
        let m = try #require(t.lookup(0xffffffffc0a0c010))
        #expect(m.text == "nft_do_chain+0x10/0x400 [nf_tables]")
        #expect(t.lookup(0xffffffffc0b00008)?.module == "tun")
        #expect(t.lookup(0xffffffffc0b00008)?.size == nil)                // last symbol
        // Far past _etext, in the gap before the modules: not attributed to _etext.
        #expect(t.lookup(0xffffffff90000000) == nil)
        #expect(t.ranges(named: "nft_do_chain") == [0xffffffffc0a0c000..<0xffffffffc0a0c400])
        #expect(t.ranges(named: "helper") == [0xffffffff81000100..<0xffffffff81000200])
        #expect(t.ranges(named: "nope").isEmpty)
    }

    @Test func kptrRestrictZerosAreDetected() throws {
        let t = try table("""
        0000000000000000 T _stext
        0000000000000000 t __udp4_lib_rcv
        0000000000000000 t nft_do_chain\t[nf_tables]
        """)
        #expect(t.addressesHidden)
        #expect(t.lookup(0xffffffff82046f4c) == nil)
    }

    @Test func emptyInputIsAnError() {
        #expect(throws: TracefsError.emptySymbolTable(source: "<memory>")) { try KernelSymbolTable(parsing: MemoryByteSource("")) }
    }

    @Test func thisMachinesKallsymsWhenReadable() throws {
        guard geteuid() == 0, FileManager.default.isReadableFile(atPath: "/proc/kallsyms") else { return }
        let t = try KernelSymbolTable.load()
        guard !t.addressesHidden else { return }
        #expect(t.count > 10_000)
        let r = try #require(t.ranges(named: "__udp4_lib_rcv").first)
        let s = try #require(t.lookup(r.lowerBound + 0x10))
        #expect(s.name == "__udp4_lib_rcv")
        #expect(s.offset == 0x10)
        #expect(s.size == UInt64(r.count))
    }
}
