/// The compressed formats kvmscope reads transparently, told apart by their magic bytes (never
/// by the file name: logrotate's `kern.log.2.gz`, a `.log` that is really gzip, and stdin all
/// look the same to it).
public enum CompressionFormat: String, Sendable, Codable, CaseIterable {
    case gzip, xz, zstd

    /// Longest magic number below (xz's six bytes).
    public static let magicLength = 6

    /// The format whose magic starts `head`, or nil for an input to read as it is.
    /// - gzip: ID1 ID2 = 0x1F 0x8B (RFC 1952 §2.3.1); every member of a concatenated file
    ///   (`cat a.gz b.gz`, logrotate's `delaycompress` and `copytruncate` outputs) starts so.
    /// - xz: 0xFD "7zXZ" 0x00, the stream header magic of the .xz file format spec §2.1.1.1.
    /// - zstd: frame magic 0xFD2FB528 little-endian (RFC 8878 §3.1.1), or a skippable frame
    ///   0x184D2A50...0x184D2A5F (§3.1.2), which the zstd CLI accepts at the start of a file.
    public static func detect(_ head: UnsafeRawBufferPointer) -> CompressionFormat? {
        let b = head.bindMemory(to: UInt8.self)
        if b.count >= 2, b[0] == 0x1F, b[1] == 0x8B { return .gzip }
        if b.count >= 6, b[0] == 0xFD, b[1] == 0x37, b[2] == 0x7A, b[3] == 0x58, b[4] == 0x5A, b[5] == 0x00 { return .xz }
        if b.count >= 4, b[1] == 0xB5, b[2] == 0x2F, b[3] == 0xFD, b[0] == 0x28 { return .zstd }
        if b.count >= 4, b[0] & 0xF0 == 0x50, b[1] == 0x2A, b[2] == 0x4D, b[3] == 0x18 { return .zstd }
        return nil
    }

    public static func detect(_ head: [UInt8]) -> CompressionFormat? {
        head.withUnsafeBytes { detect($0) }
    }

    /// Whether more bytes could still make `head` one of the magics above (or an unsupported
    /// one below): reading a pipe's first bytes stops as soon as this is false.
    static func couldStartMagic(_ head: [UInt8]) -> Bool {
        let magics: [[UInt8]] = [[0x1F, 0x8B], [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00], [0x28, 0xB5, 0x2F, 0xFD],
                                 [0x42, 0x5A, 0x68, 0x31], [0x04, 0x22, 0x4D, 0x18], [0x1F, 0x9D], [0x4C, 0x5A, 0x49, 0x50]]
        guard let first = head.first else { return true }
        if first & 0xF0 == 0x50, head.count < 4, Array(head.dropFirst()) == Array([0x2A, 0x4D, 0x18].prefix(head.count - 1)) {
            return true                                // a zstd skippable frame's magic, so far
        }
        return magics.contains { $0.count > head.count && Array($0.prefix(head.count)) == head }
    }

    /// Compressions seen in the wild that kvmscope does not decompress: named, so the user gets
    /// "decompress it first" instead of "not a guest kernel log".
    static func unsupported(_ head: [UInt8]) -> (name: String, tool: String)? {
        if head.count >= 4, head[0] == 0x42, head[1] == 0x5A, head[2] == 0x68, (0x31...0x39).contains(head[3]) {
            return ("bzip2", "bzcat")                     // "BZh" + block size digit
        }
        if head.count >= 4, head[0] == 0x04, head[1] == 0x22, head[2] == 0x4D, head[3] == 0x18 { return ("lz4", "lz4cat") }
        if head.count >= 2, head[0] == 0x1F, head[1] == 0x9D { return ("compress (.Z)", "zcat") }
        if head.count >= 4, head[0] == 0x4C, head[1] == 0x5A, head[2] == 0x49, head[3] == 0x50 { return ("lzip", "lzip -dc") }
        return nil
    }
}

/// Why a compressed input cannot be read to its end; the stream turns it into a
/// `KVMScopeError.badCompressedInput` naming the file.
enum DecompressionProblem: Error, Equatable {
    /// The library rejected the data (a flipped bit, garbage after a magic number): its words.
    case corrupt(String)
    /// The input ended inside a compressed stream: a file cut short (a copy interrupted, a
    /// disk full while logrotate compressed).
    case truncated
    /// Bytes after the last complete stream that start no new one.
    case trailingGarbage
    /// The stream asks for more memory than kvmscope gives a decoder (its window or
    /// dictionary), which only a hostile or exotic file does.
    case needsTooMuchMemory(String)
    /// The library could not allocate its state.
    case outOfMemory

    var detail: String {
        switch self {
        case let .corrupt(why): return "corrupt data (\(why))"
        case .truncated: return "truncated: the input ends inside a compressed stream (was the file cut short?)"
        case .trailingGarbage: return "garbage after the last compressed stream"
        case let .needsTooMuchMemory(why): return "needs more memory to decompress than kvmscope allows (\(why)); decompress it with the format's own tool first"
        case .outOfMemory: return "out of memory while starting the decoder"
        }
    }
}

/// One compressed format's decoder, fed with whatever the input gave and draining into the
/// caller's buffer: memory is the library's fixed state (a window, a dictionary) and nothing
/// that grows with the input, so a decompression bomb costs time, never memory.
protocol StreamDecoder: AnyObject {
    /// Decodes from `input` into `output`; returns how much of each was used. `inputEnded`:
    /// no byte follows `input`. Returns (0, 0) when it needs more input than `input` holds.
    func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                inputEnded: Bool) throws(DecompressionProblem) -> (consumed: Int, produced: Int)
    /// Whether what was decoded so far ends exactly where a complete stream (gzip member,
    /// xz stream, zstd frame) ends, so that the input may end here.
    var atStreamBoundary: Bool { get }
}
