import XCTest
import KVMScopeTestSupport
@testable import KVMScopeLive

final class CaptureManifestTests: XCTestCase {
    /// A real capture.json (lab/record-live's, paths anonymised) reads back with every role.
    func testARealManifestReads() throws {
        let path = TestFixtures.path("record/capture.json")
        let m = try CaptureManifest.decode(try Data(contentsOf: URL(fileURLWithPath: path)), path: path)
        XCTAssertEqual(m.files.trace, ["trace.log"])
        XCTAssertEqual(m.files.hostKernelLog, "host-dmesg.log")
        XCTAssertEqual(m.hostKernelClock, "calibrated")
        XCTAssertTrue(m.restored)
        XCTAssertEqual(m.traceEvents.alreadyOn, ["virtio_blk_req_complete"])
    }

    /// A manifest is data from wherever the capture came from: it may not send explain to read
    /// files outside the capture directory.
    func testFilesOutsideTheCaptureAreRefused() throws {
        let path = TestFixtures.path("record/capture.json")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for bad in ["../../etc/shadow", "/etc/shadow", "..", ""] {
            let evil = text.replacingOccurrences(of: "\"qmp.jsonl\"", with: "\"\(bad)\"")
            XCTAssertThrowsError(try CaptureManifest.decode(Data(evil.utf8), path: "x")) { e in
                XCTAssertTrue("\(e)".contains("outside its directory"), "\(bad): \(e)")
            }
        }
    }
}
