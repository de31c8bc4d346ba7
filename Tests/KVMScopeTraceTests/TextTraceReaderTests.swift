import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
import KVMScope   // FormatRegistry: detection across every domain's formats
@testable import KVMScopeTrace

@Suite struct TextTraceReaderTests {
    static func read(_ text: String, catalog: TraceEventCatalog = .bundled,
                     selection: TraceEventSelection = .all, maxChunk: Int = 13) throws -> ([TraceEvent], TraceReadStats) {
        var reader = TextTraceReader(format: "qemu-log")
        var events: [TraceEvent] = []
        try reader.read(MemoryByteSource(text, maxChunk: maxChunk), decoder: TraceEventDecoder(catalog: catalog, selection: selection)) {
            events.append($0)
        }
        return (events, reader.stats)
    }

    @Test func everyPrefixStyle() throws {
        let (events, stats) = try Self.read("""
        virtio_blk_rw_complete vdev 0x55d0c8a1b2c0 req 0x55d0c8a1c000 ret -5
        14933@1795363362.458993:virtio_blk_rw_complete vdev 0x56158d96d5e0 req 0x56158d791250 ret -28
        2025-07-21T18:43:28.089797Z virtio_blk_req_complete vdev 0x1 req 0x2 status 1
        2025-07-21T20:43:28.5+02:00 virtio_blk_req_complete vdev 0x1 req 0x2 status 0
        4242@1753123408089797123 virtqueue_pop vq 0x00007f0907674010 elem 0x0000000000000000 in_num 2 out_num 1

        """)
        #expect(stats.events == 5 && stats.lines == 5 && stats.otherLines == 0)
        #expect(events[0].timestamp == nil && events[0].thread == nil)
        #expect(events[0].value(named: "ret") == .signed(-5))
        #expect(events[0].value(named: "vdev") == .pointer(0x55d0_c8a1_b2c0))
        #expect(events[1].thread == 14933)
        #expect(events[1].timestamp == TraceTimestamp(nanoseconds: 1_795_363_362_458_993_000, clock: .wall))
        #expect(events[1].value(named: "ret") == .signed(-28))
        #expect(events[2].timestamp?.nanoseconds == 1_753_123_408_089_797_000)   // 2025-07-21T18:43:28.089797Z
        #expect(events[2].value(named: "status") == .signed(1))
        #expect(events[3].timestamp?.nanoseconds == 1_753_123_408_500_000_000)   // same second, +02:00
        #expect(events[4].thread == 4242)
        #expect(events[4].timestamp?.nanoseconds == 1_753_123_408_089_797_123)
        #expect(events[4].value(named: "elem") == .pointer(0))
        #expect(events[4].value(named: "in_num") == .unsigned(2))
    }

