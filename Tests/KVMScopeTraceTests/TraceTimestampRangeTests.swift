import Foundation
import Testing
import KVMScope
import KVMScopeTestSupport
@testable import KVMScopeTrace

/// Trace timestamps that do not fit Int64 nanoseconds (or lie before 1970) are rejected where
/// they are parsed and counted in `badTimestamps`: before, they wrapped around and the in-flight
/// age (`end - start`) trapped on the overflow.
@Suite struct TraceTimestampRangeTests {
    static let vdev = "0x55d0c8a1b2c0", vq = "0x7f0907674010"

    /// A request left in flight at a wrapping stamp, then a normal one that completes later.
    static func inFlight(firstStamp: String, laterStamp: String) -> String {
        """
        1@\(firstStamp):virtqueue_pop vq \(vq) elem 0x1000 in_num 2 out_num 1
        1@\(laterStamp):virtqueue_pop vq \(vq) elem 0x2000 in_num 2 out_num 1
        1@\(laterStamp):virtio_blk_handle_read vdev \(vdev) req 0x2000 sector 8 nsectors 8

        """
    }

    @Test func textSecondsBeyondInt64NanosecondsAreRejectedNotWrapped() throws {
        for stamp in ["9223372037.000000", "9999999999999999999.999999", "9223372036.854775808"] {
            let text = Self.inFlight(firstStamp: stamp, laterStamp: "1795363362.458993")
            let r = try TraceSession.analyse(MemoryByteSource(text, name: "wrap.log"), catalog: .bundled)
            #expect(r.input.stats.badTimestamps == 1, "\(stamp)")
            #expect(r.input.stats.events == 2, "\(stamp)")
            // Tracked; with no completion event in the trace its end is unknown, not in flight.
            #expect(r.requests.outcomeUnknown == 1 && r.requests.inFlightAtEnd == 0, "\(stamp)")
        }
        // The last nanosecond that fits is still a timestamp.
        let (events, stats) = try TextTraceReaderTests.read("1@9223372036.854775:virtqueue_pop vq 0x1 elem 0x2 in_num 1 out_num 1\n")
        #expect(stats.badTimestamps == 0)
        #expect(events.first?.timestamp?.nanoseconds == 9_223_372_036_854_775_000)
    }

    @Test func systemTapNanosecondsBeyondInt64AreRejected() throws {
        let text = """
        4242@9223372036854775808 virtqueue_pop vq \(Self.vq) elem 0x1000 in_num 2 out_num 1
        4242@1753123408000010000 virtqueue_pop vq \(Self.vq) elem 0x2000 in_num 2 out_num 1

        """
        let r = try TraceSession.analyse(MemoryByteSource(text, name: "stap.log"), catalog: .bundled)
        #expect(r.input.stats.badTimestamps == 1)
        #expect(r.input.stats.events == 1)
    }

    @Test func isoStampsOutsideInt64NanosecondsAreRejected() throws {
        // Int64 nanoseconds since 1970 end in April 2262; before 1970 is no trace's wall clock.
        for stamp in ["2263-01-01T00:00:00.000000Z", "9999-12-31T23:59:59.999999Z", "0000-01-01T00:00:00Z",
                      "1969-12-31T23:59:59.999999Z"] {
            let (events, stats) = try TextTraceReaderTests.read("\(stamp) virtqueue_pop vq 0x1 elem 0x2 in_num 1 out_num 1\n")
            #expect(stats.badTimestamps == 1, "\(stamp)")
            #expect(events.isEmpty, "\(stamp)")
        }
        let (events, stats) = try TextTraceReaderTests.read("2262-04-11T23:47:16.854775Z virtqueue_pop vq 0x1 elem 0x2 in_num 1 out_num 1\n")
        #expect(stats.badTimestamps == 0)
        #expect(events.first?.timestamp?.nanoseconds == 9_223_372_036_854_775_000)
    }

    @Test func simpletraceStampsFromTwoToTheSixtyThreeAreRejected() throws {
        var w = SimpleTraceWriter()
        w.mapping(id: 0, name: "virtqueue_pop")
        w.event(id: 0, timestampNs: 1 << 63, pid: 1, [.u64(0x7f09_0767_4010), .u64(0x1000), .u64(2), .u64(1)])
        w.event(id: 0, timestampNs: UInt64.max, pid: 1, [.u64(0x7f09_0767_4010), .u64(0x3000), .u64(2), .u64(1)])
        w.event(id: 0, timestampNs: 5_000_000_000, pid: 1, [.u64(0x7f09_0767_4010), .u64(0x2000), .u64(2), .u64(1)])
        w.mapping(id: 1, name: "virtio_blk_handle_read")
        w.event(id: 1, timestampNs: 5_000_001_000, pid: 1, [.u64(0x55d0_c8a1_b2c0), .u64(0x2000), .u64(8), .u64(8)])
        let catalog = try SimpleTraceReaderTests.catalog()
        let r = try TraceSession.analyse(MemoryByteSource(w.bytes, name: "wrap.bin"), catalog: catalog)
        #expect(r.input.stats.badTimestamps == 2)
        #expect(r.input.stats.events == 2)
        #expect(r.requests.outcomeUnknown == 1 && r.requests.inFlightAtEnd == 0)
    }
}
