import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope

/// `kvmscope guest` on a guest whose empty CD-ROM was read at boot: no medium, not a failure.
@Suite struct GuestNoMediumCLITests {
    typealias F = GuestFixtures

    @Test func emptyCDROMIsNotADiskFailure() throws {
        let r = try CLIRunner.run(["guest", F.fixture("empty-cdrom-6.1.log")])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("No disk errors in"))
        #expect(r.stdout.contains("sr0: no medium in the drive (2 reads refused: Medium not present) — not a failure"))
        #expect(!r.stdout.contains("failed request"))
        let j = try CLIRunner.run(["guest", "--json", F.fixture("empty-cdrom-6.1.log")])
        #expect(j.status == 0)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any])
        #expect(doc["hasDiskErrors"] as? Bool == false)
        let devices = try #require(doc["devices"] as? [[String: Any]])
        let sr0 = try #require(devices.first { $0["name"] as? String == "sr0" })
        #expect(sr0["hasErrors"] as? Bool == false)
        #expect(sr0["totalBlockErrors"] as? Int == 0)
        let m = try #require(sr0["noMedium"] as? [String: Any])
        #expect(m["count"] as? Int == 2)
        #expect(m["firstLine"] as? Int == 10)
        #expect(m["blockErrors"] as? Int == 2)
        #expect(m["bufferErrors"] as? Int == 1)
        // Every device has the key, null when the drive never lacked a medium.
        let vda = try #require(devices.first { $0["name"] as? String == "vda" })
        #expect(vda.keys.contains("noMedium"))
        #expect(vda["noMedium"] is NSNull)
    }
}
