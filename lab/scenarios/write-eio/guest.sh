# write-eio (runs in the guest). Sector 2048 = 4 KiB block 256.
set -x
# A good write well before the bad sector.
dd if=/dev/zero of=/dev/vda bs=4096 seek=16 count=1 oflag=direct
# 4 KiB at block 256 = sectors 2048..2055: fails.
dd if=/dev/zero of=/dev/vda bs=4096 seek=256 count=1 oflag=direct
echo "dd exit status $?"
# Reads of the same sector still work (the rule only matches writes).
dd if=/dev/vda of=/dev/null bs=4096 skip=256 count=1 iflag=direct
