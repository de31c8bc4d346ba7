#!/usr/bin/env bash
# bench/record-overhead.sh [ROUNDS] [SECONDS] — what `kvmscope record` costs a running guest.
#
# Boots the lab guest (TCG) writing 4 KiB O_DIRECT blocks to its virtio disk without pause
# (lab/record/bench-guest.sh), then alternates phases of SECONDS (default 15) without and with
# `kvmscope record` attached, ROUNDS times (default 4), interleaved so drifts hit both alike.
# The guest's I/O rate of each phase is measured from the host with QEMU's own counters
# (query-blockstats wr_operations on a second monitor, from 2 s into the phase to its end);
# kvmscope's CPU (utime+stime from /proc/PID/stat) and peak memory (VmHWM) while recording.
# Prints one line per phase and the medians; the README's record section quotes them.
# RECORD_ARGS adds record options (e.g. --explain: the live request tracker too).
# Needs root (lab guest, /dev/kmsg), lab/setup, a built kvmscope (KVMSCOPE, default release).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../lab/lib/common.sh
source "$ROOT/lab/lib/common.sh"
ROUNDS=${1:-4} SECS=${2:-15}
KVMSCOPE=${KVMSCOPE:-$ROOT/.build/release/kvmscope}
[[ -x "$KVMSCOPE" ]] || die "no $KVMSCOPE (swift build -c release)"
"$ROOT/lab/setup" >/dev/null
load_kernel_env
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kvmscope-rbench.XXXXXX")
QEMU_PID=""
trap '[[ -z $QEMU_PID ]] || kill $QEMU_PID 2>/dev/null; wait 2>/dev/null; cat "$WORK/rec.out" 2>/dev/null | tail -3; rm -rf "$WORK"' EXIT
truncate -s 64M "$WORK/disk.img"
mkdir -p "$WORK/scn/scenario"
install -m 0755 "$ROOT/lab/record/bench-guest.sh" "$WORK/scn/scenario/guest.sh"
(cd "$WORK/scn" && find scenario | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$WORK/scenario.cpio"
cat "$LAB_CACHE/initramfs-base.cpio" "$WORK/scenario.cpio" >"$WORK/initrd"
qemu-system-x86_64 -accel tcg -m 256 -smp 1 -nodefaults -display none -no-reboot \
    -kernel "$LAB_CACHE/vmlinuz" -initrd "$WORK/initrd" -append "console=ttyS0 quiet panic=-1" \
    -serial "file:$WORK/console.log" \
    -drive "if=none,id=drive0,file=$WORK/disk.img,format=raw,cache=none,aio=threads" -device virtio-blk-pci,drive=drive0 \
    -msg timestamp=on -qmp "unix:$WORK/qmp.sock,server=on,wait=off" -qmp "unix:$WORK/check.sock,server=on,wait=off" \
    </dev/null >"$WORK/qemu.out" 2>&1 &
QEMU_PID=$!
for _ in $(seq 600); do grep -q "kvmscope-lab: bench writing" "$WORK/console.log" 2>/dev/null && break; sleep 0.2; done
grep -q "bench writing" "$WORK/console.log" || die "guest did not start writing"

wr_ops() {
    python3 - "$WORK/check.sock" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw"); f.readline()
for c in ("qmp_capabilities", "query-blockstats"):
    f.write(json.dumps({"execute": c}) + "\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r: break
print(sum(d["stats"]["wr_operations"] for d in r["return"]))
PY
}
rate() {  # ops/s over SECS-2 seconds, starting now
    local a b; a=$(wr_ops); sleep $((SECS - 2)); b=$(wr_ops)
    echo $(( (b - a) / (SECS - 2) ))
}
clk=$(getconf CLK_TCK)
declare -a off on cpu rss
for r in $(seq "$ROUNDS"); do
    sleep 2; x=$(rate); off+=("$x"); echo "round $r without record: $x writes/s"
    rm -rf "$WORK/cap"
    # shellcheck disable=SC2086
    "$KVMSCOPE" record --qmp "unix:$WORK/qmp.sock" -o "$WORK/cap" --duration "$((SECS + 5))s" ${RECORD_ARGS:-} >"$WORK/rec.out" 2>&1 &
    rp=$!
    sleep 2; y=$(rate); on+=("$y")
    read -r ut st < <(awk '{print $14, $15}' "/proc/$rp/stat")
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$rp/status")
    kill -INT "$rp"; wait "$rp" || true
    c=$(awk -v t=$((ut + st)) -v hz="$clk" -v s="$SECS" 'BEGIN { printf "%.1f", 100 * t / hz / s }')
    cpu+=("$c"); rss+=("$hwm")
    lines=$(python3 -c "import json; print(json.load(open('$WORK/cap/capture.json'))['counts']['traceLines'])")
    echo "round $r with record:    $y writes/s (kvmscope CPU $c %, peak RSS $((hwm / 1024)) MiB, $lines trace lines)"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
m_off=$(median "${off[@]}") m_on=$(median "${on[@]}")
echo "median: without $m_off writes/s, with record $m_on writes/s (ratio $(awk -v a="$m_on" -v b="$m_off" 'BEGIN { printf "%.3f", a / b }')); kvmscope CPU median $(median "${cpu[@]}") %, peak RSS median $(( $(median "${rss[@]}" | cut -d. -f1) / 1024 )) MiB"
