#!/usr/bin/env bash
# trace.dat read directly vs the text path: `kvmscope drops FILE.dat` against
# `trace-cmd report FILE.dat | kvmscope drops -`, on a big trace.dat of skb:kfree_skb drops
# recorded by the real trace-cmd during a loopback UDP flood (bench/udp-flood.c, port 9,
# nothing listening). Rounds are interleaved (A B A B ...) so that load from other work on the
# machine hits both alike; prints each round, the medians and the ratio.
#
#   bench/tracedat.sh [FILE.dat] [ROUNDS]
#
# Without FILE.dat, records bench/out/drops-flood.dat first (as root: trace-cmd record -e
# skb:kfree_skb -b 65536 -o ... udp-flood 9 SECONDS; FLOOD_SECONDS, default 4). On hosts whose
# kernel denies trace-cmd's function-tracer files (containers), set TRACECMD_WRAP=1 to record
# through Tests/Fixtures/tracedat/rec.sh in a private mount namespace, as the fixtures were.
# KVMSCOPE (default .build/release/kvmscope: build with swift build -c release).
set -euo pipefail
cd "$(dirname "$0")/.."
kvmscope=${KVMSCOPE:-.build/release/kvmscope}
file=${1:-bench/out/drops-flood.dat}
rounds=${2:-5}
[[ -x $kvmscope ]] || { echo "bench/tracedat.sh: $kvmscope missing (swift build -c release)" >&2; exit 2; }
command -v trace-cmd > /dev/null || { echo "bench/tracedat.sh: trace-cmd is not installed" >&2; exit 2; }

if [[ ! -f $file ]]; then
    mkdir -p bench/out
    gcc -O2 -o bench/out/udp-flood bench/udp-flood.c
    record=(trace-cmd)
    [[ ${TRACECMD_WRAP:-0} == 1 ]] && record=(unshare -m Tests/Fixtures/tracedat/rec.sh)
    echo "== recording $file: ${FLOOD_SECONDS:-4} s of UDP flood, skb:kfree_skb" >&2
    "${record[@]}" record -q -b 65536 -o "$file" -e skb:kfree_skb bench/out/udp-flood 9 "${FLOOD_SECONDS:-4}" >&2
fi
size=$(stat -c %s "$file")
drops=$("$kvmscope" drops --json "$file" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["drops"])' || true)
echo "file: $file ($(( size / 1048576 )) MiB, $drops drops), $(trace-cmd --version 2>&1 | grep -o 'version [0-9.]*'), $rounds rounds"

# seconds of wall time of a shell command line, output discarded
wall() {
    local start end
    start=$(date +%s.%N)
    bash -c "$1" > /dev/null 2>&1 || true
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}
a=(); b=()
for i in $(seq "$rounds"); do
    ta=$(wall "'$kvmscope' drops '$file'")
    tb=$(wall "trace-cmd report '$file' | '$kvmscope' drops -")
    a+=("$ta"); b+=("$tb")
    printf 'round %d: trace.dat %.2f s, trace-cmd report | kvmscope %.2f s\n' "$i" "$ta" "$tb"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
printf 'median: trace.dat %.2f s, text path %.2f s, ratio %.1fx\n' "$ma" "$mb" "$(echo "$mb / $ma" | bc -l)"
