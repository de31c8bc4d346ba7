/// A stream that starts after its first `lines` lines: the last run of a log that holds
/// several (libvirt's per-domain log keeps every start of the VM), read in one pass.
public final class LineSkippingByteStream: ByteStream {
    public let name: String
    public let knownSize: Int64? = nil
    private let base: ByteStream
    private var linesLeft: Int

    public init(_ base: ByteStream, skippingLines lines: Int, name: String? = nil) {
        self.base = base; self.linesLeft = max(0, lines); self.name = name ?? base.name
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = try base.read(into: buffer)
            if n == 0 || linesLeft == 0 { return n }
            let bytes = buffer.bindMemory(to: UInt8.self)
            var i = 0
            while i < n, linesLeft > 0 {
                if bytes[i] == 0x0A { linesLeft -= 1 }
                i += 1
            }
            if linesLeft == 0, i < n {
                // Move the rest of this chunk to the front.
                let rest = n - i
                buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + i, byteCount: rest)
                return rest
            }
        }
    }
}
