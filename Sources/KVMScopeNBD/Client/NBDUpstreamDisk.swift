import Foundation
import KVMScopeFaults

/// An upstream NBD export as the disk under a `FaultInjectingBackend`: the rules decide, the
/// upstream does the I/O. It does what the upstream announced and no more (read-only stays
/// read-only; no TRIM, WRITE_ZEROES, FUA or FLUSH it did not offer), and splits requests
/// larger than its maximum payload. One connection carries every caller's requests, pipelined
/// (`NBDClient`), so a flush sent on it covers every write completed before it, whichever
/// kvmscope client sent that write: the multi-conn promise holds for kvmscope's own export.
///
/// With a reconnect delay (QEMU's NBD client option `reconnect-delay`, block/nbd.c), losing the
/// upstream is not the end: a thread reconnects (`NBDUpstreamReconnector`), and a request that
/// failed because the connection died, or arrives while it is down, waits up to the delay for
/// the new connection and is sent again there, as QEMU's client resends its in-flight requests
/// (NBD requests are idempotent: a write sent twice writes the same bytes). Past the delay
/// requests fail with EIO at once while the reconnecting goes on. An upstream that comes back
/// with another size or other flags is another disk: it is not used.
public final class NBDUpstreamDisk: LowerDisk, @unchecked Sendable {
    /// The connection in use (a new one after each reconnection).
    public var client: NBDClient { reconnector?.current ?? first }
    public let size: Int64
    public let isReadOnly: Bool
    private let first: NBDClient
    private let reconnector: NBDUpstreamReconnector?
    /// What the upstream announced at the start; every later connection must announce the same.
    private let export: NBDClient.Export

    /// - reconnect: how to open a new connection and how long requests wait for one (nil: a lost
    ///   upstream fails every request with EIO, for good).
    public init(client: NBDClient, readOnly: Bool = false, reconnect: NBDUpstreamReconnector.Policy? = nil) {
        first = client
        export = client.export
        size = Int64(client.export.size)
        isReadOnly = readOnly || client.export.has(NBD.TransmissionFlag.readOnly)
        reconnector = reconnect.map { NBDUpstreamReconnector(first: client, policy: $0) }
    }

    /// No more reconnecting: requests waiting for it fail now with EIO (the server is stopping).
    public func stopReconnecting() { reconnector?.stop() }

    /// Stops reconnecting and closes the connection in use.
    public func close() {
        if let reconnector { reconnector.close() } else { first.close() }
    }

    /// One upstream request; with a reconnect delay, sent again on a new connection when the
    /// one it went out on died (at most three times, so a flapping upstream cannot hold it).
    private func perform(_ command: NBD.Command, flags: UInt16 = 0, offset: UInt64, length: UInt64,
                         payload: UnsafeRawBufferPointer? = nil, into buffer: UnsafeMutableRawBufferPointer? = nil)
        -> (errno: Int32, extents: [BlockExtent]) {
        var c = client
        var r = c.perform(command, flags: flags, offset: offset, length: length, payload: payload, into: buffer)
        guard let reconnector else { return r }
        for _ in 0..<3 where r.errno == EIO && c.deadBecause != nil {
            guard let next = reconnector.replacement(for: c) else { return r }
            c = next
            r = c.perform(command, flags: flags, offset: offset, length: length, payload: payload, into: buffer)
        }
        return r
    }

    public var capabilities: DiskCapabilities {
        DiskCapabilities(flush: export.has(NBD.TransmissionFlag.sendFlush), fua: export.has(NBD.TransmissionFlag.sendFUA),
                         trim: export.has(NBD.TransmissionFlag.sendTrim),
                         writeZeroes: export.has(NBD.TransmissionFlag.sendWriteZeroes), multiConn: true,
                         minimumBlockSize: export.minimumBlockSize, preferredBlockSize: export.preferredBlockSize,
                         callsWaitOnPeer: true)
    }

    /// Runs `body` over `offset ..< offset+length` in pieces of at most `piece` bytes; stops at the first error.
    private func inPieces(_ offset: Int64, _ length: Int, piece: Int, _ body: (Int64, Int, Int) -> Int32) -> Int32 {
        var done = 0
        while done < length {
            let n = min(piece, length - done)
            let e = body(offset + Int64(done), done, n)
            if e != 0 { return e }
            done += n
        }
        return 0
    }

