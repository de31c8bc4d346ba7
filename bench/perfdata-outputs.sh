#!/usr/bin/env bash
# bench/perfdata-outputs.sh OLD_KVMSCOPE NEW_KVMSCOPE [FILE...]
#
# Checks that two builds of kvmscope report the same on perf.data inputs (before and after a
# change to the reader or the drops analysis): every `drops` variant below (text, --json,
# --interval, --by, filters, --kallsyms, --top, colour), by path and on stdin (the streamed
# path), and `exits` variants, output and exit status compared byte for byte. Without FILEs:
# every fixture under Tests/Fixtures/perf, and two files of bench/make-perfdata-mixed.py
# (unsorted rounds, late records, COMM records) made in BENCH_DIR. Prints each difference;
# exits 1 if there is one.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
old=${1:?usage: bench/perfdata-outputs.sh OLD_KVMSCOPE NEW_KVMSCOPE [FILE...]}
new=${2:?usage}
shift 2
dir=${BENCH_DIR:-/tmp/kvmscope-bench-perfdata}/outputs
mkdir -p "$dir"
files=("$@")
if [[ ${#files[@]} -eq 0 ]]; then
    for x in "$root"/Tests/Fixtures/perf/*.data.xz; do
        f=$dir/$(basename "${x%.xz}"); xz -dc "$x" > "$f"; files+=("$f")
    done
    python3 "$root/bench/make-perfdata-mixed.py" "$dir/kfree_skb.data" "$dir/mixed-5.data" 5 2 > /dev/null
    python3 "$root/bench/make-perfdata-mixed.py" "$dir/kfree_skb.data" "$dir/mixed-40.data" 40 1 > /dev/null
    files+=("$dir/mixed-5.data" "$dir/mixed-40.data")
fi
ks=$root/Tests/Fixtures/perf/kallsyms-excerpt.txt
drops=("" "--json" "--interval 1" "--interval 1 --json" "--interval 0.05" "--by comm" "--by comm --json"
       "--by reason" "--by protocol" "--by comm --interval 2" "--kallsyms $ks" "--kallsyms $ks --json --interval 3"
       "--reason NO_SOCKET" "--kallsyms $ks --location __udp4_lib_rcv" "--location 0xffffffffc0001000 --by comm"
       "--protocol ipv6 --by reason --interval 1" "--top 1" "--top 3 --by comm --color always")
exits=("" "--json" "--top 3 --context 2" "--perf-compat" "--than 1us")
a=$(mktemp) b=$(mktemp)
trap 'rm -f "$a" "$b"' EXIT
differ=0
compare() {   # compare LABEL ARGS...: runs both builds, prints a difference
    local label=$1; shift
    "$old" "$@" > "$a" 2>&1; echo "rc=$?" >> "$a"
    "$new" "$@" > "$b" 2>&1; echo "rc=$?" >> "$b"
    if ! cmp -s "$a" "$b"; then echo "DIFFERENT: $label"; diff "$a" "$b" | head -5; differ=1; fi
}
n=0
for f in "${files[@]}"; do
    for v in "${drops[@]}"; do
        # shellcheck disable=SC2086
        compare "drops $v $f" drops $v "$f"
        # shellcheck disable=SC2086
        "$old" drops $v - < "$f" > "$a" 2>&1; echo "rc=$?" >> "$a"
        # shellcheck disable=SC2086
        "$new" drops $v - < "$f" > "$b" 2>&1; echo "rc=$?" >> "$b"
        cmp -s "$a" "$b" || { echo "DIFFERENT: drops $v - < $f"; differ=1; }
        n=$((n + 2))
    done
    for v in "${exits[@]}"; do
        # shellcheck disable=SC2086
        compare "exits $v $f" exits $v "$f"
        n=$((n + 1))
    done
done
echo "$n comparisons on ${#files[@]} files: $([[ $differ == 0 ]] && echo "all the same" || echo "differences above")"
exit $differ
