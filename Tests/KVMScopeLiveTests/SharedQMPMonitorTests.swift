import XCTest
@testable import KVMScopeLive

/// Two clients on one QMP connection (watch polling, a capture recording): commands of both
/// answered, every event given to both, in order; the connection outlives a client that leaves.
final class SharedQMPMonitorTests: XCTestCase {
    static let greeting = QMPSocketMonitorTests.greeting

    /// A monitor whose peer sends `script` and then hangs up (reads see the end after it).
    func shared(_ script: String, maxQueued: Int = SharedQMPMonitor.defaultMaxQueuedEvents, keepOpen: Bool = false) throws -> (SharedQMPMonitor, Int32) {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        _ = (Self.greeting + #"{"return": {}, "id": "kvmscope-1"}"# + "\r\n" + script).withCString { send(fds[1], $0, strlen($0), 0) }
        if !keepOpen { shutdown(fds[1], Int32(SHUT_WR)) }
        addTeardownBlock { close(fds[1]) }
        return (SharedQMPMonitor(try QMPSocketMonitor(connectedDescriptor: fds[0], address: "test", greetingTimeout: 1), maxQueuedEvents: maxQueued), fds[1])
    }

    static func event(_ name: String, _ us: Int) -> String {
        #"{"timestamp": {"seconds": 1, "microseconds": \#(us)}, "event": "\#(name)"}"# + "\r\n"
    }

    func testEveryClientGetsEveryEventAndEachItsReplies() throws {
        let (s, _) = try shared(Self.event("BLOCK_IO_ERROR", 1)
            + #"{"return": {"status": "paused", "running": false}, "id": "kvmscope-2"}"# + "\r\n"
            + Self.event("STOP", 2)
            + #"{"return": [], "id": "kvmscope-3"}"# + "\r\n"
            + Self.event("RESUME", 3))
        let watch = s.client(), capture = s.client()
        XCTAssertEqual(watch.qemuVersion, "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)")
        let status = try watch.execute("query-status", arguments: nil, timeout: 1) as? [String: Any]
        XCTAssertEqual(status?["status"] as? String, "paused")
        let block = try capture.execute("query-block", arguments: nil, timeout: 1) as? [Any]
        XCTAssertEqual(block?.count, 0, "the capture's command gets its own reply")
        // RESUME came after the last reply: it is read by whichever client asks first, for both.
        XCTAssertEqual(try capture.takeEvents(waiting: 0.5).map(\.eventName), ["BLOCK_IO_ERROR", "STOP", "RESUME"])
        XCTAssertEqual(try watch.takeEvents(waiting: 0).map(\.eventName), ["BLOCK_IO_ERROR", "STOP", "RESUME"],
                       "the events another client read off the socket are this one's too")
        XCTAssertThrowsError(try watch.takeEvents(waiting: 0.2)) { XCTAssertEqual($0 as? QMPError, .closed(address: "test")) }
        XCTAssertThrowsError(try capture.takeEvents(waiting: 0)) { XCTAssertEqual($0 as? QMPError, .closed(address: "test")) }
    }

    /// A client waiting for events is woken when another client reads them off the socket.
    func testAWaitingClientIsWokenByEventsAnotherRead() throws {
        let (s, peer) = try shared("", keepOpen: true)
        let watch = s.client()
        nonisolated(unsafe) let capture = s.client()
        let got = expectation(description: "the capture's wait returns the event")
        DispatchQueue.global().async {
            var names: [String?] = []
            let end = Date().addingTimeInterval(5)
            while names.isEmpty, Date() < end { names = (try? capture.takeEvents(waiting: 5))?.map(\.eventName) ?? [] }
            XCTAssertEqual(names, ["STOP"])
            got.fulfill()
        }
        Thread.sleep(forTimeInterval: 0.1)
        _ = Self.event("STOP", 9).withCString { send(peer, $0, strlen($0), 0) }
        var mine: [String?] = []
        for _ in 0..<50 where mine.isEmpty { mine = try watch.takeEvents(waiting: 0.1).map(\.eventName) }
        XCTAssertEqual(mine, ["STOP"])
        wait(for: [got], timeout: 10)
    }

    /// The connection closes with its last client, not before.
    func testTheConnectionOutlivesAClientThatLeaves() throws {
        let (s, _) = try shared(#"{"return": {}, "id": "kvmscope-2"}"# + "\r\n")
        let watch = s.client(), capture = s.client()
        watch.close()
        XCTAssertThrowsError(try watch.execute("query-status", arguments: nil, timeout: 1)) { XCTAssertEqual($0 as? QMPError, .closed(address: "test")) }
        XCTAssertNotNil(try capture.execute("query-status", arguments: nil, timeout: 1), "the capture goes on after watch's client left")
        XCTAssertEqual(s.clientCount, 1)
        capture.close()
        XCTAssertEqual(s.clientCount, 0)
    }

    /// A client that never reads holds at most maxQueuedEvents: the oldest go, counted.
    func testAClientThatDoesNotReadHoldsABoundedQueue() throws {
        let (s, peer) = try shared("", maxQueued: 2, keepOpen: true)
        let reader = s.client(), idle = s.client()
        var names: [String?] = []
        for n in 1...5 {
            _ = Self.event("E\(n)", n).withCString { send(peer, $0, strlen($0), 0) }
            var got: [String?] = []
            for _ in 0..<50 where got.isEmpty { got = try reader.takeEvents(waiting: 0.1).map(\.eventName) }
            names += got
        }
        XCTAssertEqual(names, ["E1", "E2", "E3", "E4", "E5"])
        XCTAssertEqual(try idle.takeEvents(waiting: 0).map(\.eventName), ["E4", "E5"])
        XCTAssertEqual(s.droppedEvents(of: idle), 3)
        XCTAssertEqual(s.droppedEvents(of: reader), 0)
    }
}
