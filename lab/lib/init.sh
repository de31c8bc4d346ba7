#!/bin/busybox sh
# /init of the lab guest (copied into the initramfs by lab/setup).
# Mounts the pseudo filesystems, loads the virtio/ext4 modules in the order
# setup computed, runs /scenario/guest.sh (appended per run by lab/run), dumps
# the kernel log and powers off. Every marker line starts with "kvmscope-lab:".

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

i=0
while [ ! -b /dev/vda ] && [ "$i" -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
if [ -b /dev/vda ]; then
    echo "kvmscope-lab: /dev/vda is $(cat /sys/block/vda/size) sectors"
else
    echo "kvmscope-lab: /dev/vda did not appear"
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
echo "kvmscope-lab: poweroff"
poweroff -f
# Not reached unless poweroff failed; panic=-1 then reboots (= exits QEMU).
echo "kvmscope-lab: poweroff failed"
exit 1
