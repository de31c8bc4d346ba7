#!/usr/bin/env bash
# Makes an ftrace-text skb:kfree_skb capture of at least SIZE_MB (default 1000 MB) for
# `swift run -c release kvmscope-bench drops FILE`: the real 6.18 lines of
# Tests/Fixtures/drops/ftrace-trace-6.18.txt with rising time stamps, plus a
# consume_skb line (not a drop) after every tenth; a 50 MB block is made and repeated to reach
# the size (time stamps restart each block). Deterministic.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/out/drops-1g.txt}
size_mb=${2:-1000}
mkdir -p "$(dirname "$out")" bench/out   # the 50 MB block is made in bench/out
block=bench/out/.drops-block
python3 - "$block" <<'PY'
import re, sys
lines = [l.rstrip("\n") for l in open("Tests/Fixtures/drops/ftrace-trace-6.18.txt") if "kfree_skb:" in l]
stamp = re.compile(r"\d+\.\d+:")
out, size, t, i = [], 0, 1_000_000_000, 0
out.append("# tracer: nop")
while size < 50_000_000:
    l = lines[i % len(lines)]; i += 1
    t += 7 + i % 13
    s = "%d.%06d:" % (t // 1_000_000, t % 1_000_000)
    l = stamp.sub(s, l, count=1)
    out.append(l); size += len(l) + 1
    if i % 10 == 0:
        c = "            bash-3910    [001] ..s1.  %s consume_skb: skbaddr=00000000df8d641d location=skb_free_datagram+0x1c/0x40" % s
        out.append(c); size += len(c) + 1
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
: > "$out"
for _ in $(seq $(( (size_mb + 49) / 50 ))); do cat "$block" >> "$out"; done
rm -f "$block"
ls -l "$out"
