# record-live (runs in the guest): a workload that goes on long enough for the host to attach
# kvmscope record several times. Each round: 64 good 4 KiB direct writes (trace volume for
# --rotate and the flight recorder), then one write over the bad sector 2048, which fails.
i=0
while [ "$i" -lt 75 ]; do
    dd if=/dev/zero of=/dev/vda bs=4096 seek=16 count=64 oflag=direct 2>/dev/null
    dd if=/dev/zero of=/dev/vda bs=4096 seek=256 count=1 oflag=direct 2>/dev/null || echo "kvmscope-lab: round $i: write at sector 2048 failed"
    sleep 1
    i=$((i + 1))
done
