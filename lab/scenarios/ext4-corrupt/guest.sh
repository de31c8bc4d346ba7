# ext4-corrupt (runs in the guest). Every request to vda succeeds; the metadata is wrong.
set -x
mount -t ext4 -o errors=remount-ro /dev/vda /mnt
grep vda /proc/mounts
cat /mnt/data/file-0
# The first block allocation reads group 0's block bitmap: bad checksum.
dd if=/dev/zero of=/mnt/new bs=4096 count=4 conv=fsync
echo "dd exit status $?"
# Looking up the corrupted inode: checksum invalid.
ls -l /mnt/data
echo "ls exit status $?"
cat /mnt/data/victim
echo "cat exit status $?"
touch /mnt/after
echo "touch exit status $?"
grep vda /proc/mounts
umount /mnt
echo "umount exit status $?"
