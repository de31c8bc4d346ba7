#!/usr/bin/env bash
# bench/perfdata.sh KVMSCOPE [MB] [ROUNDS]
#
# Reading a large perf.data: `kvmscope drops FILE` (the perf.data reader + the kfree_skb
# decoder + the drops analysis and report) against `perf script -i FILE > /dev/null` (what the
# text path needs first) on the same file. FILE is made once by bench/make-perfdata.py from the
# real capture Tests/Fixtures/perf/kfree_skb.data.xz (MB megabytes, default 1024: kfree_skb
# samples repeated with moving time stamps). Rounds are interleaved (kvmscope, perf, kvmscope,
# ...) so load from other processes hits both alike; prints every round's wall and CPU (user +
# system) seconds, the medians, and the ratio of the medians (perf / kvmscope).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kvmscope=${1:?usage: bench/perfdata.sh KVMSCOPE [MB] [ROUNDS]}
mb=${2:-1024}
rounds=${3:-3}
dir=${BENCH_DIR:-/tmp/kvmscope-bench-perfdata}
mkdir -p "$dir"
file=$dir/kfree_skb-${mb}MB.data
if [[ ! -f $file ]]; then
    xz -dc "$root/Tests/Fixtures/perf/kfree_skb.data.xz" > "$dir/real.data"
    python3 "$root/bench/make-perfdata.py" "$dir/real.data" "$file" "$mb"
fi
perf_version=$(perf version)
echo "file: $file ($(du -m "$file" | cut -f1) MB), $perf_version, kvmscope $("$kvmscope" --version)"

run() {   # run LABEL COMMAND: prints "LABEL wall cpu"
    local out
    out=$( { /usr/bin/time -f "%e %U %S" bash -c "$2" > /dev/null 2>/dev/null; } 2>&1 | tail -1)
    awk -v l="$1" '{ printf "%s %.2f %.2f\n", l, $1, $2 + $3 }' <<< "$out"
}

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for r in $(seq 1 "$rounds"); do
    run kvmscope "'$kvmscope' drops '$file'" | tee -a "$results"
    run perf "perf script -i '$file'" | tee -a "$results"
done
median() { grep "^$1 " "$results" | awk -v c="$2" '{print $c}' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
kw=$(median kvmscope 2); kc=$(median kvmscope 3); pw=$(median perf 2); pc=$(median perf 3)
echo "median wall: kvmscope $kw s, perf script $pw s; ratio $(awk -v a="$pw" -v b="$kw" 'BEGIN {printf "%.1f", a / b}')x"
echo "median CPU:  kvmscope $kc s, perf script $pc s; ratio $(awk -v a="$pc" -v b="$kc" 'BEGIN {printf "%.1f", a / b}')x"
