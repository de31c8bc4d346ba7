# enospc-pause (runs in the guest). 4 KiB block 512 = sectors 4096..4103.
set -x
dd if=/dev/zero of=/dev/vda bs=4096 seek=512 count=1 oflag=direct
echo "dd exit status $?"
