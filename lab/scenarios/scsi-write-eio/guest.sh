# scsi-write-eio (runs in the guest). Sector 2048 = 4 KiB block 256 (512-byte logical blocks).
set -x
cat /sys/block/sda/queue/logical_block_size
# A good write well before the bad sector.
dd if=/dev/zero of=/dev/sda bs=4096 seek=16 count=1 oflag=direct
echo "dd exit status $?"
# 4 KiB at block 256 = LBA 2048..2055: fails (WRITE(10), CHECK CONDITION).
dd if=/dev/zero of=/dev/sda bs=4096 seek=256 count=1 oflag=direct
echo "dd exit status $?"
# Reads of the same sector still work (the rule only matches writes).
dd if=/dev/sda of=/dev/null bs=4096 skip=256 count=1 iflag=direct
echo "dd read exit status $?"
