#!/bin/busybox sh
# /init of the lab guest (copied into the initramfs by lab/setup).
# Mounts the pseudo filesystems, loads the virtio/ext4 modules in the order
# setup computed (then the scenario's extra modules), waits for the disk, runs
# /scenario/guest.sh (appended per run by lab/run), dumps the kernel log and
# powers off (or reboots, when guest.sh asked for it). Every marker line starts
# with "kvmscope-lab:".

/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /tmp /mnt
exec </dev/console >/dev/console 2>&1

echo "kvmscope-lab: guest kernel: $(cat /proc/version)"
echo "kvmscope-lab: cmdline: $(cat /proc/cmdline)"

while read -r mod; do
    insmod "/lib/modules/$mod.ko" || echo "kvmscope-lab: insmod $mod failed"
done < /lib/modules/load-order
# A scenario's MODULES_EXTRA, in the per-scenario archive (after the base ones they need).
if [ -f /scenario/modules/load-order ]; then
    while read -r mod; do
        insmod "/scenario/modules/$mod.ko" || echo "kvmscope-lab: insmod $mod failed"
    done < /scenario/modules/load-order
fi

# The guest's disk: vda unless the scenario's GUEST_DISK says otherwise (/scenario/disk).
disk=vda
[ -f /scenario/disk ] && read -r disk < /scenario/disk
i=0
while [ ! -b "/dev/$disk" ] && [ "$i" -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
if [ -b "/dev/$disk" ]; then
    echo "kvmscope-lab: /dev/$disk is $(cat "/sys/block/$disk/size") sectors"
else
    echo "kvmscope-lab: /dev/$disk did not appear"
fi

if [ -f /scenario/guest.sh ]; then
    echo "kvmscope-lab: guest.sh begin"
    sh /scenario/guest.sh
    rc=$?
    echo "kvmscope-lab: guest.sh end rc=$rc"
else
    echo "kvmscope-lab: no /scenario/guest.sh in the initramfs"
fi

echo "kvmscope-lab: dmesg begin"
dmesg
echo "kvmscope-lab: dmesg end"
# guest.sh asks for another boot of the same VM by creating this file (it lives
# in the initramfs, so the next boot starts without it). QEMU runs without
# -no-reboot for such scenarios (REBOOT=yes).
if [ -f /tmp/kvmscope-lab-reboot ]; then
    echo "kvmscope-lab: reboot"
    reboot -f
    echo "kvmscope-lab: reboot failed"
fi
echo "kvmscope-lab: poweroff"
poweroff -f
# Not reached unless poweroff failed; panic=-1 then reboots (= exits QEMU).
echo "kvmscope-lab: poweroff failed"
exit 1
