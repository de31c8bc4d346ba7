import Foundation
import Testing
@testable import KVMScope
@testable import KVMScopeNBD

/// Offsets and lengths straight from the wire: every command with an out-of-range field gets an
/// NBD error reply and the same connection keeps working (issue 17: a FLUSH with offset >= 2^63
/// used to trap the whole server in `Int64(offset)`).
@Suite(.serialized) struct NBDRequestRangeTests {
    typealias RawClient = NBDHostileClientTests.RawClient

    @Test func flushWithOffsetOrLengthSetGetsEINVALAndTheServerGoesOn() throws {
        let s = try TestServer(size: 1 << 20)
        let c = try RawClient(port: s.port)
        #expect(c.negotiate())
        let flush = NBD.Command.flush.rawValue
        c.send(c.request(flush, offset: 1 << 63, length: 0, cookie: 1))
        #expect(c.simpleReplyError() == 22)
        c.send(c.request(flush, offset: UInt64.max, length: UInt32.max, cookie: 2))
        #expect(c.simpleReplyError() == 22)
        // Reserved fields set but in range: still malformed (proto.md: MUST be zero).
        c.send(c.request(flush, offset: 4096, length: 512, cookie: 3))
        #expect(c.simpleReplyError() == 22)
        c.send(c.request(flush, offset: 0, length: 0, cookie: 4))
        #expect(c.simpleReplyError() == 0)
        // The other commands at offsets beyond Int64: errors, no trap.
        c.send(c.request(NBD.Command.read.rawValue, offset: 1 << 63, length: 512))
        #expect(c.simpleReplyError() == 22)
        c.send(c.request(NBD.Command.writeZeroes.rawValue, offset: 1 << 63, length: 512))
        #expect(c.simpleReplyError() == 28)
        c.send(c.request(NBD.Command.trim.rawValue, offset: (1 << 63) - 1, length: UInt32.max))
        #expect(c.simpleReplyError() == 22)
        c.send(c.request(NBD.Command.write.rawValue, offset: UInt64.max - 100, length: 512) + [UInt8](repeating: 1, count: 512))
        #expect(c.simpleReplyError() == 28)
        c.send(c.request(NBD.Command.cache.rawValue, offset: 1 << 63, length: 512))
        #expect(c.simpleReplyError() == 22)
        c.send(c.request(NBD.Command.blockStatus.rawValue, offset: UInt64.max, length: UInt32.max))
        #expect(c.simpleReplyError() == 22)
        // Same connection, still serving.
        c.send(c.request(NBD.Command.read.rawValue, offset: 0, length: 512))
        #expect(c.simpleReplyError() == 0)
        #expect(c.recv(512) == [UInt8](repeating: 0, count: 512))
        // A disconnect with garbage in its (must-be-zero) fields just disconnects.
        c.send(c.request(NBD.Command.disconnect.rawValue, offset: 1 << 63, length: UInt32.max))
        #expect(c.closedByServer())
        // Another client is served.
        let d = try RawClient(port: s.port)
        #expect(d.negotiate())
        d.send(d.request(NBD.Command.read.rawValue, offset: (1 << 20) - 512, length: 512))
        #expect(d.simpleReplyError() == 0)
        #expect(s.observer.violations.isEmpty)
    }
}
