import XCTest
@testable import KVMScopeLive

/// The socket client against a scripted peer on a socketpair.
final class QMPSocketMonitorTests: XCTestCase {
    static let greeting = #"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}"# + "\r\n"

    func monitor(peer: String) throws -> QMPSocketMonitor {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        _ = peer.withCString { send(fds[1], $0, strlen($0), 0) }
        shutdown(fds[1], Int32(SHUT_WR))
        addTeardownBlock { close(fds[1]) }
        return try QMPSocketMonitor(connectedDescriptor: fds[0], address: "test", greetingTimeout: 1)
    }

    /// Events that arrive while a command waits are kept, in order; a message whose `event` is
    /// not a name is no event (found by fuzz-qmp-monitor); errors are QEMU's own.
    func testEventsKeptInOrderAndRepliesDecoded() throws {
        let m = try monitor(peer: Self.greeting + #"{"return": {}, "id": "kvmscope-1"}"# + "\r\n"
            + #"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}"# + "\r\n"
            + #"{"event": 5}"# + "\r\n"
            + #"{"return": {"status": "paused"}, "id": "kvmscope-2"}"# + "\r\n"
            + #"{"timestamp": {"seconds": 1, "microseconds": 3}, "event": "RESUME"}"# + "\r\n"
            + #"{"error": {"class": "CommandNotFound", "desc": "The command x has not been found"}, "id": "kvmscope-3"}"# + "\r\n")
        XCTAssertEqual(m.qemuVersion, "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)")
        let status = try m.execute("query-status", arguments: nil, timeout: 1) as? [String: Any]
        XCTAssertEqual(status?["status"] as? String, "paused")
        XCTAssertThrowsError(try m.execute("x", arguments: nil, timeout: 1)) { e in
            XCTAssertEqual(e as? QMPError, .commandNotFound(command: "x", qemuVersion: m.qemuVersion))
        }
        XCTAssertEqual(try m.takeEvents(waiting: 0).map(\.eventName), ["STOP", "RESUME"])
        XCTAssertThrowsError(try m.takeEvents(waiting: 0.1)) { XCTAssertEqual($0 as? QMPError, .closed(address: "test")) }
    }

    /// A peer that floods lines (garbage here) does not keep takeEvents reading: each call reads
    /// at most maxMessagesPerTake of them, and the event behind the flood comes a later call.
    func testAFloodIsTakenInBoundedSteps() throws {
        let flood = String(repeating: "x\r\n", count: 10_000)
        let m = try monitor(peer: Self.greeting + #"{"return": {}, "id": "kvmscope-1"}"# + "\r\n" + flood
            + #"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}"# + "\r\n")
        var calls = 0, events: [String?] = []
        while events.isEmpty, calls < 10 {
            events = try m.takeEvents(waiting: 0).map(\.eventName)
            calls += 1
        }
        XCTAssertEqual(events, ["STOP"])
        XCTAssertEqual(calls, 10_001 / QMPSocketMonitor.maxMessagesPerTake + 1)   // 3 calls of at most 4096 lines
    }

    func testAnHMPMonitorIsNotQMP() {
        XCTAssertThrowsError(try monitor(peer: "QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) ")) { e in
            guard case .notQMP = e as? QMPError else { return XCTFail("\(e)") }
        }
    }
}
