import Foundation
import KVMScopeCore
import KVMScopeDrops

/// Fixtures of `kvmscope drops`: real captures made on the 6.18 VM by
/// Fixtures/drops/capture-real.sh (3 UDP/IPv4 NO_SOCKET, 2 NETFILTER_DROP, 2 UDP/IPv6 NO_SOCKET),
/// and lines built from each historical kernel print format.
public enum DropFixtures {
    public static let dir = TestFixtures.dir.appendingPathComponent("drops")
    public static func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
    public static func text(_ name: String) throws -> String { try String(contentsOfFile: path(name), encoding: .utf8) }
    public static func bytes(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: dir.appendingPathComponent(name))) }
}

/// Every drop in `text`, read in small chunks so records straddle chunk boundaries.
public func readDrops(_ text: String, parser: KfreeSkbLineParser = KfreeSkbLineParser()) throws -> ([DropEvent], DropTraceStats) {
    var reader = DropTraceReader(parser: parser)
    var events: [DropEvent] = []
    try reader.read(MemoryByteSource(text, maxChunk: 97)) { events.append($0) }
    return (events, reader.stats)
}
