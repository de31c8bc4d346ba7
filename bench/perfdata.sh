#!/usr/bin/env bash
# bench/perfdata.sh KVMSCOPE [MB] [ROUNDS] [drops|exits]
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
#
# `exits` (issue 20) times `kvmscope exits FILE` (the reader, the kvm_exit/kvm_entry pairing,
# the statistics, the 10 slowest exits with their context and the heatmap) instead, on a FILE
# made the same way from Tests/Fixtures/perf/kvm-synthetic.data.xz (kvm_exit/kvm_entry samples
# of 2 vCPU threads: this host's KVM emits none); the reader-alone row is left out.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kvmscope=${1:?usage: bench/perfdata.sh KVMSCOPE [MB] [ROUNDS] [drops|exits]}
mb=${2:-1024}
rounds=${3:-3}
command=${4:-drops}
case $command in
    drops) fixture=kfree_skb ;;
    exits) fixture=kvm-synthetic ;;
    *) echo "bench/perfdata.sh: the command is drops or exits, not '$command'" >&2; exit 2 ;;
esac
dir=${BENCH_DIR:-/tmp/kvmscope-bench-perfdata}
mkdir -p "$dir"
file=$dir/$fixture-${mb}MB.data
if [[ ! -f $file ]]; then
    xz -dc "$root/Tests/Fixtures/perf/$fixture.data.xz" > "$dir/$fixture-real.data"
    python3 "$root/bench/make-perfdata.py" "$dir/$fixture-real.data" "$file" "$mb"
fi
perf_version=$(perf version)
echo "file: $file ($(du -m "$file" | cut -f1) MB), $perf_version, kvmscope $("$kvmscope" --version)"

run() {   # run LABEL COMMAND: prints "LABEL wall cpu" (kvmscope exits 1 on findings)
    /usr/bin/time -o "$timing" -f "%e %U %S" bash -c "$2" > /dev/null 2>&1 || true
    tail -1 "$timing" | awk -v l="$1" '{ printf "%s %.2f %.2f\n", l, $1, $2 + $3 }'
}

results=$(mktemp)
timing=$(mktemp)
trap 'rm -f "$results" "$timing"' EXIT
bench=${KVMSCOPE_BENCH:-$(dirname "$kvmscope")/kvmscope-bench}
for r in $(seq 1 "$rounds"); do
    run kvmscope "'$kvmscope' $command '$file'" | tee -a "$results"
    [[ $command == drops && -x $bench ]] && run reader "'$bench' perfdata '$file'" | tee -a "$results"
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