    public func read(offset: Int64, into buffer: UnsafeMutableRawBufferPointer) -> Int32 {
        inPieces(offset, buffer.count, piece: Int(export.maximumPayload)) { at, done, n in
            perform(.read, offset: UInt64(at), length: UInt64(n),
                           into: UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + n])).errno
        }
    }

    public func write(offset: Int64, from buffer: UnsafeRawBufferPointer, fua: Bool) -> Int32 {
        let flags = fua && capabilities.fua ? NBD.CommandFlag.fua : 0
        return inPieces(offset, buffer.count, piece: Int(export.maximumPayload)) { at, done, n in
            perform(.write, flags: flags, offset: UInt64(at), length: UInt64(n),
                           payload: UnsafeRawBufferPointer(rebasing: buffer[done..<done + n])).errno
        }
    }

    /// NBD_CMD_WRITE_ZEROES when the upstream has it; otherwise written zeroes, as QEMU's block
    /// layer falls back for a driver without it (block/io.c bdrv_co_do_pwrite_zeroes).
    public func writeZeroes(offset: Int64, length: Int64, mayUnmap: Bool, fua: Bool) -> Int32 {
        guard length > 0 else { return 0 }
        if capabilities.writeZeroes {
            var flags: UInt16 = mayUnmap ? 0 : NBD.CommandFlag.noHole
            if fua && capabilities.fua { flags |= NBD.CommandFlag.fua }
            // The request length is 32 bits; 2 GiB pieces keep them whole multiples of any block size.
            return inPieces(offset, Int(length), piece: 1 << 31) { at, _, n in
                perform(.writeZeroes, flags: flags, offset: UInt64(at), length: UInt64(n)).errno
            }
        }
        let piece = Int(min(Int64(export.maximumPayload), length, 1 << 20))
        let zeroes = UnsafeMutableRawBufferPointer.allocate(byteCount: piece, alignment: 4096)
        defer { zeroes.deallocate() }
        memset(zeroes.baseAddress!, 0, piece)
        return inPieces(offset, Int(length), piece: piece) { at, _, n in
            write(offset: at, from: UnsafeRawBufferPointer(rebasing: zeroes[0..<n]), fua: fua)
        }
    }

    /// NBD_CMD_TRIM when offered; discard is advisory, so without it nothing happens.
    public func discard(offset: Int64, length: Int64) -> Int32 {
        guard length > 0, capabilities.trim else { return 0 }
        return inPieces(offset, Int(length), piece: 1 << 31) { at, _, n in
            perform(.trim, offset: UInt64(at), length: UInt64(n)).errno
        }
    }

    /// NBD_CMD_FLUSH, waited for: the reply to the client's flush comes after the upstream's.
    /// An upstream without NBD_FLAG_SEND_FLUSH has no cache to flush (proto.md).
    public func sync() -> Int32 {
        guard capabilities.flush else { return 0 }
        return perform(.flush, offset: 0, length: 0).errno
    }

    /// NBD has no resize command. QEMU's NBD client (block/nbd.c `nbd_co_truncate`, called
    /// by qemu-io's truncate with exact=false) refuses to grow and takes a smaller size as
    /// already satisfied: the export keeps its size.
    public func resize(to newSize: Int64, preallocation: Preallocation) -> String? {
        if isReadOnly { return "Block node is read-only" }
        return newSize > size ? "Cannot grow NBD nodes" : nil
    }

    /// The upstream's base:allocation, or "data" for all when it has none. The whole range in
    /// one query with extended headers (a 64-bit effect length, answered with
    /// NBD_REPLY_TYPE_BLOCK_STATUS_EXT); without them the client cuts it to 32 bits. Either
    /// answer may cover less than asked (proto.md allows it; the NBD client of `nbd serve`
    /// that asked goes on from where the runs end).
    public func blockAllocation(offset: Int64, length: Int64) -> (errno: Int32, extents: [BlockExtent]) {
        guard length > 0 else { return (0, []) }
        guard export.allocationContext != nil else { return (0, [BlockExtent(length: length)]) }
        let r = perform(.blockStatus, offset: UInt64(offset), length: UInt64(length))
        return (r.errno, r.errno == 0 ? r.extents : [])
    }
}
