#!/usr/bin/env python3
"""The runner behind bench/trace-speed.sh (see there): interleaved rounds, CPU time from
wait4's rusage (microseconds, not /usr/bin/time's 10 ms), medians and ratios."""
import os
import statistics
import subprocess
import sys
import time


def run(argv, stdout=subprocess.DEVNULL):
    """(wall seconds, CPU seconds, exit status) of one run. (No peak RSS: a forked child's
    ru_maxrss counts this Python's pages before the exec; measure it with /usr/bin/time -f %M.)"""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode


def timed_rounds(path, title, tools, rounds, column, width):
    """Times every tool on `path` in interleaved rounds (each round runs every tool once, the
    file in the page cache first) and prints a table of the medians; returns
    {name: (CPU, wall)}. `tools` is [(name, argv_for_path)]."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:        # into the page cache before the first round
        while f.read(1 << 24):
            pass
    samples = {name: [] for name, _ in tools}
    for _ in range(rounds):
        for name, argv in tools:
            samples[name].append(run(argv(path)))
    print(f"\n{title}: {size / 1e6:.1f} MB")
    print(f"  {column:<{width}} {'CPU s':>8} {'wall s':>8} {'MB/s CPU':>9} {'MB/s wall':>9}")
    medians = {}
    for name, _ in tools:
        cpu = statistics.median(s[1] for s in samples[name])
        wall = statistics.median(s[0] for s in samples[name])
        medians[name] = (cpu, wall)
        print(f"  {name:<{width}} {cpu:8.3f} {wall:8.3f} {size / 1e6 / cpu:9.0f} {size / 1e6 / wall:9.0f}")
    return medians


def json_of(binary, path):
    return subprocess.run([binary, "trace", "--json", path], capture_output=True).stdout


def main():
    rounds, kvmscope, old, no_python = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    one_line, inputs = sys.argv[5], sys.argv[6:]
    tools = [("kvmscope", lambda f: [kvmscope, "trace", "--json", f])]
    if old:
        tools.append(("kvmscope-old", lambda f: [old, "trace", "--json", f]))
        for f in inputs + [one_line]:
            if json_of(kvmscope, f) != json_of(old, f):
                sys.exit(f"{f}: `trace --json` of {kvmscope} and {old} differ")
        print(f"`trace --json` identical between {kvmscope} and {old} on every input")
    if not no_python:
        tools.append(("python reference", lambda f: ["python3", "bench/trace_reference.py", f]))
    tools.append(("wc -l", lambda f: ["wc", "-l", f]))
    print(f"load average before: {os.getloadavg()[0]:.2f}  rounds: {rounds}  cores: {os.cpu_count()}")
    # Start-up: one line of trace (median of 3 × rounds, interleaved with the old build).
    startup = {name: [] for name, _ in tools if name.startswith("kvmscope")}
    for _ in range(3 * rounds):
        for name, argv in tools:
            if name in startup:
                startup[name].append(run(argv(one_line))[1])
    for name, cpu in startup.items():
        print(f"start-up, {name} trace --json of one line: {statistics.median(cpu) * 1000:.1f} ms CPU (median)")
    for path in inputs:
        medians = timed_rounds(path, os.path.basename(path), tools, rounds, "tool", 18)
        k_cpu, k_wall = medians["kvmscope"]
        for name, (cpu, wall) in medians.items():
            if name == "kvmscope":
                continue
            if name == "wc -l":
                print(f"  kvmscope / wc -l: {k_cpu / cpu:.1f}x the CPU, {k_wall / wall:.1f}x the wall time of the floor")
            else:
                print(f"  {name} / kvmscope: {cpu / k_cpu:.2f}x CPU, {wall / k_wall:.2f}x wall")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
