// Benchmarks live here; see bench/README.md. Filled in by the reader issues.
print("kvmscope-bench: no benchmarks registered yet")
