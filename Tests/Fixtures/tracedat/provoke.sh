#!/bin/bash
# Sends UDP datagrams to a closed port on loopback, alternately from CPU 0 and CPU 1, so the
# drops (kfree_skb reason NO_SOCKET) land in both CPUs' buffers, interleaved in time.
for i in 1 2 3 4; do
  taskset -c 0 bash -c "printf x > /dev/udp/127.0.0.1/9"
  taskset -c 1 bash -c "printf y > /dev/udp/127.0.0.1/9"
done
