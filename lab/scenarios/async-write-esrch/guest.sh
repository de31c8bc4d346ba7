# async-write-esrch (runs in the guest). 4 KiB blocks 768..771 = sectors 6144..6175.
set -x
# Buffered write: dd succeeds, the error happens later during writeback.
dd if=/dev/zero of=/dev/vda bs=4096 seek=768 count=4
echo "dd exit status $?"
sync
echo "sync exit status $?"
# Same write with fsync: now the writer is told (EIO, not ESRCH).
dd if=/dev/zero of=/dev/vda bs=4096 seek=768 count=4 conv=fsync
echo "dd conv=fsync exit status $?"
