#!/usr/bin/env python3
"""The exporter under load: `claudewrap serve` scraped by many clients at once,
and by one client while slow clients hold connections open (slowloris).

Everything is measured side by side in one run, against one real
`claudewrap serve` on 127.0.0.1 and a generated journal, and printed with ratios:

* N scrapes one after another (total, median, slowest) against N scrapes started
  at the same moment (all answered? median, slowest, wall time);
* the time of a normal scrape alone, and while S slowloris connections each send
  one byte of a request head per second (and how long the server kept those).

    python bench/exporter_load.py [--records 20000] [--scrapes 200] [--slow 50]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import gen_journal


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(url: str, timeout: float = 30) -> float:
    """Seconds one GET of ``url`` takes (raises OSError on failure)."""
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        resp.read()
        if resp.status != 200:
            raise OSError(f"status {resp.status}")
    return time.monotonic() - started


def start_server(journal: Path, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDEWRAP_")}
    env.update({"PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(work / "data"),
                "CLAUDEWRAP_PRICES": str(work / "none.toml")})
    proc = subprocess.Popen([sys.executable, "-m", "claudewrap", "serve", "--port", str(port),
                             "--journal", str(journal)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            scrape(url + "/healthz", timeout=2)
            return proc, url + "/metrics"
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"claudewrap serve exited with {proc.returncode}") from None
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("claudewrap serve did not answer within 120 s")


def sequential(url: str, n: int) -> list[float]:
    return [scrape(url) for _ in range(n)]


def concurrent(url: str, n: int, timeout: float) -> tuple[list[float], int, float]:
    """(latencies of the answered, failures, wall time) of ``n`` scrapes at once."""
    times: list[float] = []
    failures = [0]
    lock = threading.Lock()
    gate = threading.Barrier(n + 1)

    def one() -> None:
        gate.wait()
        try:
            t = scrape(url, timeout)
        except OSError:
            with lock:
                failures[0] += 1
            return
        with lock:
            times.append(t)

    threads = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    gate.wait()
    started = time.monotonic()
    for t in threads:
        t.join(timeout + 5)
    return times, failures[0], time.monotonic() - started


class Slowloris:
    """``n`` connections that each send one byte of a request head per second."""

    HEAD = b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200 + b"\r\n\r\n"

    def __init__(self, port: int, n: int) -> None:
        self.socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]
        self.opened = time.monotonic()
        self.dropped: list[float] = []  # seconds after opening that the server closed each
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self) -> None:
        live = list(self.socks)
        i = 0
        while live and not self.stop.wait(1.0):
            byte = self.HEAD[i % len(self.HEAD):i % len(self.HEAD) + 1]
            i += 1
            for s in list(live):
                try:
                    s.sendall(byte)
                except OSError:
                    live.remove(s)
                    self.dropped.append(time.monotonic() - self.opened)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for s in self.socks:
            s.close()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--slow", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="client timeout of each concurrent scrape (s)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        journal = work / "journal.jsonl"
        with open(journal, "w", encoding="utf-8") as out:
            gen_journal.generate(out, args.records, seed=1)
        proc, url = start_server(journal, work)
        port = int(url.split(":")[2].split("/")[0])
        try:
            scrape(url)  # warm: the first read of the journal
            seq = sequential(url, args.scrapes)
            seq_total = sum(seq)
            times, failed, wall = concurrent(url, args.scrapes, args.timeout)
            alone = sequential(url, 20)
            slow = Slowloris(port, args.slow)
            try:
                time.sleep(2.0)  # let the slow connections settle in
                during = sequential(url, 20)
                time.sleep(max(0.0, 8.0 - (time.monotonic() - slow.opened)))
            finally:
                kept = args.slow - len(slow.dropped)
                dropped = sorted(slow.dropped)
                slow.close()
            alone += sequential(url, 20)  # before and after: the machine's drift
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    print(f"journal: {args.records} generated records; {args.scrapes} scrapes; client timeout {args.timeout:.0f} s")
    print(f"sequential: total {seq_total:.2f} s, median {ms(statistics.median(seq))},"
          f" slowest {ms(max(seq))}")
    answered = len(times)
    print(f"concurrent: {answered}/{args.scrapes} answered ({failed} failed),"
          f" wall {wall:.2f} s, median {ms(statistics.median(times)) if times else '-'},"
          f" slowest {ms(max(times)) if times else '-'}")
    if times:
        print(f"  concurrent wall / sequential total: {wall / seq_total:.2f}x;"
              f" slowest concurrent / sequential total: {max(times) / seq_total:.2f}x")
    a, d = statistics.median(alone), statistics.median(during)
    print(f"scrape alone (before and after): median {ms(a)}; during {args.slow} slowloris connections:"
          f" median {ms(d)} (slowest {ms(max(during))}); ratio {d / a:.2f}x")
    when = f", after {dropped[0]:.0f}-{dropped[-1]:.0f} s" if dropped else ""
    print(f"  slowloris connections dropped by the server within 8 s: {len(dropped)}"
          f"{when}; still open: {kept}")


if __name__ == "__main__":
    main()
