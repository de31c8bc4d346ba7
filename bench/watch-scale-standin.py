#!/usr/bin/env python3
"""HARNESS SELF-TEST ONLY: a stand-in exporter for bench/watch-scale.sh --self-test.

This is NOT kvmscope and its figures are NOT kvmscope's. It exists so that the scale harness
(starting N QEMUs, measuring an exporter's CPU, RSS, scrape latency and series count,
cleaning up) can be tested before `kvmscope watch` exists in the tree. It does the least an
exporter must do, with the standard library only:

- connects to every QMP socket matching --qmp GLOB (rescanned each poll), negotiates
  capabilities, and every --interval seconds sends query-status and query-blockstats;
- serves the last poll's results on http://--listen/metrics in the Prometheus text format,
  under a few of the contract's names, plus standin_exporter_info so nobody mistakes it.

    watch-scale-standin.py --qmp 'DIR/*.sock' [--qmp ...] --interval 15 --listen 127.0.0.1:9177
"""
import argparse
import glob
import http.server
import json
import socket
import threading
import time


class QMP:
    """One QMP client connection (QEMU serves one client per monitor)."""

    def __init__(self, path, timeout=2.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.file = self.sock.makefile("rwb")
        greeting = json.loads(self._line())
        if "QMP" not in greeting:
            raise ValueError(f"{path}: not a QMP greeting")
        self.execute("qmp_capabilities")

    def _line(self):
        line = self.file.readline()
        if not line:
            raise ConnectionError("QMP socket closed")
        return line

    def execute(self, command):
        self.file.write(json.dumps({"execute": command}).encode() + b"\n")
        self.file.flush()
        while True:
            reply = json.loads(self._line())
            if "event" in reply:
                continue  # asynchronous events come between a command and its reply
            if "error" in reply:
                raise RuntimeError(f"{command}: {reply['error'].get('desc')}")
            return reply["return"]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def escape(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


OPS = (("rd", "read"), ("wr", "write"), ("flush", "flush"), ("unmap", "unmap"))


class StandIn:
    def __init__(self, globs, interval):
        self.globs, self.interval = globs, interval
        self.conns = {}  # socket path -> QMP
        self.names = {}  # socket path -> VM name
        self.text = b"# no poll yet\n"
        self.lock = threading.Lock()
        self.errors = 0

    def poll(self):
        started = time.monotonic()
        paths = sorted({p for g in self.globs for p in glob.glob(g)})
        out = ["# HELP standin_exporter_info HARNESS SELF-TEST stand-in, not kvmscope.",
               "# TYPE standin_exporter_info gauge", "standin_exporter_info 1"]
        rows_up, rows_run, rows_ops, rows_bytes, rows_secs, rows_failed = [], [], [], [], [], []
        for path in paths:
            try:
                if path not in self.conns:
                    self.conns[path] = QMP(path)
                    self.names[path] = self.conns[path].execute("query-name").get("name") or path
                q = self.conns[path]
                status = q.execute("query-status")
                stats = q.execute("query-blockstats")
            except (OSError, ValueError, RuntimeError, ConnectionError, json.JSONDecodeError):
                self.errors += 1
                if path in self.conns:
                    self.conns.pop(path).close()
                rows_up.append(f'kvmscope_vm_qmp_up{{domain="{escape(self.names.get(path, path))}"}} 0')
                continue
            dom = escape(self.names[path])
            rows_up.append(f'kvmscope_vm_qmp_up{{domain="{dom}"}} 1')
            rows_run.append(f'kvmscope_vm_running{{domain="{dom}"}} {1 if status.get("running") else 0}')
            for disk in stats:
                dev = escape(disk.get("device") or disk.get("qdev") or "")
                s = disk.get("stats", {})
                for short, op in OPS:
                    lab = f'domain="{dom}",device="{dev}",operation="{op}"'
                    rows_ops.append(f"kvmscope_block_operations_total{{{lab}}} {s.get(short + '_operations', 0)}")
                    rows_failed.append(f"kvmscope_block_failed_operations_total{{{lab}}} {s.get('failed_' + short + '_operations', 0)}")
                    rows_secs.append(f"kvmscope_block_operation_seconds_total{{{lab}}} {s.get(short + '_total_time_ns', 0) / 1e9}")
                    if short in ("rd", "wr", "unmap"):
                        rows_bytes.append(f"kvmscope_block_bytes_total{{{lab}}} {s.get(short + '_bytes', 0)}")
        for gone in set(self.conns) - set(paths):
            self.conns.pop(gone).close()
        for name, kind, rows in (("kvmscope_vm_qmp_up", "gauge", rows_up), ("kvmscope_vm_running", "gauge", rows_run),
                                 ("kvmscope_block_operations_total", "counter", rows_ops),
                                 ("kvmscope_block_failed_operations_total", "counter", rows_failed),
                                 ("kvmscope_block_bytes_total", "counter", rows_bytes),
                                 ("kvmscope_block_operation_seconds_total", "counter", rows_secs)):
            out.append(f"# TYPE {name} {kind}")
            out.extend(rows)
        out += ["# TYPE kvmscope_watch_vms gauge", f"kvmscope_watch_vms {len(self.conns)}",
                "# TYPE kvmscope_watch_qmp_errors_total counter", f"kvmscope_watch_qmp_errors_total {self.errors}",
                "# TYPE standin_poll_seconds gauge", f"standin_poll_seconds {time.monotonic() - started:.6f}"]
        with self.lock:
            self.text = ("\n".join(out) + "\n").encode()

    def run(self):
        while True:
            t = time.monotonic()
            self.poll()
            time.sleep(max(0.0, self.interval - (time.monotonic() - t)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qmp", action="append", required=True)
    ap.add_argument("--interval", type=float, default=15)
    ap.add_argument("--listen", default="127.0.0.1:9177")
    a = ap.parse_args()
    host, _, port = a.listen.rpartition(":")
    s = StandIn(a.qmp, a.interval)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/metrics":
                self.send_error(404)
                return
            with s.lock:
                body = s.text
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    s.run()


if __name__ == "__main__":
    main()
