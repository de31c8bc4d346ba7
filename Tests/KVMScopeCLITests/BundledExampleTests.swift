import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope

@Suite struct BundledExampleTests {
    /// The binary's examples must be the lab's captures byte for byte; when this fails,
    /// run `lab/bundle-examples` after `lab/regenerate`.
    @Test func bundledExamplesMatchTheLabCaptures() throws {
        // lab/run's captures; libvirt-fs-full (lab/libvirt-capture) has its trace in libvirt-qemu.log.
        let names = LabFixtures.scenarios(with: "console.log").filter { FileManager.default.fileExists(atPath: LabFixtures.path($0, "trace.log")) }
        #expect(BundledExample.all.map(\.name) == names)
        for example in BundledExample.all {
            for (file, bytes) in example.files {
                let onDisk = try Data(contentsOf: URL(fileURLWithPath: LabFixtures.path(example.name, file)))
                #expect(Array(onDisk) == bytes, "\(example.name)/\(file) differs: rerun lab/bundle-examples")
            }
            #expect(example.files["console.log"] != nil && example.files["trace.log"] != nil && example.files["qmp.jsonl"] != nil)
            #expect(!example.summary.isEmpty && example.summary != example.name)
        }
    }

    @Test func streamReadsTheBytes() throws {
        let e = try #require(BundledExample.named("write-eio"))
        let (events, skipped) = try QMPEventReader.readAll(try #require(e.stream("qmp.jsonl")))
        #expect(skipped == 0)
        #expect(events.contains { $0.name == "BLOCK_IO_ERROR" })
        #expect(BundledExample.named("no-such") == nil)
    }
}
