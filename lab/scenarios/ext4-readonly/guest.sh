# ext4-readonly (runs in the guest).
set -x
mount -t ext4 -o errors=remount-ro /dev/vda /mnt
grep vda /proc/mounts
dd if=/dev/zero of=/mnt/file bs=4096 count=16
sync
echo "sync exit status $?"
dd if=/dev/zero of=/mnt/file2 bs=4096 count=4 conv=fsync
echo "dd exit status $?"
grep vda /proc/mounts
touch /mnt/after
echo "touch exit status $?"
