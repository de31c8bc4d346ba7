import FuzzSupport

/// libFuzzer entry: bytes decompressed as gzip, xz and zstd (the first byte picks the format, the
/// rest is the compressed data), as FileByteSource does for a compressed input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    DecompressFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
