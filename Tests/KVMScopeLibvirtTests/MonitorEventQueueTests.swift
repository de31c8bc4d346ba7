import Foundation
import Testing
import KVMScopeLive
@testable import KVMScopeLibvirt

@Suite struct MonitorEventQueueTests {
    private func event(_ i: Int, pad: Int = 0) -> QMPMessage {
        PassthroughJSON.event(name: "E\(i)", seconds: Int64(i), microseconds: 0, details: pad > 0 ? "{\"p\":\"\(String(repeating: "x", count: pad))\"}" : nil)!
    }

    private func readable(_ fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 0) == 1
    }

    @Test func eventsComeOutInTheOrderTheyCameAndThePipeSaysSo() throws {
        let q = try MonitorEventQueue(address: "libvirt:t", limitBytes: 1 << 20)
        #expect(!readable(q.pollDescriptor))
        #expect(try q.take(waiting: 0).isEmpty)
        for i in 0..<500 { q.push(event(i)) }
        #expect(readable(q.pollDescriptor))
        let got = try q.take(waiting: 0)
        #expect(got.map { $0.eventName } == (0..<500).map { "E\($0)" })
        #expect(!readable(q.pollDescriptor))
    }

    @Test func anEventFromAnotherThreadEndsTheWait() throws {
        let q = try MonitorEventQueue(address: "libvirt:t", limitBytes: 1 << 20)
        let pusher = Thread { usleep(20_000); q.push(PassthroughJSON.event(name: "LATE", seconds: 1, microseconds: 0, details: nil)!) }
        pusher.start()
        var got: [QMPMessage] = []
        for _ in 0..<100 where got.isEmpty { got = try q.take(waiting: 1) }
        #expect(got.map { $0.eventName } == ["LATE"])
    }

    @Test func pastTheBoundEventsAreRefusedNotHeld() throws {
        let one = event(0, pad: 100).line.count
        let q = try MonitorEventQueue(address: "libvirt:t", limitBytes: one * 3)
        for i in 0..<10 { q.push(event(i, pad: 100)) }
        // The three that fit, then the overflow is said (and stays said).
        #expect(try q.take(waiting: 0).map { $0.eventName } == ["E0", "E1", "E2"])
        #expect(readable(q.pollDescriptor))
        #expect(throws: LibvirtError.eventsOverflowed(address: "libvirt:t", dropped: 7, limitBytes: one * 3)) { _ = try q.take(waiting: 0) }
        q.push(event(11))
        #expect(throws: LibvirtError.self) { _ = try q.take(waiting: 0) }
    }

    @Test func afterTheEndTheQueuedEventsThenClosed() throws {
        let q = try MonitorEventQueue(address: "libvirt:t", limitBytes: 1 << 20)
        q.push(event(1)); q.push(event(2))
        q.end("the domain stopped")
        q.push(event(3))   // after the end: not a stream any more
        #expect(q.hasEnded)
        #expect(try q.take(waiting: 0).map { $0.eventName } == ["E1", "E2"])
        #expect(readable(q.pollDescriptor))   // a poller wakes up to see the end
        #expect(throws: QMPError.closed(address: "libvirt:t")) { _ = try q.take(waiting: 0) }
        #expect(throws: QMPError.closed(address: "libvirt:t")) { _ = try q.take(waiting: 5) }
    }
}
