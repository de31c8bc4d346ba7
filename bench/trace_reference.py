#!/usr/bin/env python3
"""Reference for `kvmscope trace`'s benchmark: the same job done the plain-Python way a
sysadmin would write it -- one regular expression per QEMU log-backend line, a dict of
requests in flight keyed by element pointer, failures classified like kvmscope does
(backend error / rejected / other request / paused and retried), latencies kept in lists
and sorted at the end for percentiles.

    python3 bench/trace_reference.py TRACE.log

Prints the same counters as `kvmscope-bench trace` so the two can be compared; it only
understands current QEMU signatures with `-msg timestamp=on` (TID@SEC.USEC:name args).
"""
import os
import re
import sys
import time

LINE = re.compile(r"^(\d+)@(\d+)\.(\d+):(\w+) (.*)$")
ARGS = {
    "virtqueue_pop": re.compile(r"vq (\S+) elem (\S+) in_num (\d+) out_num (\d+)"),
    "virtqueue_fill": re.compile(r"vq (\S+) elem (\S+) len (\d+) idx (\d+)"),
    "virtio_blk_handle_read": re.compile(r"vdev (\S+) req (\S+) sector (\d+) nsectors (\d+)"),
    "virtio_blk_handle_write": re.compile(r"vdev (\S+) req (\S+) sector (\d+) nsectors (\d+)"),
    "virtio_blk_rw_complete": re.compile(r"vdev (\S+) req (\S+) ret (-?\d+)"),
    "virtio_blk_req_complete": re.compile(r"vdev (\S+) req (\S+) status (\d+)"),
    "virtio_set_status": re.compile(r"vdev (\S+) val (\d+)"),
}


def percentile(sorted_values, p):
    if not sorted_values:
        return 0
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def main(path):
    start = time.monotonic()
    requests = {}                 # elem -> dict
    latencies = {}                # operation -> [microseconds]
    failures = []
    groups = {}
    counts = {"completed": 0, "failed": 0, "discarded": 0}
    lines = events = other = 0
    with open(path, "rb") as f:
        for raw in f:
            lines += 1
            m = LINE.match(raw.decode("utf-8", "replace").rstrip("\n"))
            if not m:
                other += 1
                continue
            name = m.group(4)
            pattern = ARGS.get(name)
            if pattern is None:
                continue
            a = pattern.match(m.group(5))
            if a is None:
                other += 1
                continue
            events += 1
            t = int(m.group(2)) * 1_000_000 + int(m.group(3))
            if name == "virtqueue_pop":
                requests[a.group(2)] = {"vq": a.group(1), "pop": t, "in": int(a.group(3)),
                                        "out": int(a.group(4)), "op": None, "attempts": 0,
                                        "ret": None, "first_error": None, "status": None}
            elif name in ("virtio_blk_handle_read", "virtio_blk_handle_write"):
                r = requests.setdefault(a.group(2), {"vq": None, "pop": None, "in": 0, "out": 0,
                                                     "attempts": 0, "ret": None, "first_error": None,
                                                     "status": None})
                r["vdev"] = a.group(1)
                r["op"] = "read" if name.endswith("read") else "write"
                r["sector"], r["sectors"] = int(a.group(3)), int(a.group(4))
                r["attempts"] += 1
                r["handle"] = t
            elif name == "virtio_blk_rw_complete":
                r = requests.get(a.group(2))
                if r is not None:
                    r["ret"] = int(a.group(3))
                    if r["ret"] < 0 and r["first_error"] is None:
                        r["first_error"] = r["ret"]
            elif name == "virtio_blk_req_complete":
                r = requests.get(a.group(2))
                if r is not None:
                    r["vdev"] = a.group(1)
                    r["status"] = int(a.group(3))
            elif name == "virtqueue_fill":
                r = requests.pop(a.group(2), None)
                if r is None or r["status"] is None:
                    continue
                op = r["op"] or ("flush" if r["in"] == 1 and r["out"] == 1 else "other")
                if r["pop"] is not None:
                    latencies.setdefault(op, []).append(t - r["pop"])
                cause = None
                if r["status"] == 0:
                    counts["completed"] += 1
                    if r["first_error"] is not None:
                        cause = "paused-retried" if r["attempts"] > 1 else "backend-error"
                else:
                    counts["failed"] += 1
                    if r["first_error"] is not None:
                        cause = "paused-retried" if r["attempts"] > 1 else "backend-error"
                    elif r["op"] is not None or r["status"] == 2:
                        cause = "rejected"
                    else:
                        cause = "other-request"
                if cause:
                    key = (r.get("vdev"), op, cause, r["first_error"], r["status"])
                    groups[key] = groups.get(key, 0) + 1
                    if len(failures) < 1000:
                        failures.append((t, key, r.get("sector"), r.get("sectors")))
            elif name == "virtio_set_status" and a.group(2) == "0":
                for elem in [e for e, r in requests.items() if r.get("vdev") == a.group(1)]:
                    del requests[elem]
                    counts["discarded"] += 1
    summary = {}
    for op, values in latencies.items():
        values.sort()
        summary[op] = (len(values), values[0], sum(values) / len(values), percentile(values, 50),
                       percentile(values, 99), values[-1])
    seconds = time.monotonic() - start
    size = os.path.getsize(path)
    print(f"python reference: {size / 1e6:.1f} MB in {seconds:.2f} s = {size / 1e6 / seconds:.0f} MB/s, "
          f"{lines} lines, {events} events decoded, {counts['completed'] + counts['failed']} requests, "
          f"{sum(groups.values())} failures, {len(requests)} in flight")
    for op, s in sorted(summary.items()):
        print(f"  {op}: {s[0]} requests, pop->fill min {s[1]} us, mean {s[2]:.1f} us, p50 {s[3]} us, p99 {s[4]} us, max {s[5]} us")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: trace_reference.py TRACE.log")
    main(sys.argv[1])
