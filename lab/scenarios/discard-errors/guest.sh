# discard-errors (runs in the guest). 1 MiB at sector 12288 (6 MiB) and 14336 (7 MiB).
set -x
cat /sys/block/vda/queue/discard_max_bytes
blkdiscard -o 6291456 -l 1048576 /dev/vda
echo "blkdiscard (EIO) exit status $?"
blkdiscard -o 7340032 -l 1048576 /dev/vda
echo "blkdiscard (ENOTSUP) exit status $?"
