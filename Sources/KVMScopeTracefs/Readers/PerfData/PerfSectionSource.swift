/// Where a file-mode perf.data's parts are read from, in the order the reader asks for them:
/// the header area, then the data section (remembered), then the feature table and sections
/// after it, then the data's records.
protocol SectionSource {
    /// The file's size when known (regular files): lets a truncated file be named as such.
    var size: UInt64? { get }
    func bytes(at offset: UInt64, count: Int) throws -> [UInt8]?
    func beginData(_ offset: UInt64, _ length: UInt64) throws
    func afterData(count: Int) throws -> [UInt8]?
    func feature(at offset: UInt64, count: Int) throws -> [UInt8]?
    func dataReader() throws -> PerfChunkReader
    /// Whether the input is at least `end` bytes long (read through for a stream).
    func reach(_ end: UInt64) throws -> Bool
}

/// A regular file: every part is read where it is, with pread.
final class FileSectionSource: SectionSource {
    let file: PerfRandomAccessFile
    let name: String
    private var data: (UInt64, UInt64) = (0, 0)

    init(file: PerfRandomAccessFile, name: String) {
        self.file = file
        self.name = name
    }

    var size: UInt64? { file.size }
    func bytes(at offset: UInt64, count: Int) throws -> [UInt8]? { try file.bytes(at: offset, count: count, name: name) }
    func beginData(_ offset: UInt64, _ length: UInt64) throws { data = (offset, length) }
    func afterData(count: Int) throws -> [UInt8]? { try file.bytes(at: data.0 + data.1, count: count, name: name) }
    func feature(at offset: UInt64, count: Int) throws -> [UInt8]? { try file.bytes(at: offset, count: count, name: name) }
    func dataReader() throws -> PerfChunkReader { file.region(data.0, data.1, name: name) }
    func reach(_ end: UInt64) throws -> Bool { end <= file.size }
}

/// A stream that can be read only once, front to back (a pipe, a decompressed file): the
/// parts must come in file order, as perf writes them, and the data section is spooled to
/// an unlinked temporary file until the formats after it have been read.
final class StreamSectionSource: SectionSource {
    let reader: PerfChunkReader
    let name: String
    private var spool: SpooledByteStream?
    private var data: (UInt64, UInt64) = (0, 0)

    init(reader: PerfChunkReader, name: String) {
        self.reader = reader
        self.name = name
    }

    var size: UInt64? { nil }

    private func seek(_ offset: UInt64, _ what: String) throws -> Bool {
        guard offset >= reader.position else {
            throw PerfDataError(path: name, "\(what) at offset \(offset) lies before offset \(reader.position), already read: read this file by its path (not through a pipe or a decompressor) so it can be read at offsets")
        }
        return try reader.skip(offset - reader.position)
    }

    func bytes(at offset: UInt64, count: Int) throws -> [UInt8]? {
        guard try seek(offset, "header data") else { return nil }
        return try reader.readArray(count)
    }

    func beginData(_ offset: UInt64, _ length: UInt64) throws {
        guard try seek(offset, "the data section") else {
            throw PerfDataError(path: name, "truncated: the input ends before the data section at offset \(offset)")
        }
        let s = try SpooledByteStream(name: name, splitFrom: nil)
        let complete = try reader.copy(length) { chunk in try s.append(chunk.bindMemory(to: UInt8.self)) }
        guard complete else {
            throw PerfDataError(path: name, "truncated: the input ends inside the data section (offset \(offset), \(length) bytes)")
        }
        spool = s
        data = (offset, length)
    }

    func afterData(count: Int) throws -> [UInt8]? { try reader.readArray(count) }

    func feature(at offset: UInt64, count: Int) throws -> [UInt8]? {
        guard try seek(offset, "a feature section") else { return nil }
        return try reader.readArray(count)
    }

    func reach(_ end: UInt64) throws -> Bool {
        guard end > reader.position else { return true }
        return try reader.skip(end - reader.position)
    }

    func dataReader() throws -> PerfChunkReader {
        let s = spool!
        return PerfChunkReader(startingAt: data.0, length: data.1) { try s.read(into: $0) }
    }
}
