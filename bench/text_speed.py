#!/usr/bin/env python3
"""The runner behind bench/text-speed.sh (see there): interleaved rounds of `kvmscope exits`
and `kvmscope drops` of two builds, CPU time from wait4's rusage, medians."""
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from trace_speed import run  # noqa: E402  (wall, CPU, status of one run)


def output(binary, command, path, *options):
    return subprocess.run([binary, command, *options, path], capture_output=True).stdout


def main():
    rounds, new, old = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    inputs = [arg.split("=", 1) for arg in sys.argv[4:]]
    builds = [("new", new)] + ([("old", old)] if old else [])
    if old:
        for command, path in inputs:
            for options in ([], ["--json"]):
                if output(new, command, path, *options) != output(old, command, path, *options):
                    sys.exit(f"{path}: `{command} {' '.join(options)}` of {new} and {old} differ")
        print(f"text and --json output identical between {new} and {old} on every input")
    print(f"load average before: {os.getloadavg()[0]:.2f}  rounds: {rounds}  cores: {os.cpu_count()}")
    for command, path in inputs:
        size = os.path.getsize(path)
        with open(path, "rb") as f:        # into the page cache before the first round
            while f.read(1 << 24):
                pass
        samples = {name: [] for name, _ in builds}
        for _ in range(rounds):
            for name, binary in builds:
                samples[name].append(run([binary, command, path]))
        print(f"\n{command} {os.path.basename(path)}: {size / 1e6:.1f} MB")
        print(f"  {'build':<6} {'CPU s':>8} {'wall s':>8} {'MB/s CPU':>9} {'MB/s wall':>9}")
        medians = {}
        for name, _ in builds:
            cpu = statistics.median(s[1] for s in samples[name])
            wall = statistics.median(s[0] for s in samples[name])
            medians[name] = cpu
            print(f"  {name:<6} {cpu:8.3f} {wall:8.3f} {size / 1e6 / cpu:9.0f} {size / 1e6 / wall:9.0f}")
        if old:
            print(f"  old / new CPU: {medians['old'] / medians['new']:.2f}x")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
