import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeFaults
@testable import KVMScopeNBD

/// WRITEs whose payloads arrive in several socket reads (each a part the handler appends to
/// the request's buffer), pipelined with READs and a FLUSH on one connection: each payload goes
/// to its own request, whole, and the requests apply in the order they came, with the rules in
/// front.
@Suite(.serialized) struct NBDPipelinedWriteTests {
    typealias RawClient = NBDHostileClientTests.RawClient
    /// Several of NIO's socket reads (at most 64 KiB each with its default receive allocator).
    static let large = 256 << 10

    /// A simple reply's error and cookie.
    static func reply(_ c: RawClient) -> (error: UInt32, cookie: UInt64)? {
        guard let r = c.recv(16) else { return nil }
        return (r[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }, r[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }

    /// Sent back to back without waiting for replies: each READ sees the WRITE before it, a
    /// rule still fails the write it matches (and nothing is written), FLUSH comes after both.
    @Test func pipelinedWritesInManyPartsApplyInOrderWithTheRules() throws {
        let n = Self.large
        // 1 MiB = sector 2048: the second write fails with EIO.
        let s = try TestServer(rules: "[inject-error]\nevent = \"none\"\niotype = \"write\"\nsector = \"2048\"\nerrno = \"5\"\n", size: 4 << 20)
        let c = try RawClient(port: s.port)
        #expect(c.negotiate())
        let write = NBD.Command.write.rawValue, read = NBD.Command.read.rawValue
        c.send(c.request(write, offset: 0, length: UInt32(n), cookie: 1) + [UInt8](repeating: 0x11, count: n)
               + c.request(read, offset: 0, length: UInt32(n), cookie: 2)
               + c.request(write, offset: 0, length: UInt32(n), cookie: 3) + [UInt8](repeating: 0x22, count: n)
               + c.request(read, offset: 0, length: UInt32(n), cookie: 4)
               + c.request(write, offset: 1 << 20, length: UInt32(n), cookie: 5) + [UInt8](repeating: 0x33, count: n)
               + c.request(read, offset: 1 << 20, length: UInt32(n), cookie: 6)
               + c.request(NBD.Command.flush.rawValue, offset: 0, length: 0, cookie: 7))
        let expected: [(cookie: UInt64, error: UInt32, data: UInt8?)] = [(1, 0, nil), (2, 0, 0x11), (3, 0, nil), (4, 0, 0x22),
                                                                         (5, 5, nil), (6, 0, 0), (7, 0, nil)]
        for e in expected {
            let r = try #require(Self.reply(c))
            #expect(r.cookie == e.cookie && r.error == e.error, "reply \(r) for cookie \(e.cookie)")
            if let byte = e.data { #expect(c.recv(n) == [UInt8](repeating: byte, count: n), "cookie \(e.cookie)") }
        }
        #expect(s.observer.faults.count == 1)
    }
}
