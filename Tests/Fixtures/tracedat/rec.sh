#!/bin/bash
# Runs trace-cmd in a private mount namespace (unshare -m ./rec.sh ARGS) where the files this
# container's kernel denies (ftrace_enabled is read-only, the function-tracer files give EPERM)
# are replaced by writable stand-ins, and /proc/kallsyms by the subset in ./kallsyms-subset
# (the udp/kfree_skb text symbols) so the files stay small. The event formats and per-CPU
# buffers trace-cmd reads are the real ones.
set -e
here=$(cd "$(dirname "$0")" && pwd)
echo 1 > /tmp/fake_ftrace_enabled
mount --bind /tmp/fake_ftrace_enabled /proc/sys/kernel/ftrace_enabled
for f in set_ftrace_filter set_ftrace_notrace set_ftrace_pid set_graph_function set_graph_notrace; do
  [ -e /sys/kernel/tracing/$f ] && mount --bind /dev/null /sys/kernel/tracing/$f
done
mount --bind "$here/kallsyms-subset" /proc/kallsyms
exec trace-cmd "$@"
