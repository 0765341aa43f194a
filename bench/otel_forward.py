#!/usr/bin/env python3
"""OpenTelemetry pass-through: what forwarding through the wrapper's receiver
adds to one export, side by side with sending it straight to the collector.

A sender standing for Claude Code posts the same OTLP/JSON logs export (one
``claude_code.api_request`` event, ~1.5 kB, as Claude Code sends) N times:

(a) straight to a local collector (the baseline: what Claude Code waits for
    without claudewrap);
(b) to a :class:`claudewrap.sources.otel.Receiver` that records the usage and forwards
    to that collector (what Claude Code waits for through the wrapper).

Printed: median and p99 per export for each, and (b) / (a). Both run in this
process on 127.0.0.1, alternating, so machine noise hits both alike.

    python bench/otel_forward.py [--n 300]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_otel import api_request, logs

from claudewrap.sources import otel


class Collector(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as real collectors (Go's net/http) do

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def post(conn: http.client.HTTPConnection, path: str, body: bytes) -> float:
    start = time.perf_counter()
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json",
                                                   "Authorization": "Bearer%20t"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 200, resp.status
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    n = ap.parse_args().n
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    with tempfile.TemporaryDirectory() as tmp:
        receiver = otel.Receiver(session="bench", journal=str(Path(tmp) / "j.jsonl"),
                                 upstream={"/v1/logs": url + "/v1/logs"}, env={}).start()
        prefix = receiver.endpoint.split(str(receiver.port), 1)[1]
        direct = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        wrapped = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
        times: dict[str, list[float]] = {"direct": [], "through the wrapper": []}
        for i in range(n):
            # A fresh request id each time: the receiver records every one.
            body = json.dumps(logs(api_request(f"req_{i}", seq=i))).encode()
            times["direct"].append(post(direct, "/v1/logs", body))
            times["through the wrapper"].append(post(wrapped, prefix + "/v1/logs", body))
        warning = receiver.close()
        assert warning is None, warning
        assert len(receiver.records) == n
    print(f"{n} exports of {len(body)} bytes each, alternating:")
    medians = {}
    for name, values in times.items():
        values.sort()
        medians[name] = statistics.median(values)
        print(f"  {name:20s} median {medians[name] * 1000:6.2f} ms"
              f"   p99 {values[int(len(values) * 0.99) - 1] * 1000:6.2f} ms")
    print(f"  ratio (wrapper / direct), medians: "
          f"{medians['through the wrapper'] / medians['direct']:.2f}x")


if __name__ == "__main__":
    main()
