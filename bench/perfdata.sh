#!/usr/bin/env bash
# bench/perfdata.sh KVMSCOPE [MB] [ROUNDS]
#
# Reading a large perf.data: `kvmscope drops FILE` (the perf.data reader + the kfree_skb
# decoder + the drops analysis and report) and `kvmscope-bench perfdata FILE` (the reader and
# the kfree_skb decoding alone; KVMSCOPE_BENCH, default beside KVMSCOPE) against
# `perf script -i FILE > /dev/null` (what the
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

run() {   # run LABEL COMMAND: prints "LABEL wall cpu" (kvmscope drops exits 1: drops were found)
    /usr/bin/time -o "$timing" -f "%e %U %S" bash -c "$2" > /dev/null 2>&1 || true
    tail -1 "$timing" | awk -v l="$1" '{ printf "%s %.2f %.2f\n", l, $1, $2 + $3 }'
}

results=$(mktemp)
timing=$(mktemp)
trap 'rm -f "$results" "$timing"' EXIT
bench=${KVMSCOPE_BENCH:-$(dirname "$kvmscope")/kvmscope-bench}
for r in $(seq 1 "$rounds"); do
    run kvmscope "'$kvmscope' drops '$file'" | tee -a "$results"
    [[ -x $bench ]] && run reader "'$bench' perfdata '$file'" | tee -a "$results"
    run perf "perf script -i '$file'" | tee -a "$results"
done
median() { grep "^$1 " "$results" | awk -v c="$2" '{print $c}' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
kw=$(median kvmscope 2); kc=$(median kvmscope 3); pw=$(median perf 2); pc=$(median perf 3)
echo "median wall: kvmscope $kw s, perf script $pw s; ratio $(awk -v a="$pw" -v b="$kw" 'BEGIN {printf "%.1f", a / b}')x"
echo "median CPU:  kvmscope $kc s, perf script $pc s; ratio $(awk -v a="$pc" -v b="$kc" 'BEGIN {printf "%.1f", a / b}')x"
if grep -q "^reader " "$results"; then
    rw=$(median reader 2); rc=$(median reader 3)
    echo "reader alone (kvmscope-bench perfdata): median wall $rw s, CPU $rc s; ratio to perf script: wall $(awk -v a="$pw" -v b="$rw" 'BEGIN {printf "%.1f", a / b}')x, CPU $(awk -v a="$pc" -v b="$rc" 'BEGIN {printf "%.1f", a / b}')x"
fi
