#!/usr/bin/env bash
# Issue 19: `kvmscope exits` and `kvmscope drops` on ftrace text, side by side with another
# build (e.g. main's, or a copy of the binary kept before a change), interleaved round by
# round; prints medians of CPU time (user + sys, from wait4), wall time and MB/s per CPU
# second, and checks first that both builds print the same bytes (text and --json).
#
#   bench/text-speed.sh [MEGABYTES] [ROUNDS]          (default 200 MB, 7 rounds)
#
# Inputs, built once into $WORK (default /tmp/kvmscope-text-speed): exits-MB.txt
# (bench/make-exits.sh: kvm_exit/kvm_entry, 8 vCPUs) and drops-MB.txt (bench/make-drops.sh:
# real 6.18 kfree_skb lines, a consume_skb after every tenth).
# Environment: KVMSCOPE (default .build/release/kvmscope), OLD_KVMSCOPE (the build to compare
# with; without it only KVMSCOPE is timed). The machine is shared: read medians, and note the
# load average printed.
set -euo pipefail
cd "$(dirname "$0")/.."
megabytes=${1:-200}
rounds=${2:-7}
work=${WORK:-/tmp/kvmscope-text-speed}
kvmscope=${KVMSCOPE:-.build/release/kvmscope}
mkdir -p "$work"
[[ -x $kvmscope ]] || { echo "no $kvmscope: swift build -c release" >&2; exit 2; }
[[ -s $work/exits-$megabytes.txt ]] || bench/make-exits.sh "$work/exits-$megabytes.txt" "$megabytes" >&2
[[ -s $work/drops-$megabytes.txt ]] || bench/make-drops.sh "$work/drops-$megabytes.txt" "$megabytes" >&2
exec python3 bench/text_speed.py "$rounds" "$kvmscope" "${OLD_KVMSCOPE:-}" \
    "exits=$work/exits-$megabytes.txt" "drops=$work/drops-$megabytes.txt"
