#!/usr/bin/env bash
# bench/make-guest-log.sh OUT [MEGABYTES] [--errors-only | --one-boot]
#
# Builds a large guest kernel log for `kvmscope-bench guest` and the README's comparison with
# grep and wc: the real lab console captures (6.1 guest: boot noise, then the injected disk
# errors, then the full dmesg) and the fixtures' real kernel lines from other kernels and
# stamp styles, repeated until the file reaches MEGABYTES (default 1024, i.e. ~1 GB).
#
# Each copy moves every uptime stamp ([  2.327010], kmsg's microseconds) forward by 10 000 s,
# so repeated errors are new events rather than the same lines replayed (which kvmscope would
# rightly count once). Nothing else is changed.
#
# --errors-only keeps only the seed lines that report trouble (I/O errors, buffer errors,
# filesystem and journal errors, SCSI results, rate-limit counts): the worst case, where
# every line is an event.
#
# --one-boot makes the kernel log of one long-running boot instead (what `dmesg` or a kern.log
# holds): the guest's own `dmesg` from each of the nine consoles (its whole ring buffer, the
# injected errors included), each moved forward 10 000 s past the previous one, with
# `Linux version` only once. The default input is the worst case for the reader's boot
# tracking (every copy of every console is a boot that ends in a replay); this one is the
# common case.
set -euo pipefail
usage="usage: bench/make-guest-log.sh OUT [MEGABYTES] [--errors-only | --one-boot]"
out=${1:?$usage}
megabytes=${2:-1024}
filter='.'
oneboot=0
if [[ ${3:-} == --errors-only ]]; then
    filter='I/O error|IO error|Buffer I/O|EXT[234]-fs (error|warning)|Remounting|Aborting journal|JBD2?:|XFS .*(error|shut)|Result: hostbyte|Sense|callbacks suppressed|lost page write'
elif [[ ${3:-} == --one-boot ]]; then
    oneboot=1
elif [[ -n ${3:-} ]]; then
    echo "$usage" >&2; exit 2
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Pinned to the first nine scenarios so that figures stay comparable across releases.
seeds=()
for s in async-write-esrch discard-errors enospc-pause ext4-readonly flush-eio nbd-eio read-once werror-stop write-eio; do
    seeds+=("$root/lab/scenarios/$s/console.log")
done
# The fixtures (other kernels, other stamp styles, other machines' uptimes) are not one boot.
[[ $oneboot == 1 ]] || seeds+=("$root"/Tests/Fixtures/guest/*.log)
for f in "${seeds[@]}"; do [[ -f $f ]] || { echo "missing seed $f" >&2; exit 1; }; done

LC_ALL=C awk -v target=$((megabytes * 1000 * 1000)) -v filter="$filter" -v oneboot=$oneboot '
    BEGIN { n = 0; file = 0 }
    FNR == 1 { file++; inDmesg = 0 }
    oneboot && /^kvmscope-lab: dmesg begin/ { inDmesg = 1; next }
    oneboot && (/^kvmscope-lab: dmesg end/ || /reboot: (Restarting system|Power down|System halted)/) { inDmesg = 0 }
    oneboot && (!inDmesg || (/Linux version / && sawVersion++)) { next }
    $0 ~ filter { seed[n] = $0; seedFile[n] = file; n++ }
    END {
        written = 0
        for (copy = 0; written < target; copy++) {
            for (i = 0; i < n; i++) {
                if (oneboot && copy > 0 && seed[i] ~ /Linux version /) continue
                shift = oneboot ? (copy * file + seedFile[i]) * 10000 : copy * 10000
                line = seed[i]
                if (match(line, /\[ *[0-9]+\.[0-9][0-9][0-9][0-9][0-9][0-9]\]/)) {
                    stamp = substr(line, RSTART + 1, RLENGTH - 2)
                    sub(/^ +/, "", stamp)
                    split(stamp, part, ".")
                    line = substr(line, 1, RSTART - 1) sprintf("[%5d.%s]", part[1] + shift, part[2]) substr(line, RSTART + RLENGTH)
                } else if (match(line, /^[0-9]+,[0-9]+,[0-9]+,/)) {
                    split(substr(line, 1, RLENGTH), f, ",")
                    line = f[1] "," f[2] "," sprintf("%.0f", f[3] + shift * 1000000) "," substr(line, RLENGTH + 1)
                }
                print line
                written += length(line) + 1
            }
        }
    }' "${seeds[@]}" > "$out"
ls -l "$out"
