# host-disk-eio (runs in the guest). The host storage under guest sectors 2048..2175 fails.
set -x
# A good write far from the failing range.
dd if=/dev/zero of=/dev/vda bs=4096 seek=16 count=1 oflag=direct
echo "dd exit status $?"
# A write at sector 2048: the host's loop device fails it with EIO.
dd if=/dev/zero of=/dev/vda bs=4096 seek=256 count=1 oflag=direct
echo "dd exit status $?"
# A read inside the range (sector 2080) fails too.
dd if=/dev/vda of=/dev/null bs=4096 skip=260 count=1 iflag=direct
echo "dd read exit status $?"
# Past the range (sector 2400) the host disk works.
dd if=/dev/zero of=/dev/vda bs=4096 seek=300 count=1 oflag=direct
echo "dd exit status $?"
