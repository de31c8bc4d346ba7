# bench/record-overhead.sh's guest: 4 KiB O_DIRECT writes without pause, for as long as the
# host measures (it stops QEMU). Each dd writes 4 MiB in 1024 requests over the first 4 MiB.
echo "kvmscope-lab: bench writing"
while :; do
    dd if=/dev/zero of=/dev/vda bs=4096 count=1024 oflag=direct 2>/dev/null
done
