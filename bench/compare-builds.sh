#!/usr/bin/env bash
# bench/compare-builds.sh OLD_BENCH NEW_BENCH DIR [ROUNDS]
#
# Runs two builds of kvmscope-bench (e.g. before and after a refactor: build each revision with
# `swift build -c release --product kvmscope-bench` in its own worktree) on the same inputs,
# interleaved round by round, and prints each benchmark's MB/s line per round. DIR holds the
# inputs: trace.log (bench/make-trace.sh), guest.log (bench/make-guest-log.sh), exits.txt
# (bench/make-exits.sh), drops.txt (bench/make-drops.sh). Take medians of the rounds.
set -euo pipefail
old=${1:?usage: bench/compare-builds.sh OLD_BENCH NEW_BENCH DIR [ROUNDS]}
new=${2:?usage}
dir=${3:?usage}
rounds=${4:-3}
for r in $(seq 1 "$rounds"); do
    for b in trace:trace.log guest:guest.log exits:exits.txt drops:drops.txt; do
        name=${b%%:*}; file=$dir/${b#*:}
        [[ -f $file ]] || continue
        for side in old new; do
            bin=$old; [[ $side == new ]] && bin=$new
            line=$("$bin" "$name" "$file" 2>&1 | grep -m1 -E 'MB/s' || true)
            echo "round $r $name $side: $line"
        done
    done
done
