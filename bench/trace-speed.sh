#!/usr/bin/env bash
# Issue 19: `kvmscope trace --json` side by side with the plain-Python analyzer
# (bench/trace_reference.py) and `wc -l` (the floor: reading the file and finding its lines)
# on the same files, in one run, interleaved round by round; prints medians of CPU time
# (user + sys of the process, from wait4) and wall time, MB/s per CPU second and wall, and
# the ratios. Also kvmscope's start-up: `trace --json` of a one-line trace.
#
#   bench/trace-speed.sh [MEGABYTES] [ROUNDS]          (default 100 MB, 7 rounds)
#
# Inputs (bench/make-trace.sh, real lab lines), built once into $WORK (default
# /tmp/kvmscope-trace-speed):
#   relevant-MB.log    every line a virtio-blk or virtqueue event (the readers' worst case)
#   irrelevant-MB.log  90 % of the lines events no analysis reads
# Environment: KVMSCOPE (default .build/release/kvmscope; build with `swift build -c
# release`), OLD_KVMSCOPE (another build to time beside it, e.g. main's: its JSON must be
# byte-identical, or the run stops), NO_PYTHON=1 (leave the reference out: 7 s a round).
# The machine is not quiet when shared: read medians, and note the load average printed.
set -euo pipefail
cd "$(dirname "$0")/.."
megabytes=${1:-100}
rounds=${2:-7}
work=${WORK:-/tmp/kvmscope-trace-speed}
kvmscope=${KVMSCOPE:-.build/release/kvmscope}
mkdir -p "$work"
[[ -x $kvmscope ]] || { echo "no $kvmscope: swift build -c release" >&2; exit 2; }
for compose in relevant irrelevant; do
    f=$work/$compose-$megabytes.log
    [[ -s $f ]] || bench/make-trace.sh "$f" "$megabytes" --compose "$compose" >&2
done
head -n 1 "$work/relevant-$megabytes.log" > "$work/one-line.log"
exec python3 bench/trace_speed.py "$rounds" "$kvmscope" "${OLD_KVMSCOPE:-}" "${NO_PYTHON:-}" \
    "$work/one-line.log" "$work/relevant-$megabytes.log" "$work/irrelevant-$megabytes.log"