    @Test func nilPointersStringsAndHexOfSignedValues() throws {
        let catalog = TraceEventCatalog(sources: [(#"""
        runstate_set(int current_state, const char *current_state_str, int new_state, const char *new_state_str) "current_run_state %d (%s) new_state %d (%s)"
        virtio_notify(void *vdev, void *vq) "vdev %p vq %p"
        pci_nvme_block_status(int64_t offset, int64_t bytes, int64_t pnum, int ret, bool zeroed) "offset %"PRId64" bytes %"PRId64" pnum %"PRId64" ret 0x%x zeroed %d"
        cpu_in(unsigned int addr, unsigned int val) "addr %#x value %u"
        apic_mem_readl(uint64_t addr, uint32_t val)  "0x%"PRIx64" = 0x%08x"
        """#, "test")])
        let (events, stats) = try Self.read("""
        1@1.000001:runstate_set current_run_state 9 (running) new_state 3 (io-error)
        1@1.000002:virtio_notify vdev (nil) vq 0x7f0907674010
        1@1.000003:pci_nvme_block_status offset 0 bytes 4096 pnum -1 ret 0xfffffffb zeroed 1
        1@1.000004:cpu_in addr 0x3f8 value 7
        1@1.000005:cpu_in addr 0 value 7
        1@1.000006:apic_mem_readl 0xfee00030 = 0x00050014
        """, catalog: catalog)
        #expect(stats.events == 6 && stats.malformedEvents == 0)
        #expect(events[0].string(1) == "running")
        #expect(events[0].value(named: "new_state_str") == .string("io-error"))
        #expect(events[1].value(named: "vdev") == .pointer(0))
        #expect(events[2].value(named: "ret") == .signed(-5))       // int printed with %x
        #expect(events[2].value(named: "pnum") == .signed(-1))
        #expect(events[3].value(named: "addr") == .unsigned(0x3f8))
        #expect(events[4].value(named: "addr") == .unsigned(0))
        #expect(events[5].value(named: "addr") == .unsigned(0xfee0_0030))
        #expect(events[5].value(named: "val") == .unsigned(0x0005_0014))
    }

    @Test func oldQEMUKVMSignaturesDecodeWithTheBundledAlternatives() throws {
        let (events, stats) = try Self.read("""
        virtio_blk_rw_complete req 0x1a2b3c0 ret -5
        virtio_blk_req_complete req 0x1a2b3c0 status 1
        virtio_blk_handle_write req 0x1a2b3c0 sector 2048 nsectors 8
        runstate_set new state 3
        """)
        #expect(stats.events == 4 && stats.malformedEvents == 0)
        #expect(events[0].definition.arguments.count == 2)
        #expect(events[0].value(named: "ret") == .signed(-5))
        #expect(events[3].value(named: "new_state") == .signed(3))
    }

    @Test func garbageUnknownMalformedAndOverlongLinesAreCounted() throws {
        var text = """
        qemu-system-x86_64: warning: host doesn't support requested feature: CPUID.80000001H:ECX.svm [bit 2]
        14933@1795363357.013255:blk_co_preadv blk 0x56158ce64870 bs 0x56158ce64bc0 offset 0 bytes 512 flags 0x0
        14933@1795363357.013256:virtio_blk_rw_complete vdev 0x1 req 0x2 ret banana
        some_unknown_event with args
        some_unknown_event again
        \u{0}\u{1}\u{2}binary\u{3}
        14933@1795363357.013257:virtio_blk_rw_complete vdev 0x1 req 0x2 ret 0\r

        """
        text += String(repeating: "x", count: 70_000) + "\n"
        text += "14933@1795363357.013258:virtqueue_fill vq 0x1 elem 0x2 len 1 idx 0"   // no final newline
        let (events, stats) = try Self.read(text)
        #expect(events.map(\.name) == ["virtio_blk_rw_complete", "virtqueue_fill"])
        #expect(stats.otherLines == 1)
        #expect(stats.binaryLines == 1)
        #expect(stats.unknownEvents == 3)
        #expect(stats.unknownEventNames == ["blk_co_preadv": 1, "some_unknown_event": 2])
        #expect(stats.malformedEvents == 1)
        #expect(stats.malformedEventNames == ["virtio_blk_rw_complete": 1])
        #expect(stats.overlongLines == 1)
        #expect(stats.lines == 9)
        #expect(stats.eventCounts["virtio_blk_rw_complete"] == 2)
    }

    @Test func onlySelectedEventsAreDecoded() throws {
        let (events, stats) = try Self.read("""
        1@1.0:virtqueue_pop vq 0x1 elem 0x2 in_num 1 out_num 1
        1@1.1:virtio_set_status vdev 0x1 val 0
        1@1.2:virtqueue_pop vq 0x1 elem 0x3 in_num 1 out_num 1
        """, selection: .patterns(["virtqueue_*"]))
        #expect(events.count == 2)
        #expect(stats.skippedEvents == 1)
        #expect(stats.eventCounts == ["virtqueue_pop": 2, "virtio_set_status": 1])
    }

    /// qemu-trace-stap's log tapset (scripts/tracetool/format/log_stap.py): `PID@NS name fmt`
    /// with size qualifiers stripped; SystemTap passes arguments as 64-bit values, so an `int`
    /// may come out unsign-extended (`ret 4294967291`): the C type brings it back to -5.
    @Test func systemTapLogOutputIsAnalysed() throws {
        let text = """
        4242@1753123408000000000 virtqueue_pop vq 0x00007f0907674010 elem 0x000055d0c8a1c000 in_num 1 out_num 2
        4242@1753123408000010000 virtio_blk_handle_write vdev 0x000055d0c8a1b2c0 req 0x000055d0c8a1c000 sector 2048 nsectors 8
        4242@1753123408000150000 virtio_blk_rw_complete vdev 0x000055d0c8a1b2c0 req 0x000055d0c8a1c000 ret 4294967291
        4242@1753123408000152000 virtio_blk_req_complete vdev 0x55d0c8a1b2c0 req 0x55d0c8a1c000 status 1
        4242@1753123408000154000 virtqueue_fill vq 0x7f0907674010 elem 0x55d0c8a1c000 len 1 idx 0

        """
        let r = try TraceSession.analyse(MemoryByteSource(text, name: "stap.log"), catalog: .bundled)
        #expect(r.input.stats.format == "qemu-stap-log")
        #expect(r.input.stats.events == 5)
        let f = try #require(r.failures.first)
        #expect(f.errnoName == "EIO" && f.sector == 2048 && f.cause == .backendError && f.guestStatus == "IOERR")
        #expect(f.time == 1753123408.00015)
        #expect(r.latency["write"]?.popToFill?.minUs == 154)
    }

    @Test func formatDetection() throws {
        func detect(_ bytes: [UInt8]) -> String? {
            bytes.withUnsafeBytes { raw in FormatRegistry.detect(.qemuTrace, sample: raw)?.name }
        }
        #expect(detect(Array("14933@1795363357.013255:virtio_set_status vdev 0x1 val 0\n".utf8)) == "qemu-log")
        #expect(detect(Array("virtio_set_status vdev 0x1 val 0\n".utf8)) == "qemu-log")
        #expect(detect(Array("2025-07-21T18:43:28.089797Z virtio_set_status vdev 0x1 val 0\n".utf8)) == "qemu-log")
        #expect(detect(Array("4242@1753123408089797123 virtio_set_status vdev 0x1 val 0\n".utf8)) == "qemu-stap-log")
        #expect(detect(SimpleTraceWriter.fixture()) == "qemu-simpletrace")
        #expect(detect(Array("hello world\nthis is not a trace\n".utf8)) == nil)
        #expect(detect([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + Array(repeating: 0, count: 100)) == nil)
    }

    @Test func realLabCaptureReadsCompletely() throws {
        let url = TraceTestData.lab("enospc-pause")
        let (events, stats) = try Self.read(try String(contentsOf: url, encoding: .utf8), maxChunk: 4096)
        #expect(stats.lines == 67)
        #expect(stats.otherLines == 0 && stats.malformedEvents == 0 && stats.binaryLines == 0)
        // blk_co_p* and runstate/data-plane events are QEMU's but not in the bundled set.
        #expect(stats.events + stats.unknownEvents + stats.skippedEvents == 67)
        #expect(events.filter { $0.name == "virtio_blk_rw_complete" }.map { $0.signed(2) } == [0, 0, 0, 0, -28, 0])
    }
}
