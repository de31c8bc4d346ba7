# two-boot (runs in the guest, once per boot). The marker is sector 64 (byte 32768).
# No pipelines under set -x: their commands' trace lines would interleave on the console.
set -x
dd if=/dev/vda of=/tmp/sector64 bs=512 skip=64 count=1
if grep -q '^kvmscope-lab boot marker' /tmp/sector64; then
    echo "second boot: marker found"
    # 64 KiB at block 64 = sectors 8192..8319 covers sector 8200: fails once.
    dd if=/dev/vda of=/dev/null bs=65536 skip=64 count=1 iflag=direct
    echo "first read exit status $?"
    dd if=/dev/vda of=/dev/null bs=65536 skip=64 count=1 iflag=direct
    echo "second read exit status $?"
else
    echo "first boot: no marker"
    # 4 KiB at block 256 = sectors 2048..2055: fails once.
    dd if=/dev/zero of=/dev/vda bs=4096 seek=256 count=1 oflag=direct
    echo "dd exit status $?"
    echo "kvmscope-lab boot marker" >/tmp/marker
    dd if=/tmp/marker of=/dev/vda bs=512 seek=64 count=1 conv=sync,fsync
    echo "marker dd exit status $?"
    # /init reboots instead of powering off (lib/init.sh).
    touch /tmp/kvmscope-lab-reboot
fi
