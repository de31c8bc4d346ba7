#!/usr/bin/env bash
# Makes a kvm_exit/kvm_entry ftrace text file of at least SIZE_MB (default 1100 MB) for
# `swift run -c release kvmscope-bench exits FILE`. Lines follow the kernel's own formats
# (arch/x86/kvm/trace.h, kernel/trace/trace_output.c): mostly linux 5.10+ Intel lines, some
# linux 6.18 lines (`requests`, kvm_entry intr_info/error_code), the issue's real captured
# lines verbatim, and kvm_pio/kvm_userspace_exit lines between exit and entry. Deterministic.
set -euo pipefail
out=${1:-bench/out/exits-1g.txt}
size_mb=${2:-1100}
mkdir -p "$(dirname "$out")"
awk -v target=$((size_mb * 1000000)) 'BEGIN {
  srand(1)
  split("EXTERNAL_INTERRUPT EPT_VIOLATION MSR_WRITE HLT IO_INSTRUCTION EPT_MISCONFIG PAUSE_INSTRUCTION CPUID MSR_READ PREEMPTION_TIMER", R, " ")
  split("30 20 14 10 8 6 4 3 3 2", W, " ")
  tw = 0; for (i = 1; i <= 10; i++) { tw += W[i]; CW[i] = tw }
  print "# tracer: nop"
  print "#"
  print "# entries-in-buffer/entries-written: 0/0   #P:8"
  bytes = 0; t = 1404389448; n = 0
  for (v = 0; v < 8; v++) clock[v] = t
  while (bytes < target) {
    n++
    if (n % 5000 == 0) {  # the issue real captured lines, verbatim (timestamps of 1404 s)
      a = " qemu-system-x86-8396    [001] d....  1404.389448: kvm_exit: vcpu 0 reason EXTERNAL_INTERRUPT rip 0xffffffff8113b1f9 info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x800000fb error_code 0x00000000"
      b = " qemu-system-x86-8396    [001] d....  1404.389456: kvm_entry: vcpu 0, rip 0xffffffff8113b1f9"
      print a; print b; bytes += length(a) + length(b) + 2
      continue
    }
    v = int(rand() * 8); tid = 8396 + v; cpu = v
    r = rand() * tw; for (i = 1; i <= 10; i++) if (r < CW[i]) break
    reason = R[i]
    clock[v] += 1 + int(rand() * 400)
    lat = int(exp(log(0.4) + rand() * rand() * log(40000)))   # us, heavy tail
    if (lat < 1) lat = 1
    ts = clock[v]
    new = (n % 7 == 0)
    e = sprintf(" qemu-system-x86-%d    [%03d] d.... %5d.%06d: kvm_exit: vcpu %d reason %s rip 0xffffffff81%06x info1 0x%016x info2 0x0000000000000000 intr_info 0x%08x error_code 0x00000000%s",
                tid, cpu, int(ts / 1000000), ts % 1000000, v, reason, int(rand() * 16777215), int(rand() * 65535), (reason == "EXTERNAL_INTERRUPT") ? 2147483899 : 0,
                new ? " requests 0x0000000000000000" : "")
    print e; bytes += length(e) + 1
    if (reason == "IO_INSTRUCTION") {
      p = sprintf(" qemu-system-x86-%d    [%03d] ..... %5d.%06d: kvm_pio: pio_write at 0x3f8 size 1 count 1 val 0x41 ", tid, cpu, int(ts / 1000000), ts % 1000000)
      q = sprintf(" qemu-system-x86-%d    [%03d] ..... %5d.%06d: kvm_userspace_exit: reason KVM_EXIT_IO (2)", tid, cpu, int(ts / 1000000), ts % 1000000)
      print p; print q; bytes += length(p) + length(q) + 2
    }
    clock[v] += lat; ts = clock[v]
    if (new) f = sprintf(" qemu-system-x86-%d    [%03d] d.... %5d.%06d: kvm_entry: vcpu %d, rip 0xffffffff8113b1f9 intr_info 0x00000000 error_code 0x00000000", tid, cpu, int(ts / 1000000), ts % 1000000, v)
    else f = sprintf(" qemu-system-x86-%d    [%03d] d.... %5d.%06d: kvm_entry: vcpu %d, rip 0xffffffff8113b1f9", tid, cpu, int(ts / 1000000), ts % 1000000, v)
    print f; bytes += length(f) + 1
  }
}' > "$out"
ls -l "$out"
