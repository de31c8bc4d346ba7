# shellcheck shell=bash
# A real libvirt daemon for a lab script, inside a private mount namespace (the approach of
# lab/libvirt-capture, as a library). Sourced by a script that already re-executed itself under
# `unshare --mount --propagation private`, after lib/common.sh and lib/host.sh.
#
# libvirt_ns_start WORK   empty tmpfs over /etc/libvirt /run /var/log /var/lib /var/cache, a
#                         libvirt-qemu user in copies of /etc/passwd and /etc/group (libvirtd
#                         resolves its compiled-in default user before it reads qemu.conf,
#                         src/qemu/qemu_conf.c virQEMUDriverConfigNew), qemu.conf for a host
#                         without systemd, cgroup delegation or a security driver (QEMU as root,
#                         or as LAB_QEMU_USER=libvirt-qemu, the stock user; stdio_handler logd: QEMU's stderr goes to virtlogd, which writes
#                         /var/log/libvirt/qemu/NAME.log as on a stock host), then virtlogd -d
#                         and libvirtd -d; returns once `virsh version` answers (libvirtd probes
#                         QEMU's capabilities first). Their pids are appended to WORK/daemon-pids.
# libvirt_ns_stop WORK    destroys DOMAIN (if set), stops the daemons by their pid files, keeps
#                         libvirtd.log in WORK, undoes lib/host.sh's mounts.
# The namespace's mounts vanish with its last process; nothing of the host's libvirt is touched.
LIBVIRT_VIRSH=(virsh -q -c qemu:///system)

libvirt_ns_start() {
    local work="$1" d i
    for d in /etc/libvirt /run /var/log /var/lib /var/cache; do
        mount -t tmpfs -o mode=0755 kvmscope-lab-libvirt "$d"
    done
    mkdir -p /var/log/libvirt/qemu /var/lib/libvirt /var/cache/libvirt /run/libvirt
    cp /etc/passwd "$work/passwd"; cp /etc/group "$work/group"
    getent passwd libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:64055:kvmscope lab:/nonexistent:/usr/sbin/nologin' >>"$work/passwd"
    getent group libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:' >>"$work/group"
    mount --bind "$work/passwd" /etc/passwd
    mount --bind "$work/group" /etc/group
    cat >/etc/libvirt/qemu.conf <<CONF
user = "${LAB_QEMU_USER:-root}"
group = "${LAB_QEMU_USER:-root}"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "logd"
CONF
    echo 'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"' >/etc/libvirt/libvirtd.conf
    virtlogd -d
    libvirtd -d
    for ((i = 0; i < 600; i++)); do
        "${LIBVIRT_VIRSH[@]}" version >/dev/null 2>&1 && break
        sleep 0.1
    done
    cat /run/virtlogd.pid /run/libvirtd.pid >>"$work/daemon-pids" 2>/dev/null || true
    "${LIBVIRT_VIRSH[@]}" version >"$work/virsh-version.txt" || die "libvirtd did not start (see $work/libvirtd.log)"
}

libvirt_ns_stop() {
    local work="$1" f
    if [[ -n "${DOMAIN:-}" && -S /run/libvirt/libvirt-sock ]]; then
        "${LIBVIRT_VIRSH[@]}" destroy "$DOMAIN" >/dev/null 2>&1 || true
    fi
    [[ ! -f /var/log/libvirt/libvirtd.log ]] || cp /var/log/libvirt/libvirtd.log "$work/libvirtd.log"
    for f in /run/libvirtd.pid /run/virtlogd.pid; do
        [[ -f "$f" ]] && host_stop "$(cat "$f")"
    done
    host_teardown || true
}

# libvirt_ns_kill_leftovers WORK: from outside, when the inner script died before its own
# cleanup: stop what it started by the pids it wrote, each checked to still be that program.
libvirt_ns_kill_leftovers() {
    local f="$1/daemon-pids" pid
    [[ -f "$f" && ! -f "$1/inside-clean" ]] || return 0
    while read -r pid; do
        [[ "$pid" =~ ^[0-9]+$ ]] || continue
        case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
            libvirtd|virtlogd|qemu-system-x86) kill "$pid" 2>/dev/null || true ;;
        esac
    done <"$f"
}
