import Foundation
import Testing
@testable import KVMScopeHost
import KVMScopeTestSupport

/// Saved `findmnt --json` / `lsblk --json` (real util-linux 2.38 output, Tests/Fixtures/host):
/// which host device holds an image, offline.
@Suite struct HostMountTableTests {
    static func table(_ files: [String]) throws -> HostMountTable {
        var t = HostMountTable()
        for f in files { try HostMountTableReader.read(FileByteSource(path: TestFixtures.dir.appendingPathComponent("host/\(f)").path), into: &t) }
        return t
    }

    @Test(arguments: [["findmnt-loop0.json"], ["lsblk-loop0.json"], ["findmnt-loop0.json", "lsblk-loop0.json"]])
    func imageOnTheLoopMountIsOnLoop0(_ files: [String]) throws {
        let t = try Self.table(files)
        let img = try #require(t.locate("/tmp/kvmscope-fixture/hostext4/disk.img", from: "saved"))
        #expect(img.device == "loop0" && img.disk == "loop0" && img.majorMinor == "7:0" && img.from == "saved")
        #expect(img.extents.isEmpty && img.extentsUnavailable != nil)
        // Anything else on the machine is on its root filesystem's disk; a prefix that is not
        // a path component is not the mount.
        #expect(t.locate("/work/vm/disk.img", from: "saved")?.disk == "vda")
        #expect(t.locate("/tmp/kvmscope-fixture/hostext4x/disk.img", from: "saved")?.disk == "vda")
        #expect(t.locate("relative/disk.img", from: "saved") == nil)
    }

    @Test func otherJSONAndTextAreRefused() {
        for text in ["{\"blockdevicez\": []}", "not json at all\n", "[1, 2, 3]"] {
            var t = HostMountTable()
            #expect(throws: HostMountTableReader.NotAMountTable.self) {
                try HostMountTableReader.read(MemoryByteSource(text, name: "x"), into: &t)
            }
        }
    }
}
