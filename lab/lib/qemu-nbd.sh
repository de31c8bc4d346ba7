# shellcheck shell=bash
# Sourced by lab/run for scenarios with DISK_SERVER=qemu-nbd: the guest's disk is exported by
# qemu-nbd (qemu-utils) over TCP on 127.0.0.1 and QEMU's drive is an NBD client of it
# (driver=nbd, with the scenario's NBD_OPTS, e.g. reconnect-delay=3). TCP, not a UNIX socket, so
# that a dead server shows as ECONNREFUSED (-111) on QEMU's reconnect attempts.
# The scenario's during_run may call nbd_kill to kill the server while the guest runs.
# Extra output: nbd-server.log (qemu-nbd's stderr). run.txt gets nbd_server= and nbd_server_command=.

NBD_PID=""
NBD_PORT=""
NBD_EXPORT=disk

# nbd_start: starts qemu-nbd on $WORK/disk.img and sets $drive to use it.
nbd_start() {
    command -v qemu-nbd >/dev/null || die "qemu-nbd not found (package qemu-utils); run lab/setup"
    # A free port, chosen by the kernel (bind to port 0); qemu-nbd binds it right after.
    NBD_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    local cmd=(qemu-nbd --format=raw --export-name="$NBD_EXPORT" --bind=127.0.0.1 --port="$NBD_PORT"
               --persistent --shared=1 --pid-file=nbd.pid disk.img)
    # Run in $WORK so the command line names disk.img, not a temporary path. The subshell waits
    # for qemu-nbd, so that nbd_kill kills qemu-nbd itself (its pid from --pid-file) and bash
    # does not report a "Killed" job.
    (cd "$WORK" && "${cmd[@]}" 2>nbd-server.log) 2>/dev/null &
    NBD_PID=$!
    local i
    # Ready when the port is in LISTEN state (st 0A in /proc/net/tcp). Not a test connection:
    # qemu-nbd would log its failed negotiation.
    local want
    want=$(printf '0100007F:%04X' "$NBD_PORT")
    for i in $(seq 100); do
        awk -v a="$want" '$2 == a && $4 == "0A" { found = 1 } END { exit !found }' /proc/net/tcp && break
        kill -0 "$NBD_PID" 2>/dev/null || { cat "$WORK/nbd-server.log" >&2; die "qemu-nbd exited"; }
        sleep 0.1
    done
    kill -0 "$NBD_PID" 2>/dev/null || die "qemu-nbd exited"
    [[ -s "$WORK/nbd.pid" ]] || die "qemu-nbd wrote no $WORK/nbd.pid"
    drive="if=none,id=drive0,driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=$NBD_PORT,export=$NBD_EXPORT${NBD_OPTS:+,$NBD_OPTS}${DRIVE_OPTS:+,$DRIVE_OPTS}"
    NBD_RUN_INFO="nbd_server=nbd://127.0.0.1:$NBD_PORT/$NBD_EXPORT
nbd_server_command=$(printf '%q ' "${cmd[@]}" | sed 's/ $//')"
    note "disk served by $(qemu-nbd --version | head -n 1) on nbd://127.0.0.1:$NBD_PORT/$NBD_EXPORT"
}

# nbd_kill: kills the server with SIGKILL (no NBD_CMD_DISC, no clean close: the kernel resets the
# connection) and records it in run.txt.
nbd_kill() {
    [[ -n "$NBD_PID" ]] || return 0
    kill -KILL "$(cat "$WORK/nbd.pid")" 2>/dev/null || true
    host_action "killed qemu-nbd (SIGKILL) serving nbd://127.0.0.1:$NBD_PORT/$NBD_EXPORT"
}

# nbd_stop: stops the server if it still runs.
nbd_stop() {
    [[ -n "$NBD_PID" ]] || return 0
    [[ ! -s "$WORK/nbd.pid" ]] || kill "$(cat "$WORK/nbd.pid")" 2>/dev/null || true
    wait "$NBD_PID" 2>/dev/null || true
    NBD_PID=""
}
