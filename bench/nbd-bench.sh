#!/usr/bin/env bash
# bench/nbd-bench.sh — kvmscope nbd serve beside nbdkit (file plugin + error filter at rate 0,
# the closest fault-injecting peer) and qemu-nbd, each serving its own copy of the same raw
# image (kvmscope takes QEMU's image locks, so they cannot share one), with the same client
# (qemu-img bench over TCP on 127.0.0.1): 4 KiB reads scattered over the disk at depth 1 and 32,
# the same at depth 1 from four connections at once (multi-conn), and 1 MiB sequential writes
# at depth 1 and 8. kvmscope runs with no rules and with 10 000 rules that match none of the
# requests. Rounds are interleaved (every server, every case, then the next round); the table
# has the medians and the ratios to nbdkit and qemu-nbd.
# Usage: bench/nbd-bench.sh [IMAGE_MiB] [ROUNDS]   (needs qemu-utils, nbdkit; builds kvmscope in release mode)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SIZE_MIB=${1:-256}
ROUNDS=${2:-3}
READS=${READS:-40000}            # 4 KiB reads at queue depth 1 (per connection with 4)
READS_QD32=${READS_QD32:-40000}  # 4 KiB reads at queue depth 32
WRITES=${WRITES:-800}            # 1 MiB writes at queue depth 1 and 8
for t in qemu-img qemu-nbd nbdkit; do
    command -v "$t" >/dev/null || { echo "nbd-bench: $t not found (apt-get install -y qemu-utils nbdkit)" >&2; exit 1; }
done
[[ -x .build/release/kvmscope ]] || swift build -c release --product kvmscope >&2
KVMSCOPE=$PWD/.build/release/kvmscope

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nbd-bench.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

dd if=/dev/urandom of="$WORK/base.img" bs=1M count="$SIZE_MIB" status=none
for s in qemu-nbd nbdkit kvmscope kvmscope-rules; do cp "$WORK/base.img" "$WORK/$s.img"; done
# 10 000 rules armed from the start, spread over the whole disk, for discards only: every read
# and write is looked up in the sector index, none matches.
for ((i = 0; i < 10000; i++)); do
    printf '[inject-error]\nevent = "none"\niotype = "discard"\nsector = "%d"\n' $((i * SIZE_MIB * 2048 / 10000))
done >"$WORK/rules-10000.cfg"

wait_port() {
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "nbd-bench: nothing listens on port $1" >&2; exit 1
}

qemu-nbd -f raw -t -e 8 -b 127.0.0.1 -p 10901 "$WORK/qemu-nbd.img" & PIDS+=($!)
nbdkit -f -i 127.0.0.1 -p 10902 --filter=error file "$WORK/nbdkit.img" error-rate=0 & PIDS+=($!)
"$KVMSCOPE" nbd serve -f raw "$WORK/kvmscope.img" --port 10903 --quiet >/dev/null 2>"$WORK/k1.err" & PIDS+=($!)
"$KVMSCOPE" nbd serve -f raw "$WORK/kvmscope-rules.img" --port 10904 --quiet --rules "$WORK/rules-10000.cfg" >/dev/null 2>"$WORK/k2.err" & PIDS+=($!)
SERVERS=(qemu-nbd nbdkit kvmscope kvmscope-rules)
PORTS=(10901 10902 10903 10904)
for p in "${PORTS[@]}"; do wait_port "$p"; done

# qemu-img bench steps by -S and wraps at the end of the disk; a stride of 7919 blocks visits
# the 4 KiB blocks in a scattered order.
run() {  # COUNT ARGS... → seconds
    local n=$1; shift
    qemu-img bench -f raw -c "$n" "$@" | sed -n 's/^Run completed in \([0-9.]*\) seconds\./\1/p'
}
measure() {  # CASE URI → operations per second
    local s
    case $1 in
        r1)  s=$(run "$READS" -d 1 -s 4k -S $((4096 * 7919)) "$2"); echo "$READS $s" ;;
        r32) s=$(run "$READS_QD32" -d 32 -s 4k -S $((4096 * 7919)) "$2"); echo "$READS_QD32 $s" ;;
        r1x4)  # four connections at once, each at depth 1, from different starting offsets
            local t0 t1; t0=$(date +%s.%N)
            for k in 0 1 2 3; do run "$READS" -d 1 -s 4k -S $((4096 * 7919)) -o $((k * 4096 * 1031)) "$2" >/dev/null & done
            wait; t1=$(date +%s.%N); echo "$((READS * 4)) $(echo "$t1 - $t0" | bc -l)" ;;
        w1)  s=$(run "$WRITES" -w -d 1 -s 1M -S 1M "$2"); echo "$WRITES $s" ;;
        w8)  s=$(run "$WRITES" -w -d 8 -s 1M -S 1M "$2"); echo "$WRITES $s" ;;
    esac
}
CASES=(r1 r32 r1x4 w1 w8)
: >"$WORK/results"
for ((round = 1; round <= ROUNDS; round++)); do
    for c in "${CASES[@]}"; do
        for i in "${!SERVERS[@]}"; do
            read -r n secs < <(measure "$c" "nbd://127.0.0.1:${PORTS[$i]}")
            echo "$round ${SERVERS[$i]} $c $n $secs" >>"$WORK/results"
        done
    done
    echo "nbd-bench: round $round of $ROUNDS done" >&2
done

awk -v cases="${CASES[*]}" -v servers="${SERVERS[*]}" '
    { rate[$2, $3, ++count[$2, $3]] = $4 / $5 }
    function median(s, c,   n, i, j, t, v) {
        n = count[s, c]; for (i = 1; i <= n; i++) v[i] = rate[s, c, i]
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    END {
        nc = split(cases, C, " "); ns = split(servers, S, " ")
        names["r1"] = "4 KiB reads/s, qd 1"; names["r32"] = "4 KiB reads/s, qd 32"; names["r1x4"] = "4 KiB reads/s, 4 connections x qd 1"
        names["w1"] = "1 MiB writes/s, qd 1"; names["w8"] = "1 MiB writes/s, qd 8"
        printf "| server |"; for (i = 1; i <= nc; i++) printf " %s |", names[C[i]]; printf "\n|---|"
        for (i = 1; i <= nc; i++) printf "---|"; printf "\n"
        for (j = 1; j <= ns; j++) {
            printf "| %s |", S[j]
            for (i = 1; i <= nc; i++) {
                m = median(S[j], C[i]); k = median("nbdkit", C[i]); q = median("qemu-nbd", C[i])
                if (S[j] ~ /^kvmscope/) printf " %.0f (%.2fx nbdkit, %.2fx qemu-nbd) |", m, m / k, m / q
                else printf " %.0f |", m
            }
            printf "\n"
        }
    }' "$WORK/results"
echo "medians of $ROUNDS interleaved rounds; image ${SIZE_MIB} MiB raw (page cache), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); client qemu-img bench over TCP 127.0.0.1; $(qemu-nbd --version | head -n1); $(nbdkit --version)"
