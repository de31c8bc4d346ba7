#!/usr/bin/env python3
"""One QMP query for the lab's checks: qmp_query.py SOCKET WHAT

WHAT is `enabled-events` (the names trace-event-get-state reports enabled, one per
line, sorted), `status` (query-status's status), or `quit`. Standard library only;
exits 2 if it cannot connect or QEMU answers with an error.
"""
import json
import socket
import sys


def main():
    path, what = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(path)
    except OSError as e:
        raise SystemExit(f"qmp_query: {path}: {e}")
    f = s.makefile("rw")
    f.readline()

    def cmd(command, **args):
        msg = {"execute": command, "id": command}
        if args:
            msg["arguments"] = args
        f.write(json.dumps(msg) + "\n")
        f.flush()
        while True:
            line = f.readline()
            if not line:
                return None
            r = json.loads(line)
            if r.get("id") == command:
                if "error" in r:
                    print(f"qmp_query: {command}: {r['error']}", file=sys.stderr)
                    sys.exit(2)
                return r.get("return")

    cmd("qmp_capabilities")
    if what == "enabled-events":
        for name in sorted(e["name"] for e in cmd("trace-event-get-state", name="*") if e["state"] == "enabled"):
            print(name)
    elif what == "status":
        print(cmd("query-status")["status"])
    elif what == "quit":
        cmd("quit")
    else:
        raise SystemExit(f"qmp_query: unknown query {what}")


main()
