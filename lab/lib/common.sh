# shellcheck shell=bash disable=SC2034
# Shared definitions for the lab scripts. Sourced, never executed.

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LAB_CACHE="${LAB_CACHE:-$LAB_DIR/.cache}"
LAB_SCENARIOS="$LAB_DIR/scenarios"

# Debian packages the lab needs on the host.
LAB_PACKAGES=(qemu-system-x86 qemu-utils cpio e2fsprogs busybox-static python3 kmod)

# Guest kernel modules, in the order /init must load them. setup checks this
# list against the kernel's modules.dep (generated with depmod) and fails if a
# dependency is missing or out of order. crc32c_generic is not a symbol
# dependency of ext4/jbd2 (they ask the crypto API for "crc32c" at mount time
# when metadata_csum is on), so modules.dep cannot know about it.
LAB_MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev
             virtio_pci virtio_blk crc16 crc32c_generic mbcache jbd2 ext4)

# Trace events every run enables (same set for every scenario so that the
# captures are comparable). All exist in Debian 12's QEMU 7.2.
LAB_TRACE_EVENTS=('virtio_blk_*' virtqueue_pop virtqueue_fill virtio_set_status
                  'blk_co_*' runstate_set)

die() { echo "lab: error: $*" >&2; exit 1; }
note() { echo "lab: $*" >&2; }

# The kernel chosen by setup (written by setup into the cache).
load_kernel_env() {
    [[ -f "$LAB_CACHE/kernel.env" ]] || die "no guest kernel in $LAB_CACHE; run lab/setup first"
    # shellcheck disable=SC1091
    source "$LAB_CACHE/kernel.env"
    [[ -f "$LAB_CACHE/vmlinuz" && -f "$LAB_CACHE/initramfs-base.cpio" ]] \
        || die "guest kernel/initramfs missing in $LAB_CACHE; run lab/setup"
}

scenario_dir() {
    local name="$1"
    [[ "$name" =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "bad scenario name '$name'"
    [[ -d "$LAB_SCENARIOS/$name" ]] || die "unknown scenario '$name' (have: $(list_scenarios | tr '\n' ' '))"
    echo "$LAB_SCENARIOS/$name"
}

list_scenarios() {
    local d
    for d in "$LAB_SCENARIOS"/*/; do
        [[ -f "$d/scenario.conf" ]] && basename "$d"
    done
}
