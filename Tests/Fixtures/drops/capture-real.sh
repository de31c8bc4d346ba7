#!/bin/bash
# Re-creates the real captures in this directory on a root Linux machine with tracefs,
# nftables, perf and trace-cmd. Traffic goes only to loopback inside a namespace made here.
# Drops made: 3 UDP/IPv4 to a closed port (NO_SOCKET), 2 UDP/IPv4 dropped by an nftables
# rule (NETFILTER_DROP), 2 UDP/IPv6 to a closed port (NO_SOCKET); a 0.3 s pause makes the
# ring buffer write time-extend records. Output files are named after the running kernel.
set -euo pipefail
cd "$(dirname "$0")"
K=$(uname -r | cut -d. -f1,2)
NS=kvs-fixture-$$
TR=/sys/kernel/tracing
INST=$TR/instances/kvs-fixture-$$
cleanup() { ip netns del $NS 2>/dev/null || true; [ -d $INST ] && { echo 0 > $INST/events/skb/kfree_skb/enable; rmdir $INST; } || true; }
trap cleanup EXIT
ip netns add $NS
ip -n $NS link set lo up
ip netns exec $NS nft add table inet t
ip netns exec $NS nft add chain inet t in '{ type filter hook input priority 0; }'
ip netns exec $NS nft add rule inet t in udp dport 9999 drop
send() {
  ip netns exec $NS taskset -c 1 bash -c '
    for i in 1 2 3; do echo x > /dev/udp/127.0.0.1/9; done; sleep 0.3
    for i in 1 2; do echo x > /dev/udp/127.0.0.1/9999; done; sleep 0.2
    for i in 1 2; do echo x > /dev/udp/::1/9; done'
}
# ftrace text and the binary page of CPU 1, from one private instance.
mkdir $INST
echo 1 > $INST/events/skb/kfree_skb/enable
send
cat $INST/trace > ftrace-trace-$K.txt
python3 - "$INST" "$K" <<'PY'
import os, sys
fd = os.open(sys.argv[1] + "/per_cpu/cpu1/trace_pipe_raw", os.O_RDONLY | os.O_NONBLOCK)
data = b""
while True:
    try: d = os.read(fd, 4096)
    except BlockingIOError: break
    if not d: break
    data += d
open("ring-cpu1-%s.raw" % sys.argv[2], "wb").write(data)
PY
cat $INST/events/skb/kfree_skb/format > kfree_skb-format-$K.txt
cat $INST/events/skb/consume_skb/format > consume_skb-format-$K.txt
cat $INST/events/header_page > header_page-$K.txt
cat $INST/events/header_event > header_event-$K.txt
echo 0 > $INST/events/skb/kfree_skb/enable; rmdir $INST
# The kallsyms lines around every location in the raw page (symbol + the next one, for sizes).
for s in __udp4_lib_rcv nft_do_chain __udp6_lib_rcv; do
  grep -A1 -w "$s" /proc/kallsyms | grep -v -- '^--'
done | sort -u > kallsyms-excerpt-$K.txt
# perf (perf record -e skb:kfree_skb -a, then perf script).
tmp=$(mktemp -d)
perf record -q -e skb:kfree_skb -a -o $tmp/perf.data -- sleep 1.5 & sleep 0.5; send; wait
perf script -i $tmp/perf.data > perf-script-$K.txt
perf script -i $tmp/perf.data -F comm,pid,tid,cpu,time,event,trace > perf-script-fields-$K.txt 2>/dev/null
# trace-cmd. On the Firecracker VM these were made on, trace-cmd record fails with EPERM on
# the function-tracer files (ftrace_enabled, set_ftrace_*); it was run with an LD_PRELOAD shim
# that sends those paths to /dev/null. On an ordinary host plain `trace-cmd record` works.
if [ -n "${TRACE_CMD_PRELOAD:-}" ]; then export LD_PRELOAD=$TRACE_CMD_PRELOAD; fi
(cd $tmp && trace-cmd record -B kvs-fixture-tc-$$ -e skb:kfree_skb -o tc.dat sleep 2 >/dev/null 2>&1) & sleep 1; send; wait
unset LD_PRELOAD
rmdir $TR/instances/kvs-fixture-tc-$$ 2>/dev/null || true
trace-cmd report -i $tmp/tc.dat > trace-cmd-report-$K.txt 2>/dev/null
trace-cmd report -R -i $tmp/tc.dat > trace-cmd-report-R-$K.txt 2>/dev/null
trace-cmd report -t -i $tmp/tc.dat > trace-cmd-report-t-$K.txt 2>/dev/null
trace-cmd report -l -i $tmp/tc.dat > trace-cmd-report-l-$K.txt 2>/dev/null
rm -rf $tmp
