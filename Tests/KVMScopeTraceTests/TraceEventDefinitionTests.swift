import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeTrace

@Suite struct TraceEventDefinitionTests {
    @Test func parsesQEMUDefinitionLines() throws {
        let p = TraceEventsFileParser(text: """
        # comment
        virtio_blk_handle_write(void *vdev, void *req, uint64_t sector, size_t nsectors) "vdev %p req %p sector %"PRIu64" nsectors %zu"

        disable qxl_io_write_vga(int qid, const char *mode, uint32_t addr, uint32_t val) "%d %s addr=%u val=%u"
        vcpu guest_cpu_enter(void)
        pflash_data_write(uint64_t offset, unsigned size, uint32_t value, uint64_t counter) "data offset:0x%04"PRIx64" size:%u value:0x%04x counter:0x%016"PRIx64
        scsi_disk_emulate_command_SEEK_10(uint64_t lba) "Seek(10) (sector %" PRId64 ")"
        v9fs_getlock(uint16_t tag, uint8_t id, int32_t fid, uint8_t type, uint64_t start, uint64_t length)"tag %d id %d fid %d type %d start %"PRIu64" length %"PRIu64
        this is not a definition
        broken_args(int, int b) "x"
        """)
        #expect(p.entries.map(\.name) == ["virtio_blk_handle_write", "qxl_io_write_vga", "guest_cpu_enter",
                                          "pflash_data_write", "scsi_disk_emulate_command_SEEK_10", "v9fs_getlock"])
        #expect(p.badLines == [9, 10])
        let w = p.entries[0]
        #expect(w.arguments.map(\.name) == ["vdev", "req", "sector", "nsectors"])
        #expect(w.arguments.map(\.type) == ["void *", "void *", "uint64_t", "size_t"])
        #expect(w.arguments.map(\.kind) == [.pointer, .pointer, .unsigned, .unsigned])
        #expect(p.entries[1].properties == ["disable"])
        #expect(p.entries[1].arguments[1].kind == .string)
        #expect(p.entries[2].properties == ["vcpu"] && p.entries[2].arguments.isEmpty && p.entries[2].rawFormat.isEmpty)
    }

    @Test func expandsFormatMacros() {
        #expect(TraceFormatString.expand(#""vdev %p req %p sector %"PRIu64" nsectors %zu""#)
                == "vdev %p req %p sector %u nsectors %zu")
        #expect(TraceFormatString.expand(#""data offset:0x%04"PRIx64" counter:0x%016"PRIx64"#)
                == "data offset:0x%04x counter:0x%016x")
        #expect(TraceFormatString.expand(#""Seek(10) (sector %" PRId64 ")""#) == "Seek(10) (sector %d)")
        #expect(TraceFormatString.expand(#""a\"b\\c""#) == #"a"b\c"#)
        #expect(TraceFormatString.expand(#""translate %p", "execute %d""#) == "execute %d")
    }

    @Test func argumentKindsFollowTracetool() {
        #expect(TraceArgument(type: "const char *", name: "s").kind == .string)
        #expect(TraceArgument(type: "char*", name: "s").kind == .string)
        #expect(TraceArgument(type: "const char **", name: "s").kind == .pointer)   // two stars: not a string
        #expect(TraceArgument(type: "const void *", name: "p").kind == .pointer)
        let int = TraceArgument(type: "int", name: "ret")
        #expect(int.kind == .signed && int.bitWidth == 32)
        let u8 = TraceArgument(type: "uint8_t", name: "val")
        #expect(u8.kind == .unsigned && u8.bitWidth == 8)
        #expect(TraceArgument(type: "ssize_t", name: "n").kind == .signed)
        #expect(TraceArgument(type: "unsigned int", name: "n").kind == .unsigned)
    }

    @Test func unscannableFormatsAreMarked() {
        let ok = TraceEventDefinition(id: 0, name: "a", properties: [], arguments: [TraceArgument(type: "int", name: "x")],
                                      rawFormat: #""x %d""#, origin: "t")
        #expect(ok.pieces != nil)
        let star = TraceEventDefinition(id: 0, name: "b", properties: [], arguments: [TraceArgument(type: "int", name: "x")],
                                        rawFormat: #""x %*d""#, origin: "t")
        #expect(star.pieces == nil)
        let mismatch = TraceEventDefinition(id: 0, name: "c", properties: [], arguments: [TraceArgument(type: "int", name: "x")],
                                            rawFormat: #""x %d %d""#, origin: "t")
        #expect(mismatch.pieces == nil)
    }

    @Test func bundledCatalogHasEverySignatureOfTheAnalysedEvents() {
        let c = TraceEventCatalog.bundled
        for name in VirtioBlkRequestTracker.eventNames {
            #expect(!c.definitions(named: name).isEmpty, "\(name)")
        }
        let rw = c.definitions(named: "virtio_blk_rw_complete")
        #expect(rw.map(\.format) == ["vdev %p req %p ret %d", "req %p ret %d"])
        #expect(c.definitions(named: "virtio_blk_handle_read").count == 2)
        #expect(c.definitions(named: "runstate_set").map(\.arguments.count) == [4, 1])
        #expect(c.badLines == 0)
        // Every bundled definition can be scanned back from text.
        #expect(c.definitions.allSatisfy { $0.pieces != nil })
    }

    @Test func installedDefinitionsLoadWhenPresent() throws {
        let path = "/usr/share/qemu/trace-events-all"
        guard FileManager.default.fileExists(atPath: path) else { return }
        let c = try TraceEventCatalog.load(installedPaths: [path])
        #expect(c.sources.count == 2)
        #expect(c.sources[0].hasPrefix(path))
        #expect(c.badLines == 0)
        #expect(c.names.count > 4000)
        // The installed (7.2) signature is primary; the bundled old ones are alternatives.
        #expect(c.definition(named: "virtio_blk_rw_complete")?.origin.hasPrefix(path) == true)
        #expect(c.definitions(named: "virtio_blk_rw_complete").count == 2)
        // Nearly every definition of QEMU's ~5000 can be scanned back (the rest use `%*` etc.).
        let scannable = c.definitions.filter { $0.pieces != nil }.count
        #expect(Double(scannable) / Double(c.count) > 0.99)
    }

    @Test func missingOrEmptyEventsFileIsAClearError() throws {
        #expect(throws: KVMScopeError.cannotOpen(path: "/nonexistent/trace-events", reason: "No such file or directory")) {
            _ = try TraceEventCatalog.load(eventsFile: "/nonexistent/trace-events")
        }
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("kvmscope-empty-\(getpid()).events")
        try "just text\n".write(to: tmp, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: tmp) }
        #expect(throws: TraceInputError.noEventDefinitions(path: tmp.path)) { _ = try TraceEventCatalog.load(eventsFile: tmp.path) }
    }

    @Test func patternsMatchLikeQEMUTrace() {
        #expect(TracePattern.matches("virtio_blk_*", "virtio_blk_rw_complete"))
        #expect(!TracePattern.matches("virtio_blk_*", "virtqueue_pop"))
        #expect(TracePattern.matches("*complete", "virtio_blk_req_complete"))
        #expect(TracePattern.matches("virtqueue_pop", "virtqueue_pop"))
        #expect(!TracePattern.matches("virtqueue_pop", "virtqueue_pops"))
        #expect(TracePattern.matches("*", "x"))
    }

    @Test func nameTableFindsNamesByBytes() {
        let names = (0..<5000).map { "event_\($0)_x" } + ["virtio_blk_rw_complete", "virtio_blk_req_complete", "a"]
        let table = TraceEventNameTable(names)
        for (i, n) in names.enumerated() {
            let bytes = Array(n.utf8)
            #expect(bytes.withUnsafeBufferPointer { table.lookup($0.baseAddress!, $0.count) } == i)
        }
        for miss in ["virtio_blk_rw_complet", "virtio_blk_rw_completeX", "b", "event_5000_x"] {
            let bytes = Array(miss.utf8)
            #expect(bytes.withUnsafeBufferPointer { table.lookup($0.baseAddress!, $0.count) } == -1)
        }
    }
}
