#!/bin/sh
# record-host-disk (runs in the guest): bursts of failing writes, faster than the host
# kernel's rate limiter lets `I/O error, dev loopN` messages through (printk_ratelimited:
# 10 per 5 s, lib/ratelimit.c DEFAULT_RATELIMIT_BURST/INTERVAL). Each round: 4 good 4 KiB
# direct writes, then 25 writes over guest sector 2048, which the host disk fails.
i=0
while [ "$i" -lt 40 ]; do
    dd if=/dev/zero of=/dev/vda bs=4096 seek=16 count=4 oflag=direct 2>/dev/null
    j=0
    while [ "$j" -lt 25 ]; do
        dd if=/dev/zero of=/dev/vda bs=4096 seek=256 count=1 oflag=direct 2>/dev/null || echo "kvmscope-lab: round $i: write at sector 2048 failed"
        j=$((j + 1))
    done
    sleep 2
    i=$((i + 1))
done
