# nbd-eio (runs in the guest). The disk is an NBD export of kvmscope; QEMU is its client.
set -x
# A good write well before the bad sector.
dd if=/dev/zero of=/dev/vda bs=4096 seek=16 count=1 oflag=direct
# 4 KiB at block 256 = sectors 2048..2055: fails (EIO injected by kvmscope).
dd if=/dev/zero of=/dev/vda bs=4096 seek=256 count=1 oflag=direct
echo "dd write exit status $?"
# 64 KiB at block 64 = sectors 8192..8319 covers sector 8200: the first read fails.
dd if=/dev/vda of=/dev/null bs=65536 skip=64 count=1 iflag=direct
echo "first read exit status $?"
# Again: the rule was "once", so this read succeeds.
dd if=/dev/vda of=/dev/null bs=65536 skip=64 count=1 iflag=direct
echo "second read exit status $?"
