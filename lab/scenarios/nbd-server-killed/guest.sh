# nbd-server-killed (runs in the guest). The disk is an NBD export of qemu-nbd; QEMU is its client.
set -x
# A good write while the server is alive.
dd if=/dev/zero of=/dev/vda bs=4096 seek=16 count=1 oflag=direct
echo "dd exit status $?"
set +x
# The host kills the server when it sees this line; the loop below is writing by then.
echo "kvmscope-lab: host: kill the NBD server now"
i=0 failed=0
while [ "$i" -lt 40 ] && [ "$failed" -lt 3 ]; do
    # 4 KiB O_DIRECT writes at blocks 256, 257, ... (sectors 2048, 2056, ...)
    if dd if=/dev/zero of=/dev/vda bs=4096 seek=$((256 + i)) count=1 oflag=direct 2>/tmp/dd.err; then
        echo "write $i (sector $(( (256 + i) * 8 ))) ok"
    else
        failed=$((failed + 1))
        echo "write $i (sector $(( (256 + i) * 8 ))) failed: $(cat /tmp/dd.err)"
    fi
    i=$((i + 1))
    sleep 0.1
done
set -x
# Reads fail too: the server is gone.
dd if=/dev/vda of=/dev/null bs=4096 skip=16 count=1 iflag=direct
echo "dd read exit status $?"
