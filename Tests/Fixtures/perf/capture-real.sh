#!/bin/bash
# Re-creates the real perf.data captures in this directory on a root Linux machine with perf
# (made with perf 6.1 on linux 6.18). Each FILE.data.xz is `perf record` output compressed with
# xz -9 (kvmscope decompresses it; `xz -dk` gives perf's own file back); FILE.perf-script.txt is
# `perf script --ns -i FILE.data` of the same file, for the text readers. Packet drops go only
# to loopback inside a network namespace made here. See README.md for the command of each.
set -euo pipefail
cd "$(dirname "$0")"
NS=kvs-perf-$$
tmp=$(mktemp -d)
cleanup() { ip netns del $NS 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
ip netns add $NS
ip -n $NS link set lo up
ip netns exec $NS nft add table inet t
ip netns exec $NS nft add chain inet t in '{ type filter hook input priority 0; }'
ip netns exec $NS nft add rule inet t in udp dport 9999 drop
# 3 UDP/IPv4 to a closed port (NO_SOCKET), 2 dropped by nftables (NETFILTER_DROP), 2 UDP/IPv6 (NO_SOCKET).
SEND='for i in 1 2 3; do echo x > /dev/udp/127.0.0.1/9; done; sleep 0.1
      for i in 1 2; do echo x > /dev/udp/127.0.0.1/9999; done
      for i in 1 2; do echo x > /dev/udp/::1/9; done'

rec() {  # rec NAME perf-record-args...
    local name=$1; shift
    perf record -q -B -o "$tmp/$name.data" "$@"
    perf script --ns -i "$tmp/$name.data" > "$name.perf-script.txt"
    xz -9 -c "$tmp/$name.data" > "$name.data.xz"
}
rec kfree_skb -e skb:kfree_skb -- ip netns exec $NS taskset -c 1 bash -c "$SEND"
rec sched_switch -e sched:sched_switch -- bash -c 'for i in 1 2 3 4; do sleep 0.01; done'
dd if=/dev/zero of="$tmp/blk" bs=4k count=8 status=none
rec block -e 'block:*' -- dd if=/dev/zero of="$tmp/blk" bs=4k count=8 oflag=direct conv=notrunc status=none
rec kvm -e kvm:kvm_exit -e kvm:kvm_entry -- sleep 0.05
perf kvm stat record -q -o "$tmp/kvm-stat.data" -- sleep 0.05 > /dev/null 2>&1
perf script --ns -i "$tmp/kvm-stat.data" > kvm-stat.perf-script.txt
xz -9 -c "$tmp/kvm-stat.data" > kvm-stat.data.xz
# Pipe mode: the same drops, perf record writing to stdout.
perf record -q -B -e skb:kfree_skb -o - -- ip netns exec $NS taskset -c 1 bash -c "$SEND" > "$tmp/kfree_skb-pipe.data"
perf script --ns -i - < "$tmp/kfree_skb-pipe.data" > kfree_skb-pipe.perf-script.txt
xz -9 -c "$tmp/kfree_skb-pipe.data" > kfree_skb-pipe.data.xz
# The kallsyms lines of the drop locations (symbol and the next one), to name the raw addresses.
for s in __udp4_lib_rcv nft_do_chain __udp6_lib_rcv; do
  grep -A1 -w "$s" /proc/kallsyms | grep -v -- '^--'
done | sort -u > kallsyms-excerpt.txt
