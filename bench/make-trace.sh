#!/usr/bin/env bash
# Builds a large QEMU log-backend trace for `kvmscope-bench trace` by repeating the real lab
# captures (lab/scenarios/*/trace.log, QEMU 7.2, -msg timestamp=on) block after block.
# Each block gets its own request pointers (every `req 0x…`/`elem 0x…` shifted by a per-block
# offset; devices, queues and block nodes keep theirs, as in one long-running QEMU) and
# timestamps that keep increasing, so every request still pops, completes and fills
# consistently; werror-stop is left out because its VM never finishes (a stuck request per
# block would be a different benchmark: memory growing with requests in flight).
#
#   bench/make-trace.sh OUTPUT [MEGABYTES]     (default 1100 MB, i.e. more than 1 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bench/make-trace.sh OUTPUT [MEGABYTES]}
megabytes=${2:-1100}
# The seed is pinned to the first nine scenarios so that figures stay comparable across
# releases (later scenarios, such as the virtio-scsi one, would change the event mix).
seeds=()
for s in async-write-esrch discard-errors enospc-pause ext4-readonly flush-eio nbd-eio read-once werror-stop write-eio; do
    seeds+=("lab/scenarios/$s/trace.log")
done
python3 - "$out" "$megabytes" "${seeds[@]}" <<'PY'
import re, sys
out, megabytes, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
paths = [p for p in paths if "/werror-stop/" not in p]
prefix = re.compile(rb"^(\d+)@(\d+)\.(\d{6}):")
pointer = re.compile(rb"(?<=req |lem )0x[0-9a-f]+")
# Template: for each line, (tid, micros since the block start, [literal, pointer, literal, ...]).
template, t0 = [], None
offset = 0
for path in paths:
    lines = open(path, "rb").read().splitlines()
    first = None
    for line in lines:
        m = prefix.match(line)
        if not m:
            continue
        micros = int(m.group(2)) * 1_000_000 + int(m.group(3))
        first = micros if first is None else first
        rest = line[m.end():]
        parts, last = [], 0
        for p in pointer.finditer(rest):
            parts.append(rest[last:p.start()])
            parts.append(int(p.group(0), 16))
            last = p.end()
        parts.append(rest[last:])
        template.append((m.group(1), offset + micros - first, parts))
    offset = template[-1][1] + 1000          # next scenario 1 ms after this one
block_micros = offset
target = megabytes * 1_000_000
written = lines_out = block = 0
start = 1_795_000_000 * 1_000_000
with open(out, "wb", buffering=1 << 22) as f:
    while written < target:
        shift = block * 0x100000
        base = start + block * block_micros
        chunk = []
        for tid, micros, parts in template:
            t = base + micros
            pieces = [b"%s@%d.%06d:" % (tid, t // 1_000_000, t % 1_000_000)]
            for i, p in enumerate(parts):
                pieces.append(p if i % 2 == 0 else b"0x%x" % (p + shift))
            pieces.append(b"\n")
            chunk.append(b"".join(pieces))
        data = b"".join(chunk)
        f.write(data)
        written += len(data)
        lines_out += len(chunk)
        block += 1
print(f"{out}: {written} bytes, {lines_out} lines, {block} blocks of {len(template)} real lab lines")
PY
