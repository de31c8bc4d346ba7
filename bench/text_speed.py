#!/usr/bin/env python3
"""The runner behind bench/text-speed.sh (see there): interleaved rounds of `kvmscope exits`
and `kvmscope drops` of two builds, CPU time from wait4's rusage, medians."""
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from trace_speed import timed_rounds  # noqa: E402  (interleaved rounds, medians table)


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
        tools = [(name, lambda f, b=binary: [b, command, f]) for name, binary in builds]
        medians = {name: cpu for name, (cpu, _) in
                   timed_rounds(path, f"{command} {os.path.basename(path)}", tools, rounds, "build", 6).items()}
        if old:
            print(f"  old / new CPU: {medians['old'] / medians['new']:.2f}x")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
