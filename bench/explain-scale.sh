#!/usr/bin/env bash
# bench/explain-scale.sh [DIR] [ROUNDS]
#
# explain at scale (issue 19 item 4): a large QEMU trace, a large guest kernel log and many QMP
# events, explained together, beside each reader alone on the same files, in interleaved
# rounds. explain's time should be about the sum of its readers' times, and its peak memory
# bounded by the detail limits, not by the inputs.
#
# Inputs, built once in DIR (default bench/out/explain-scale) from the real lab captures:
#   trace.log  TRACE_MB (default 2048) of bench/make-trace.sh (the lab composition)
#   guest.log  GUEST_MB (default 500) of bench/make-guest-log.sh --one-boot
#   qmp.jsonl  QMP_EVENTS (default 100000) events: write-eio's and enospc-pause's QMP lines,
#              repeated with their stamps moved forward one block at a time
#
#   KVMSCOPE=.build/release/kvmscope bench/explain-scale.sh /var/tmp/scale 3
#
# Prints per round and command: wall s, user s, sys s, peak RSS MiB; then medians and the
# ratio explain / (trace + guest + qmp-only explain).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-bench/out/explain-scale}
rounds=${2:-3}
kvmscope=${KVMSCOPE:-.build/release/kvmscope}
trace_mb=${TRACE_MB:-2048}
guest_mb=${GUEST_MB:-500}
qmp_events=${QMP_EVENTS:-100000}
[[ -x $kvmscope ]] || { echo "no $kvmscope: swift build -c release --product kvmscope" >&2; exit 2; }
mkdir -p "$dir"

[[ -s $dir/trace.log ]] || bench/make-trace.sh "$dir/trace.log" "$trace_mb" >&2
[[ -s $dir/guest.log ]] || bench/make-guest-log.sh "$dir/guest.log" "$guest_mb" --one-boot >&2
if [[ ! -s $dir/qmp.jsonl ]]; then
    python3 - "$dir/qmp.jsonl" "$qmp_events" lab/scenarios/write-eio/qmp.jsonl lab/scenarios/enospc-pause/qmp.jsonl <<'EOF'
import json, sys
out, n, seeds = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
events = []
for path in seeds:
    for line in open(path):
        line = line.strip()
        if line.startswith("{") and '"event"' in line:
            events.append(json.loads(line))
first = min(e["timestamp"]["seconds"] + e["timestamp"]["microseconds"] / 1e6 for e in events)
span = max(e["timestamp"]["seconds"] + e["timestamp"]["microseconds"] / 1e6 for e in events) - first + 1
written = 0
with open(out, "w") as f:
    block = 0
    while written < n:
        for e in events:
            if written == n:
                break
            t = e["timestamp"]["seconds"] + e["timestamp"]["microseconds"] / 1e6 + block * span
            e2 = dict(e)
            e2["timestamp"] = {"seconds": int(t), "microseconds": int(round((t - int(t)) * 1e6)) % 1000000}
            f.write(json.dumps(e2) + "\n")
            written += 1
        block += 1
EOF
fi
ls -l "$dir"/trace.log "$dir"/guest.log "$dir"/qmp.jsonl >&2

run() {   # name, then the command: prints "name wall user sys rssMiB"
    local name=$1; shift
    local t
    t=$(mktemp)
    # Exit 1 is "findings", not a failure of the run; GNU time writes its line to the file.
    /usr/bin/time -o "$t" -f '%e %U %S %M' "$@" > /dev/null 2> /dev/null || true
    read -r wall user sys rss < <(tail -1 "$t")
    rm -f "$t"
    printf '%s %s %s %s %.1f\n' "$name" "$wall" "$user" "$sys" "$(echo "$rss / 1024" | bc -l)"
}

results=$(mktemp)
for r in $(seq 1 "$rounds"); do
    run trace    "$kvmscope" trace --json "$dir/trace.log"   | tee -a "$results" | sed "s/^/round $r /"
    run guest    "$kvmscope" guest --json "$dir/guest.log"   | tee -a "$results" | sed "s/^/round $r /"
    run qmp      "$kvmscope" explain --json "$dir/qmp.jsonl" | tee -a "$results" | sed "s/^/round $r /"
    run explain  "$kvmscope" explain --json "$dir/guest.log" "$dir/trace.log" "$dir/qmp.jsonl" | tee -a "$results" | sed "s/^/round $r /"
done
python3 - "$results" <<'EOF'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    name, wall, user, sys_, rss = line.split()
    rows.setdefault(name, []).append((float(wall), float(user) + float(sys_), float(rss)))
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in rows.items()}
print("median       wall s   CPU s   peak RSS MiB")
for k in ("trace", "guest", "qmp", "explain"):
    if k in med:
        w, c, m = med[k]
        print(f"{k:10} {w:8.2f} {c:7.2f} {m:10.1f}")
if all(k in med for k in ("trace", "guest", "qmp", "explain")):
    parts = sum(med[k][1] for k in ("trace", "guest", "qmp"))
    print(f"explain CPU / (trace + guest + qmp) CPU = {med['explain'][1] / parts:.2f}")
EOF
rm -f "$results"
