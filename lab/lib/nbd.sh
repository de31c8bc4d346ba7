# shellcheck shell=bash
# Sourced by lab/run for scenarios with DISK_SERVER=kvmscope-nbd: the guest's disk is served by
# `kvmscope nbd serve` (the scenario's rules.cfg applied by kvmscope, not by QEMU's blkdebug) on a
# UNIX socket in the work directory, and QEMU's drive points at it. Extra outputs:
#   nbd-faults.jsonl  one JSON line per fault kvmscope injected (proof that it fired)
#   nbd-server.log    the server's stderr (connections, injected faults, errno mappings)
# Environment: KVMSCOPE = path of the kvmscope binary (default: .build/debug/kvmscope of this checkout).

NBD_PID=""

# nbd_start: starts the server on $WORK/disk.img and sets $drive to use it.
nbd_start() {
    local bin="${KVMSCOPE:-$LAB_DIR/../.build/debug/kvmscope}"
    [[ -x "$bin" ]] || die "kvmscope not found at $bin (run 'swift build' or set KVMSCOPE)"
    case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
    # Run in $WORK with relative names so that logs name "rules.cfg:3", not a temporary path.
    (cd "$WORK" && exec "$bin" nbd serve -f raw disk.img --rules rules.cfg --socket nbd.sock \
        --log nbd-faults.jsonl >nbd.uri 2>nbd-server.log) &
    NBD_PID=$!
    local i
    for i in $(seq 100); do
        [[ -S "$WORK/nbd.sock" ]] && break
        kill -0 "$NBD_PID" 2>/dev/null || { cat "$WORK/nbd-server.log" >&2; die "kvmscope nbd serve exited"; }
        sleep 0.1
    done
    [[ -S "$WORK/nbd.sock" ]] || die "kvmscope nbd serve did not create $WORK/nbd.sock within 10 s"
    drive="if=none,id=drive0,file=nbd:unix:$WORK/nbd.sock,format=raw${DRIVE_OPTS:+,$DRIVE_OPTS}"
    note "disk served by $("$bin" --version 2>/dev/null | head -n 1) nbd serve on $WORK/nbd.sock"
}

# nbd_stop: stops the server (SIGTERM; it exits after closing its clients).
nbd_stop() {
    [[ -n "$NBD_PID" ]] || return 0
    kill "$NBD_PID" 2>/dev/null || true
    wait "$NBD_PID" 2>/dev/null || true
    NBD_PID=""
}
