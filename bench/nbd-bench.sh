#!/usr/bin/env bash
# bench/nbd-bench.sh — kvmscope nbd serve against qemu-nbd on the same raw image, with the same
# client (qemu-img bench over TCP on 127.0.0.1): 4 KiB reads spread over the disk and 1 MiB
# sequential writes, kvmscope with no rules and with 10 000 rules loaded that match none of the
# requests. One run of each (the machine is shared); prints a table for the README.
# Usage: bench/nbd-bench.sh [IMAGE_MiB]   (needs qemu-utils; builds kvmscope in release mode)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SIZE_MIB=${1:-256}
READS=${READS:-50000}            # 4 KiB reads at queue depth 1
READS_QD32=${READS_QD32:-20000}  # 4 KiB reads at queue depth 32
WRITES=${WRITES:-1000}           # 1 MiB writes at queue depth 1 and 8
for t in qemu-img qemu-nbd; do
    command -v "$t" >/dev/null || { echo "nbd-bench: $t not found (apt-get install -y qemu-utils)" >&2; exit 1; }
done
[[ -x .build/release/kvmscope ]] || swift build -c release --product kvmscope >&2
KVMSCOPE=$PWD/.build/release/kvmscope

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nbd-bench.XXXXXX")
SERVER=""
cleanup() { [[ -n "$SERVER" ]] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

dd if=/dev/urandom of="$WORK/disk.img" bs=1M count="$SIZE_MIB" status=none
# 10 000 rules armed from the start, spread over the whole disk, for discards only: every read
# and write is looked up in the sector index, none matches.
for ((i = 0; i < 10000; i++)); do
    printf '[inject-error]\nevent = "none"\niotype = "discard"\nsector = "%d"\n' $((i * SIZE_MIB * 2048 / 10000))
done >"$WORK/rules-10000.cfg"

wait_port() {
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "nbd-bench: nothing listens on port $1" >&2; exit 1
}

# qemu-img bench steps by -S and wraps at the end of the disk; a stride of 7919 blocks visits
# the 4 KiB blocks in a scattered order. Each case runs once.
run() {  # COUNT ARGS... → seconds
    local n=$1; shift
    qemu-img bench -f raw -c "$n" "$@" | sed -n 's/^Run completed in \([0-9.]*\) seconds\./\1/p'
}
bench() {  # NAME URI
    local r1 r32 w1 w8
    r1=$(run "$READS" -d 1 -s 4k -S $((4096 * 7919)) "$2")
    r32=$(run "$READS_QD32" -d 32 -s 4k -S $((4096 * 7919)) "$2")
    w1=$(run "$WRITES" -w -d 1 -s 1M -S 1M "$2")
    w8=$(run "$WRITES" -w -d 8 -s 1M -S 1M "$2")
    awk -v n="$1" -v r1="$r1" -v r32="$r32" -v w1="$w1" -v w8="$w8" -v rc="$READS" -v rc32="$READS_QD32" -v wc="$WRITES" 'BEGIN {
        printf "| %s | %.0f | %.0f | %.0f | %.0f |\n", n, rc / r1, rc32 / r32, wc / w1, wc / w8 }'
}

echo "| server | 4 KiB reads/s, qd 1 | 4 KiB reads/s, qd 32 | 1 MiB writes/s (MiB/s), qd 1 | 1 MiB writes/s (MiB/s), qd 8 |"
echo "|---|---|---|---|---|"
qemu-nbd -f raw -t -b 127.0.0.1 -p 10901 "$WORK/disk.img" & SERVER=$!
wait_port 10901
bench "qemu-nbd $(qemu-nbd --version | head -n1 | awk '{print $2}')" nbd://127.0.0.1:10901
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""

"$KVMSCOPE" nbd serve -f raw "$WORK/disk.img" --port 10902 --quiet >/dev/null 2>"$WORK/k1.err" & SERVER=$!
wait_port 10902
bench "kvmscope nbd serve (no rules)" nbd://127.0.0.1:10902
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""

"$KVMSCOPE" nbd serve -f raw "$WORK/disk.img" --port 10903 --quiet --rules "$WORK/rules-10000.cfg" >/dev/null 2>"$WORK/k2.err" & SERVER=$!
wait_port 10903
bench "kvmscope nbd serve (10000 rules)" nbd://127.0.0.1:10903
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
echo "image ${SIZE_MIB} MiB raw (page cache), $(nproc) cores; client qemu-img bench over TCP 127.0.0.1"
