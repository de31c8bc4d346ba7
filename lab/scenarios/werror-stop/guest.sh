# werror-stop (runs in the guest). 4 KiB block 1280 = sectors 10240..10247.
set -x
dd if=/dev/zero of=/dev/vda bs=4096 seek=1280 count=1 oflag=direct
echo "dd exit status $? (never printed: the VM stays paused)"
