#!/usr/bin/env bash
# Times `kvmscope explain --qmp` on QMP inputs that used to be quadratic or unbounded
# (issue 17): the virsh reader rescanned a whole unclosed `--pretty` record for each line
# appended to it, and explain kept every QMP event in memory.
#
#   bench/qmp-hostile.sh [KVMSCOPE]    (default .build/release/kvmscope; build it with
#                                       swift build -c release --product kvmscope)
#
# Inputs, written to a temporary directory:
#   truncated  one unclosed `virsh qemu-monitor-event --pretty` record, then 12 000 good events
#   brackets   a virsh record header, then 60 000 lines of `[` (120 KB)
#   good       the same 12 000 good events alone (the baseline for `truncated`)
#   errors200k 200 000 BLOCK_IO_ERRORs as a raw QMP stream (with --json)
# Prints wall-clock seconds and maximum RSS per input.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/release/kvmscope}
[ -x "$bin" ] || { echo "no $bin: swift build -c release --product kvmscope" >&2; exit 2; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

python3 - "$dir" <<'PY'
import sys
d = sys.argv[1]
def event(i):
    return ('{"timestamp": {"seconds": %d, "microseconds": %d}, "event": "BLOCK_IO_ERROR", '
            '"data": {"device": "drive0", "node-name": "#block206", "reason": "Input/output error", '
            '"operation": "write", "action": "report"}}\n') % (1795363356 + i // 1000, (i % 1000) * 1000)
good = "".join(event(i) for i in range(12000))
open(d + "/good.jsonl", "w").write(good)
open(d + "/truncated.log", "w").write(
    "event BLOCK_IO_ERROR at 1795363355.000000 for domain 'vm1': {\n  \"device\": \"drive0\",\n" + good)
open(d + "/brackets.log", "w").write(
    "event BLOCK_IO_ERROR at 1795363355.000000 for domain 'vm1': [\n" + "[\n" * 60000)
with open(d + "/errors200k.jsonl", "w") as f:
    for i in range(200000):
        f.write(event(i))
PY

run() {  # name, extra args...
    local name=$1; shift
    /usr/bin/time -f "%e %M" -o "$dir/time" "$bin" explain --qmp "$dir/$name" "$@" >/dev/null 2>"$dir/err" || true
    # time(1) puts "Command exited with non-zero status N" first when explain exits 1.
    read -r secs kb < <(tail -n 1 "$dir/time")
    printf '%-18s %8.2f s  %7.1f MB max RSS  (%s bytes input)\n' "$name" "$secs" "$((kb / 1024))" \
        "$(stat -c %s "$dir/$name")"
}
run good.jsonl
run truncated.log
run brackets.log
run errors200k.jsonl --json
