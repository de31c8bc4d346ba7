#!/usr/bin/env python3
"""Minimal QMP client for the kvmscope lab.

Connects to QEMU's QMP unix socket, negotiates capabilities, optionally starts
the (``-S``) VM with ``cont``, and records every line QEMU sends (greeting,
command returns, events) verbatim to a JSON-lines file: one line per QMP
message, with QEMU's CRLF line end replaced by LF. Nothing else is written to
that file; commands sent carry an ``id`` so their returns are self-describing.

Actions react to events:

    --on 'EVENT[#N]:DELAY:CMD[,CMD...]'

waits DELAY seconds after the N-th (or every, without #N) EVENT and then sends
the commands, in order, each without arguments (e.g. ``STOP#1:1.0:cont``).

Exits 0 when QEMU closes the socket, 2 if it cannot connect, 3 on timeout.
Standard library only.
"""

import argparse
import json
import os
import socket
import sys
import time


def log(msg):
    print(f"lab: qmp: {msg}", file=sys.stderr, flush=True)


def parse_action(spec):
    try:
        event, delay, cmds = spec.split(":", 2)
        nth = None
        if "#" in event:
            event, n = event.split("#", 1)
            nth = int(n)
        commands = [c.strip() for c in cmds.split(",") if c.strip()]
        if not event or not commands:
            raise ValueError
        return {"event": event, "nth": nth, "delay": float(delay), "cmds": commands}
    except ValueError:
        raise SystemExit(f"lab: qmp: bad action '{spec}' (want EVENT[#N]:DELAY:CMD[,CMD...])")


class Client:
    def __init__(self, path, out, connect_timeout):
        self.out = out
        self.buf = b""
        self.seq = 0
        self.counts = {}
        self.quitting = False
        deadline = time.monotonic() + connect_timeout
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                s.close()
                if time.monotonic() > deadline:
                    log(f"could not connect to {path} within {connect_timeout}s")
                    sys.exit(2)
                time.sleep(0.05)
        self.sock = s

    def readline(self, timeout):
        """Next line (str) or None on timeout; raises EOFError on close."""
        end = time.monotonic() + max(timeout, 0)
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if self.buf:
                    line, self.buf = self.buf, b""
                    return self.record(line)
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return self.record(line)

    def record(self, raw):
        text = raw.rstrip(b"\r").decode("utf-8", "replace")
        self.out.write(text + "\n")
        self.out.flush()
        return text

    def send(self, name):
        if self.quitting:
            return
        self.quitting = name == "quit"
        self.seq += 1
        msg = {"execute": name, "id": f"{name}-{self.seq}"}
        try:
            self.sock.sendall(json.dumps(msg).encode() + b"\n")
            log(f"sent {name}")
        except OSError as e:
            log(f"could not send {name}: {e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--start", action="store_true", help="send 'cont' after negotiating (QEMU runs with -S)")
    ap.add_argument("--on", action="append", default=[], metavar="EVENT[#N]:DELAY:CMDS")
    ap.add_argument("--connect-timeout", type=float, default=15.0)
    ap.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    args = ap.parse_args()

    actions = [parse_action(a) for a in args.on]
    deadline = time.monotonic() + args.timeout
    pending = []  # (due, [cmds])

    with open(args.out, "w", encoding="utf-8") as out:
        c = Client(args.socket, out, args.connect_timeout)
        try:
            greeting = c.readline(10)
            if greeting is None or "QMP" not in json.loads(greeting):
                log("no QMP greeting")
                return 2
            c.send("qmp_capabilities")
            started = not args.start
            while True:
                now = time.monotonic()
                if now > deadline:
                    log(f"timeout after {args.timeout:.0f}s")
                    return 3
                for item in [p for p in pending if p[0] <= now]:
                    pending.remove(item)
                    for cmd in item[1]:
                        c.send(cmd)
                wait = min([p[0] for p in pending] + [deadline]) - now
                line = c.readline(min(wait, 1.0))
                if line is None:
                    continue
                try:
                    msg = json.loads(line)
                except ValueError:
                    log(f"unparsable line from QEMU: {line[:200]}")
                    continue
                if not started and msg.get("id", "").startswith("qmp_capabilities"):
                    started = True
                    c.send("cont")
                    continue
                ev = msg.get("event")
                if not ev:
                    continue
                n = c.counts[ev] = c.counts.get(ev, 0) + 1
                for a in actions if not c.quitting else []:
                    if a["event"] == ev and (a["nth"] is None or a["nth"] == n):
                        pending.append((time.monotonic() + a["delay"], a["cmds"]))
        except EOFError:
            return 0
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    sys.exit(main())
