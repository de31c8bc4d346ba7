#!/usr/bin/env python3
"""bench/make-perfdata.py REAL.data OUT.data MB

A large perf.data from a real one (Tests/Fixtures/perf/kfree_skb.data.xz, decompressed): its
header, attrs and feature sections (the tracing data with the kfree_skb format) as perf wrote
them, and a data section of its own records: the non-sample records first (COMM, MMAP, ...),
then its sample records repeated with time stamps moving forward 10 us per sample, a
PERF_RECORD_FINISHED_ROUND every 4096 samples (as perf record writes one per buffer drain),
until the file is MB megabytes. Feature sections are copied after the new data section with
their offsets moved, as perf_header__adds_write lays them out."""
import struct, sys

src, out, mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = open(src, "rb").read()
assert d[:8] == b"PERFILE2", "a little-endian file-mode perf.data"
attr_size, attrs_off, attrs_size, data_off, data_size = struct.unpack_from("<QQQQQ", d, 16)
flags = struct.unpack_from("<4Q", d, 72)
bits = [b for b in range(256) if flags[b // 64] >> (b % 64) & 1]
feat_off = data_off + data_size
sections = [struct.unpack_from("<QQ", d, feat_off + 16 * i) for i in range(len(bits))]
sample_type = struct.unpack_from("<Q", d, attrs_off + 24)[0]
# Where TIME is in a sample: after IDENTIFIER, IP, TID (perf_event.h PERF_RECORD_SAMPLE).
time_at = 8 + 8 * sum(1 for bit in (1 << 16, 1 << 0, 1 << 1) if sample_type & bit)
assert sample_type & (1 << 2), "samples with PERF_SAMPLE_TIME"

pre, samples = b"", []
i = data_off
while i < data_off + data_size:
    typ, misc, size = struct.unpack_from("<IHH", d, i)
    rec = d[i:i + size]
    if typ == 9:
        samples.append(rec)
    elif typ != 68:
        pre += rec
    i += size
assert samples, "the file has samples"
# Start after every record of the capture (its EXIT records come after the last sample), so
# that perf orders them first, as in the capture.
t0 = struct.unpack_from("<Q", samples[-1], time_at)[0] + 1_000_000_000
round_rec = struct.pack("<IHH", 68, 0, 8)
target = mb << 20
with open(out, "wb") as f:
    f.write(d[:data_off])
    f.write(pre)
    written = len(pre)
    n = 0
    block = bytearray()
    while written < target:
        for s in samples:
            r = bytearray(s)
            struct.pack_into("<Q", r, time_at, t0 + n * 10_000)
            block += r
            n += 1
            if n % 4096 == 0:
                block += round_rec
        if len(block) >= 1 << 22:
            f.write(block); written += len(block); block = bytearray()
    block += round_rec
    f.write(block); written += len(block)
    new_feat = data_off + written
    table = b""
    off = new_feat + 16 * len(bits)
    for (o, sz) in sections:
        table += struct.pack("<QQ", off, sz)
        off += sz
    f.write(table)
    for (o, sz) in sections:
        f.write(d[o:o + sz])
    f.seek(0)
    head = bytearray(d[:104])
    struct.pack_into("<Q", head, 48, written)   # data.size
    f.write(head)
print("%s: %d samples, %.1f MB" % (out, n, (new_feat + 16 * len(bits) + sum(s for _, s in sections)) / 1e6))
