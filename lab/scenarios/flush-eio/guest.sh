# flush-eio (runs in the guest).
set -x
cat /sys/block/vda/queue/write_cache
# O_DIRECT write (succeeds), then fsync -> flush (fails).
dd if=/dev/zero of=/dev/vda bs=4096 seek=32 count=1 oflag=direct conv=fsync
echo "dd exit status $?"
