# shellcheck shell=bash disable=SC2034
# Shared definitions for the lab scripts. Sourced, never executed.

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LAB_CACHE="${LAB_CACHE:-$LAB_DIR/.cache}"
LAB_SCENARIOS="$LAB_DIR/scenarios"

# Debian packages the lab needs on the host.
LAB_PACKAGES=(qemu-system-x86 qemu-utils cpio e2fsprogs busybox-static python3 kmod
              fuse3 python3-fusepy)

# Guest kernel modules, in the order /init must load them. setup checks this
# list against the kernel's modules.dep (generated with depmod) and fails if a
# dependency is missing or out of order. crc32c_generic is not a symbol
# dependency of ext4/jbd2 (they ask the crypto API for "crc32c" at mount time
# when metadata_csum is on), so modules.dep cannot know about it.
LAB_MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev
             virtio_pci virtio_blk crc16 crc32c_generic mbcache jbd2 ext4)

# Modules a scenario may add with MODULES_EXTRA=(...) in its scenario.conf.
# setup caches them; lab/run puts the ones a scenario names into that run's
# per-scenario archive (not into the base initramfs, so the scenarios that do
# not use them boot the same initramfs as before). Listed in a valid load order
# (checked by module_closure against modules.dep). sd_mod needs t10-pi and the
# CRC libraries for T10 protection information even when the disk has none.
LAB_MODULES_OPTIONAL=(crct10dif_common crc_t10dif crc64 crc64_rocksoft t10_pi
                      scsi_common scsi_mod sd_mod virtio_scsi)

# Trace events every run enables (same set for every scenario so that the
# captures are comparable). All exist in Debian 12's QEMU 7.2.
LAB_TRACE_EVENTS=('virtio_blk_*' virtqueue_pop virtqueue_fill virtio_set_status
                  'blk_co_*' runstate_set)

# Trace events for the SCSI path (QEMU 7.2 hw/scsi/trace-events): a scenario
# on a virtio-scsi disk adds them with TRACE_EVENTS_EXTRA. virtio_scsi_cmd_req /
# _cmd_resp carry the LUN, tag, CDB opcode and the response/status;
# scsi_req_parsed(_lba) the CDB opcode, direction, length and LBA; scsi_disk_*
# the emulation (dma_command_READ/WRITE, check_condition); scsi_req_build_sense
# and scsi_device_set_ua the sense key/ASC/ASCQ; the last four are the commands
# scsi-bus.c emulates itself (REQUEST SENSE, TEST UNIT READY, INQUIRY, REPORT LUNS).
LAB_TRACE_EVENTS_SCSI=('virtio_scsi_*' 'scsi_req_*' 'scsi_disk_*' scsi_device_set_ua
                       scsi_request_sense scsi_test_unit_ready scsi_inquiry scsi_report_luns)

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

# module_closure MODULES.DEP MODULES.BUILTIN NAME... — prints "name relpath" for
# each NAME in the given order, resolving it in modules.dep. Fails if a module's
# dependency is not among the NAMEs or comes after it (the guest has no
# modprobe: /init insmods in this order); skips modules built into the kernel.
module_closure() {
    local dep="$1" builtin="$2" line path deps name d dn
    shift 2
    declare -A PATHOF=() DEPS=() POS=()
    while IFS= read -r line; do
        path=${line%%:*}
        deps=${line#*:}
        name=${path##*/}; name=${name%%.ko*}; name=${name//-/_}
        PATHOF[$name]=$path
        DEPS[$name]=$deps
    done <"$dep"
    local i=0 m
    for m in "$@"; do POS[$m]=$i; i=$((i + 1)); done
    for m in "$@"; do
        if [[ -z "${PATHOF[$m]:-}" ]]; then
            if grep -Eq "/${m//_/[-_]}\.ko" "$builtin"; then
                note "module $m is built into this kernel; skipping"
                continue
            fi
            die "module $m not found in $dep"
        fi
        for d in ${DEPS[$m]}; do
            dn=${d##*/}; dn=${dn%%.ko*}; dn=${dn//-/_}
            [[ -n "${POS[$dn]:-}" ]] || die "module $m needs $dn, which is not in the module list (LAB_MODULES in lab/lib/common.sh, or the scenario's MODULES_EXTRA)"
            [[ ${POS[$dn]} -lt ${POS[$m]} ]] || die "module $m needs $dn loaded first; fix the module order"
        done
        echo "$m ${PATHOF[$m]}"
    done
}

# module_install RELPATH DEST — copies a cached module file to DEST, uncompressed.
module_install() {
    case "$1" in
        *.ko) cp "$LAB_CACHE/kernel/$1" "$2" ;;
        *.ko.xz) xz -dc "$LAB_CACHE/kernel/$1" >"$2" ;;
        *.ko.zst) zstd -qdc "$LAB_CACHE/kernel/$1" >"$2" ;;
        *) die "unsupported module file $1" ;;
    esac
}
