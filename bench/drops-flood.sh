#!/usr/bin/env bash
# Benchmark of `kvmscope drops` beside `perf record -e skb:kfree_skb` + `perf script`:
# a loopback UDP flood to a closed port (every datagram is a NO_SOCKET drop at
# __udp4_lib_rcv) inside a network namespace made here, for SECONDS, from SENDERS processes.
#
#   sudo bench/drops-flood.sh [SECONDS=10] [SENDERS=2] [RATE_PER_SENDER=0 (unlimited)]
#
# Reports, for each tool: drops the kernel made (the namespace's Udp NoPorts counter), events
# the tool handled and per second, events lost (ring-buffer overruns for kvmscope; LOST
# records for perf), CPU seconds (user+sys, /usr/bin/time) and peak RSS. Uses a release build
# of kvmscope ($KVMSCOPE, default .build/release/kvmscope; built once if missing).
# Only ever sends to 127.0.0.1 inside the namespace it creates; removes it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
senders=${2:-2}
rate=${3:-0}
[ "$(id -u)" = 0 ] || { echo "drops-flood: needs root (tracefs, netns)" >&2; exit 2; }
out=bench/out
mkdir -p $out
gcc -O2 -o $out/udp-flood bench/udp-flood.c
kvmscope=${KVMSCOPE:-.build/release/kvmscope}
[ -x "$kvmscope" ] || swift build -c release --product kvmscope >/dev/null
ns=kvs-flood-$$
tmp=$(mktemp -d)
cleanup() { ip netns del $ns 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
ip netns add $ns
ip -n $ns link set lo up

noports() { ip netns exec $ns awk '/^Udp:/ { if (++n == 2) print $3 }' /proc/net/snmp; }
flood() {
  local pids=()
  for i in $(seq 0 $((senders - 1))); do
    ip netns exec $ns taskset -c $((i % $(nproc))) $out/udp-flood 9 "$secs" "$rate" > "$tmp/flood.$i" &
    pids+=($!)
  done
  wait "${pids[@]}"
  cat "$tmp"/flood.* | awk '{ n += $2 } END { printf "sent %d datagrams (%.0f/s)\n", n, n / '"$secs"' }'
}
cpu_of() { tail -1 "$1" | awk '{ printf "cpu %.2f s (user %.2f + sys %.2f), peak RSS %.1f MiB", $1 + $2, $1, $2, $3 / 1024 }'; }

echo "== flood alone (no tracing), $senders senders, $secs s"
before=$(noports); flood; echo "kernel NoPorts: $(( $(noports) - before ))"

run_kvmscope() {  # $1: label, $2: --source value
  echo "== kvmscope drops --source $2 ($1)"
  before=$(noports)
  /usr/bin/time -f "%U %S %M" -o "$tmp/time.kvmscope" \
    "$kvmscope" drops --source "$2" --json --duration $((secs + 3))s > "$tmp/kvmscope.json" 2> "$tmp/kvmscope.err" &
  kpid=$!
  for _ in $(seq 600); do grep -q "watching drops" "$tmp/kvmscope.err" && break; sleep 0.05; done
  sleep 0.5
  flood
  wait $kpid || true
  made=$(( $(noports) - before ))
  tail -1 "$tmp/kvmscope.json" | python3 -c '
import json, sys
s = json.load(sys.stdin)
made, secs = int(sys.argv[1]), float(sys.argv[2])
udp = sum(g["count"] for g in s["groups"] if g["symbol"] == "__udp4_lib_rcv" and g["reason"] == "NO_SOCKET")
total, lost = s["drops"], s["lost"]
unknown = " + unknown" if s["lost_unknown"] else ""
print(f"kernel NoPorts: {made}; kvmscope counted {udp} NO_SOCKET at __udp4_lib_rcv ({total} drops in all) = {udp / secs:.0f} events/s; lost (ring overruns): {lost}{unknown}")
' "$made" "$secs"
  echo "kvmscope: $(cpu_of "$tmp/time.kvmscope")"
}

run_kvmscope "binary per-CPU buffers" tracefs
[ "${TEXT:-1}" = 1 ] && run_kvmscope "trace_pipe text, for comparison" tracefs-text

if command -v perf >/dev/null; then
  echo "== perf record -e skb:kfree_skb -a, then perf script"
  before=$(noports)
  /usr/bin/time -f "%U %S %M" -o "$tmp/time.record" \
    perf record -q -e skb:kfree_skb -a -o "$tmp/perf.data" -- sleep $((secs + 3)) 2> "$tmp/record.err" &
  ppid=$!
  sleep 1
  flood
  wait $ppid || true
  made=$(( $(noports) - before ))
  /usr/bin/time -f "%U %S %M" -o "$tmp/time.script" perf script -i "$tmp/perf.data" > "$tmp/perf.txt" 2> "$tmp/script.err" || true
  got=$(grep -c '__udp4_lib_rcv.*NO_SOCKET' "$tmp/perf.txt" || true)
  lost=$(perf report -i "$tmp/perf.data" --stats 2>/dev/null | awk '/LOST events/ { print $3; f = 1 } END { if (!f) print 0 }')
  lostsamples=$(perf report -i "$tmp/perf.data" --stats 2>/dev/null | awk '/LOST_SAMPLES events/ { print $3; f = 1 } END { if (!f) print 0 }')
  echo "kernel NoPorts: $made; perf script printed $got NO_SOCKET at __udp4_lib_rcv = $(( got / secs )) events/s; LOST records: $lost, LOST_SAMPLES records: $lostsamples; data file $(du -m "$tmp/perf.data" | cut -f1) MB"
  echo "perf record: $(cpu_of "$tmp/time.record")"
  echo "perf script: $(cpu_of "$tmp/time.script")"
  grep -i -E "lost|warning" "$tmp/record.err" "$tmp/script.err" | head -3 || true
fi
