# shellcheck shell=bash
# Host storage for the scenarios whose failure is real and below QEMU (DISK_SERVER=host-file):
# a size-limited tmpfs, a FUSE file that fails a byte range, a loop device over it, a host
# filesystem on that. Sourced by lab/run; the functions run in the work directory ($WORK),
# from a scenario's prepare_host / prepare_disk hooks (subshells).
#
# Cleanup: every function that creates something pushes the command that removes it onto
# $WORK/host-undo.list before it returns; host_teardown runs that list last-in first-out
# (unmount the host filesystem, detach the loop device, unmount FUSE, stop the FUSE server,
# unmount the tmpfs). lab/run calls host_teardown after QEMU has exited and again from its
# EXIT trap, so it runs when a run fails, times out or is interrupted. If lab/run itself is
# SIGKILLed, the list stays in the work directory: `bash lib/host.sh --teardown WORKDIR`.

HOST_UNDO_LIST="host-undo.list"

# host_undo_push CMD ARG...: remember how to undo what was just made.
host_undo_push() {
    printf '%q ' "$@" >>"$WORK/$HOST_UNDO_LIST"
    echo >>"$WORK/$HOST_UNDO_LIST"
}

# host_umount DIR: unmount, retrying while it is busy (a loop device's release of its
# backing file, or the FUSE server's exit, can lag the command that caused it).
host_umount() {
    local i
    for ((i = 0; i < 50; i++)); do
        mountpoint -q "$1" || return 0
        umount "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    umount "$1"
}

# host_loop_detach DEV FILE: detach DEV if it still serves FILE (the kernel may have given
# the number to someone else after an autoclear; never detach another user's device).
host_loop_detach() {
    local back
    back=$(losetup -n -O BACK-FILE "$1" 2>/dev/null | sed 's/[[:space:]]*$//') || return 0
    [[ "$back" == "$2" ]] || return 0
    losetup -d "$1"
}

# host_stop PID: stop a server this run started (SIGTERM, then SIGKILL after 5 s).
host_stop() {
    local i
    kill "$1" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
}

# host_teardown: undo everything, newest first; keeps going when one step fails, then says so.
host_teardown() {
    local list="$WORK/$HOST_UNDO_LIST" line failed=0
    [[ -f "$list" ]] || return 0
    while IFS= read -r line; do
        [[ -n "$line" ]] || continue
        eval "$line" || { failed=1; echo "lab: host teardown: '$line' failed" >&2; }
    done < <(tac "$list")
    rm -f "$list"
    return $failed
}

# host_mounts_under DIR: the mount points at or below DIR (nothing when none).
host_mounts_under() {
    findmnt -rn -o TARGET | awk -v d="$1" '$0 == d || index($0, d "/") == 1'
}

# host_tmpfs DIR SIZE: a tmpfs of SIZE (mount(8) size=, e.g. 16M) at $WORK/DIR.
host_tmpfs() {
    mkdir -p "$WORK/$1"
    mount -t tmpfs -o "size=$2,mode=0700" kvmscope-lab-tmpfs "$WORK/$1" || return 1
    host_undo_push host_umount "$WORK/$1"
    host_action "mounted a tmpfs of size=$2 at \$WORK/$1 ($(df -B1 --output=size,avail "$WORK/$1" | tail -n 1 | awk '{print $1 " bytes, " $2 " available"}'))"
}

# host_fuse_eio DIR BACKING SIZE: lib/eio_fuse.py at $WORK/DIR serving $WORK/BACKING as
# $WORK/DIR/backing (SIZE bytes); its log is $WORK/host-fuse.log.
host_fuse_eio() {
    local dir="$WORK/$1" i pid
    mkdir -p "$dir"
    # /usr/bin/python3: Debian's python3-fusepy is installed for the system Python.
    /usr/bin/python3 "$LAB_DIR/lib/eio_fuse.py" "$WORK/$2" "$3" "$dir" "$WORK/host-fuse.log" \
        </dev/null >>"$WORK/host-fuse.out" 2>&1 &
    pid=$!
    host_undo_push host_stop "$pid"
    for ((i = 0; i < 100; i++)); do
        if mountpoint -q "$dir"; then
            host_undo_push host_umount "$dir"
            host_action "FUSE server (lib/eio_fuse.py, pid $pid) serves \$WORK/$2 as \$WORK/$1/backing ($3 bytes)"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "lab: the FUSE server did not mount $dir: $(tail -n 3 "$WORK/host-fuse.out" 2>/dev/null)" >&2
    return 1
}

# host_fuse_set_eio DIR START LENGTH: from now on the FUSE file fails bytes START..START+LENGTH-1.
host_fuse_set_eio() {
    echo "eio $2 $3" >"$WORK/$1/control" || return 1
    host_action "FUSE file \$WORK/$1/backing now fails reads and writes of bytes $2..$(($2 + $3 - 1)) with EIO"
}

# host_loop FILE: attach $WORK/FILE to a free loop device with direct I/O; prints the device.
host_loop() {
    local dev dio
    dev=$(losetup --direct-io=on --show -f "$WORK/$1") || return 1
    host_undo_push host_loop_detach "$dev" "$WORK/$1"
    dio=$(losetup -n -O DIO "$dev" | tr -d ' ')
    host_action "attached \$WORK/$1 to $dev (losetup --direct-io=on; DIO=$dio)"
    echo "$dev"
}

# host_mount DEV DIR [OPTIONS]: mount DEV at $WORK/DIR.
host_mount() {
    mkdir -p "$WORK/$2"
    mount ${3:+-o "$3"} "$1" "$WORK/$2" || return 1
    host_undo_push host_umount "$WORK/$2"
    host_action "mounted $1 ($(findmnt -n -o FSTYPE "$WORK/$2")) at \$WORK/$2${3:+ with -o $3}"
}

# The host kernel log of a run (HOST_DMESG=yes): lab/run writes a begin marker to /dev/kmsg
# before it sets anything up and an end marker after the teardown, and keeps the lines of
# `dmesg --time-format iso` from one marker to the other. The window is chosen by the markers
# (time), never by what the lines say; it holds whatever else the host logged meanwhile.
# Each marker also carries the wall clock at which it was written (gettimeofday, the clock of
# trace.log and QMP): dmesg's own wall-clock stamps are boot time + printk's clock, which can
# drift from the real clock (on this lab host by ~0.4 s), and the marker measures that.
host_dmesg_mark() {  # host_dmesg_mark begin|end
    echo "kvmscope-lab: host-dmesg $1 $NAME ${WORK##*/} wall clock $(date +%s.%6N)" >/dev/kmsg
}

host_dmesg_capture() {  # host_dmesg_capture OUTFILE
    local begin="kvmscope-lab: host-dmesg begin $NAME ${WORK##*/} wall clock " end="kvmscope-lab: host-dmesg end $NAME ${WORK##*/} wall clock "
    dmesg --time-format iso | awk -v b="$begin" -v e="$end" '
        !on && index($0, " " b) { on = 1 }
        on { print }
        on && index($0, " " e) { done = 1; exit }
        END { exit done ? 0 : 1 }' >"$1"
}

if [[ "${BASH_SOURCE[0]}" == "$0" && "${1:-}" == --teardown && -n "${2:-}" ]]; then
    WORK="$2"
    host_action() { :; }
    host_teardown
fi
