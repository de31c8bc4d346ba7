# libvirt-fs-full (runs in the guest; the host-fs-full workload). vda is a 64 MiB raw image on a 16 MiB host tmpfs.
set -x
grep vda /proc/partitions
set +x
i=0 failed=0
while [ "$i" -lt 40 ] && [ "$failed" -lt 2 ]; do
    # 1 MiB O_DIRECT writes at MiB 0, 1, 2, ... (sectors 0, 2048, 4096, ...)
    if dd if=/dev/zero of=/dev/vda bs=1048576 seek="$i" count=1 oflag=direct 2>/tmp/dd.err; then
        echo "write $i (sector $((i * 2048))) ok"
    else
        failed=$((failed + 1))
        echo "write $i (sector $((i * 2048))) failed: $(cat /tmp/dd.err)"
    fi
    i=$((i + 1))
done
echo "kvmscope-lab: guest: write loop done"
set -x
# What was written reads back: only allocating writes fail on a full filesystem.
dd if=/dev/vda of=/dev/null bs=1048576 count=1 iflag=direct
echo "dd read exit status $?"
