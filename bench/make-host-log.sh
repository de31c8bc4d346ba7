#!/usr/bin/env bash
# bench/make-host-log.sh OUT [MEGABYTES] [--failures-only]
#
# Builds a large host kernel log for `kvmscope-bench host` and `kvmscope host`: the lab's real
# host kernel captures (lab/scenarios/host-*/host-dmesg.log: dmesg --time-format iso, with the
# loop device's I/O errors and mkfs's noise), the host fixture (one kern.log line per message
# kind, Tests/Fixtures/host) and, for the ordinary lines a host log is mostly made of, the real
# kernel boot lines of the first nine lab scenarios' console captures (printk stamps), repeated
# until the file reaches MEGABYTES (default 1024, i.e. ~1 GB).
#
# Each copy moves every printk stamp ([  2.327010]) forward by 10 000 s; nothing else changes
# (kvmscope host keeps repeated lines, so repeats are simply more findings).
#
# --failures-only keeps only the seed lines that report trouble: the worst case, where every
# line is a finding.
set -euo pipefail
out=${1:?usage: bench/make-host-log.sh OUT [MEGABYTES] [--failures-only]}
megabytes=${2:-1024}
filter='.'
if [[ ${3:-} == --failures-only ]]; then
    filter='error|Error|ERROR|Failing path|remaining active paths: 0|timeout|timed out|not responding|socket|Disk failure|out-of-data-space|Remounting|readonly|shut down|blocked for more|Killed process|Sense|Result:|offline|resetting|failed'
elif [[ -n ${3:-} ]]; then
    echo "usage: bench/make-host-log.sh OUT [MEGABYTES] [--failures-only]" >&2; exit 2
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seeds=("$root"/lab/scenarios/host-*/host-dmesg.log "$root"/Tests/Fixtures/host/*.log)
for s in async-write-esrch discard-errors enospc-pause ext4-readonly flush-eio nbd-eio read-once werror-stop write-eio; do
    seeds+=("$root/lab/scenarios/$s/console.log")
done
for f in "${seeds[@]}"; do [[ -f $f ]] || { echo "missing seed $f" >&2; exit 1; }; done

# Console captures: their kernel lines only (the guest's shell lines are no part of a kernel log).
{ for f in "${seeds[@]}"; do
      case $f in */console.log) { LC_ALL=C grep -a '^\[' "$f" || true; } | tr -d '\r' ;; *) cat "$f" ;; esac
  done; } | LC_ALL=C grep -aE "$filter" | LC_ALL=C awk -v target=$((megabytes * 1000 * 1000)) '
    { seed[n++] = $0 }
    END {
        written = 0
        for (copy = 0; written < target; copy++) {
            shift = copy * 10000
            for (i = 0; i < n; i++) {
                line = seed[i]
                if (match(line, /\[ *[0-9]+\.[0-9][0-9][0-9][0-9][0-9][0-9]\]/)) {
                    stamp = substr(line, RSTART + 1, RLENGTH - 2)
                    sub(/^ +/, "", stamp)
                    split(stamp, part, ".")
                    line = substr(line, 1, RSTART - 1) sprintf("[%5d.%s]", part[1] + shift, part[2]) substr(line, RSTART + RLENGTH)
                }
                print line
                written += length(line) + 1
            }
        }
    }' > "$out"
ls -l "$out"
