#!/usr/bin/env python3
"""bench/make-perfdata-mixed.py REAL.data OUT.data MB SEED

Like bench/make-perfdata.py, but with rounds as a 2-CPU perf record writes them (each CPU's
run in turn, times overlapping, so rounds are not sorted), equal time stamps, a few late
records, COMM/FORK records mid-stream, several tids, locations, reasons (named, unnamed,
subsystem), protocols, a 100 s gap and a few rounds without FINISHED_ROUND: the cases where
perf's ordering and the report's intervals matter, for bench/perfdata-outputs.sh."""
import struct, sys, random
src, out, mb, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed)
d = open(src, "rb").read()
attr_size, attrs_off, attrs_size, data_off, data_size = struct.unpack_from("<QQQQQ", d, 16)
flags = struct.unpack_from("<4Q", d, 72)
bits = [b for b in range(256) if flags[b // 64] >> (b % 64) & 1]
feat_off = data_off + data_size
sections = [struct.unpack_from("<QQ", d, feat_off + 16 * i) for i in range(len(bits))]
pre, samples = b"", []
i = data_off
while i < data_off + data_size:
    typ, misc, size = struct.unpack_from("<IHH", d, i)
    rec = d[i:i + size]
    if typ == 9: samples.append(rec)
    elif typ != 68: pre += rec
    i += size
tmpl = samples[0]
t0 = struct.unpack_from("<Q", samples[-1], 24)[0] + 1_000_000_000
locs = [struct.unpack_from("<Q", s, 68)[0] for s in samples] + [0xffffffff81000000 + 0x1234, 0xffffffffc0001000, 0]
locs = sorted(set(locs))
reasons = [2, 3, 12, 5, 999, 0x10005, 1]
protos = [0x0800, 0x86dd, 0x0806, 0]
tids = [0x60ef, 0x60f1, 4242, 4243, 0]
def sample(t, cpu, tid):
    r = bytearray(tmpl)
    struct.pack_into("<IIQI", r, 16, tid, tid, t, cpu)
    struct.pack_into("<i", r, 56, tid)
    struct.pack_into("<Q", r, 68, rnd.choice(locs))
    struct.pack_into("<H", r, 84, rnd.choice(protos))
    struct.pack_into("<I", r, 88, rnd.choice(reasons))
    return bytes(r)
def comm(t, tid, name, cpu):
    n = name.encode()[:15] + b"\0"
    n += b"\0" * (-len(n) % 8)
    body = struct.pack("<II", tid, tid) + n + struct.pack("<IIQII", tid, tid, t, cpu, 0)
    return struct.pack("<IHH", 3, 0x2000, 8 + len(body)) + body
def fork(t, tid, ptid, cpu):
    body = struct.pack("<IIIIQ", tid, ptid, tid, ptid, t) + struct.pack("<IIQII", tid, tid, t, cpu, 0)
    return struct.pack("<IHH", 7, 0, 8 + len(body)) + body
round_rec = struct.pack("<IHH", 68, 0, 8)
target = mb << 20
with open(out, "wb") as f:
    f.write(d[:data_off]); f.write(pre)
    written = len(pre); t = t0; n = 0; rn = 0
    while written < target:
        block = bytearray()
        per = rnd.choice([1, 50, 700, 2000])
        for cpu in (0, 1):
            tt = t + cpu * 3000
            for k in range(per):
                tid = rnd.choice(tids)
                if rnd.random() < 0.002:
                    block += comm(tt, tid, "task-%d" % rnd.randrange(40), cpu)
                if rnd.random() < 0.0005:
                    block += fork(tt, rnd.choice(tids) + 7, tid, cpu)
                late = rnd.random() < 0.0003
                block += sample(tt - 50_000_000 if late else tt, cpu, tid)
                n += 1
                if rnd.random() > 0.05: tt += rnd.choice([0, 7000, 10000, 13000])
        t += per * 10000 + 1
        rn += 1
        if rn == 300: t += 100_000_000_000
        if rnd.random() < 0.97: block += round_rec
        f.write(block); written += len(block)
    f.write(round_rec); written += 8
    new_feat = data_off + written
    table = b""; off = new_feat + 16 * len(bits)
    for (o, sz) in sections:
        table += struct.pack("<QQ", off, sz); off += sz
    f.write(table)
    for (o, sz) in sections: f.write(d[o:o + sz])
    f.seek(0)
    head = bytearray(d[:104]); struct.pack_into("<Q", head, 48, written); f.write(head)
print("%s: %d samples" % (out, n))
