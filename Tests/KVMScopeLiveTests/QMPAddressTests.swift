import XCTest
@testable import KVMScopeLive

final class QMPAddressTests: XCTestCase {
    func testForms() throws {
        XCTAssertEqual(try QMPAddress(parsing: "unix:/run/vm1.qmp,server=on,wait=off"), .unix(path: "/run/vm1.qmp"))
        XCTAssertEqual(try QMPAddress(parsing: "/run/vm1.qmp"), .unix(path: "/run/vm1.qmp"))
        XCTAssertEqual(try QMPAddress(parsing: "tcp:127.0.0.1:4444"), .tcp(host: "127.0.0.1", port: 4444))
        XCTAssertEqual(try QMPAddress(parsing: "tcp:[::1]:4444,server"), .tcp(host: "::1", port: 4444))
        XCTAssertThrowsError(try QMPAddress(parsing: "tcp:host:99999"))
        XCTAssertThrowsError(try QMPAddress(parsing: "unix:"))
        XCTAssertThrowsError(try QMPAddress(parsing: "vm1"))
    }
}
