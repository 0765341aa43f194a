"""`claudewrap serve` (a real HTTP server in a subprocess) and `claudewrap metrics --push`
(a real Pushgateway, Debian's prometheus-pushgateway, on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, gen_journal, require
from test_metrics import HOST, parse, rec, value, write

CW = [sys.executable, "-m", "claudewrap"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 10
        ) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None, limit: float = 20) -> None:
    end = time.time() + limit
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}")
        try:
            get(url, timeout=1)
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not answer within {limit} s")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, limit: float = 10) -> int:
    """Stop ``proc`` (ours, by pid) and return its exit status."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(limit)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    return int(proc.returncode)


def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDEWRAP_")}
    env.update({"PYTHONPATH": str(ROOT), "CLAUDEWRAP_PRICES": str(tmp_path / "none.toml"),
                "XDG_DATA_HOME": str(tmp_path / "data")})
    return env


class Serve:
    def __init__(self, journal: Path, tmp_path: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [*CW, "serve", "--port", str(self.port), "--journal", str(journal), *args],
            env=environment(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_http(self.url + "/healthz", self.proc)

    def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        status, _, body = get(self.url + "/metrics")
        assert status == 200, body
        return parse(body)


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return write(tmp_path / "journal.jsonl", [
        rec(120, input_tokens=1000, output_tokens=100, cost_usd=0.5),
        rec(60, "s2", model="claude-opus-4-1", input_tokens=10, project="api", cost_usd=0.25),
    ])


@pytest.fixture
def serve(journal: Path, tmp_path: Path) -> Iterator[Serve]:
    server = Serve(journal, tmp_path)
    try:
        yield server
    finally:
        stop(server.proc, signal.SIGKILL)


def test_metrics_follow_the_journal_as_it_grows(serve: Serve, journal: Path) -> None:
    s = serve.scrape()
    assert value(s, "claude_api_tokens_input_total") == 1010
    assert value(s, "claude_api_cost_dollars_total") == 0.75
    write(journal, [rec(10, input_tokens=5, cost_usd=0.01)], "a")
    s = serve.scrape()
    assert value(s, "claude_api_tokens_input_total") == 1015
    assert value(s, "claude_api_cost_dollars_total") == pytest.approx(0.76)
    # a line still being written is left for the next scrape
    line = rec(5, input_tokens=7).to_json()
    with open(journal, "a") as f:
        f.write(line[:30])
    assert value(serve.scrape(), "claude_api_tokens_input_total") == 1015
    with open(journal, "a") as f:
        f.write(line[30:] + "\n")
    assert value(serve.scrape(), "claude_api_tokens_input_total") == 1022


def test_a_fresh_serve_shows_history_at_once_and_new_series_from_zero(serve: Serve,
                                                                      journal: Path) -> None:
    # What the README promises: the first export of a journal shows every series
    # at its value; a series that appears later starts at 0 once (increase()).
    first = serve.scrape()
    assert value(first, "claude_api_tokens_input_total", project="api") == 10
    write(journal, [rec(10, "s3", project="brand-new", input_tokens=42)], "a")
    assert value(serve.scrape(), "claude_api_tokens_input_total", project="brand-new") == 0
    assert value(serve.scrape(), "claude_api_tokens_input_total", project="brand-new") == 42


def test_a_series_new_since_the_saved_counters_starts_at_zero_in_a_fresh_serve(
        journal: Path, tmp_path: Path) -> None:
    # Issue 12 item 15: `metrics` exported the journal (saved counters), a new
    # project appeared, then `serve` starts: its first answer shows the new series
    # at 0 once (as a later `metrics` run does), not at its value at once.
    done = subprocess.run([*CW, "metrics", "--journal", str(journal)], env=environment(tmp_path),
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert value(parse(done.stdout), "claude_api_tokens_input_total", project="api") == 10
    write(journal, [rec(10, "s3", project="brand-new", input_tokens=42)], "a")
    server = Serve(journal, tmp_path)
    try:
        first = server.scrape()
        assert value(first, "claude_api_tokens_input_total", project="api") == 10
        assert value(first, "claude_api_tokens_input_total", project="brand-new") == 0
        assert value(server.scrape(), "claude_api_tokens_input_total", project="brand-new") == 42
    finally:
        stop(server.proc, signal.SIGKILL)


def test_rotated_and_truncated_journal(serve: Serve, journal: Path, tmp_path: Path) -> None:
    """A new journal is a real reset; its series show 0 once, then their values
    (so that Prometheus's increase() counts its first usage)."""
    assert value(serve.scrape(), "claude_api_tokens_input_total") == 1010
    os.rename(journal, tmp_path / "journal.jsonl.1")
    write(journal, [rec(10, input_tokens=3)])
    assert value(serve.scrape(), "claude_api_tokens_input_total") == 0
    assert value(serve.scrape(), "claude_api_tokens_input_total") == 3
    write(journal, [rec(5, input_tokens=4)])  # truncated and rewritten in place
    assert value(serve.scrape(), "claude_api_tokens_input_total") == 0
    assert value(serve.scrape(), "claude_api_tokens_input_total") == 4
    journal.unlink()
    s = serve.scrape()
    assert not [k for k in s if k[0] == "claude_api_tokens_input_total"]
    write(journal, [rec(1, input_tokens=9)])
    assert value(serve.scrape(), "claude_api_tokens_input_total") == 0
    assert value(serve.scrape(), "claude_api_tokens_input_total") == 9


def test_endpoints(serve: Serve) -> None:
    status, headers, body = get(serve.url + "/healthz")
    assert (status, body) == (200, b"ok\n")
    status, _, _ = get(serve.url + "/nothing")
    assert status == 404
    status, headers, body = get(serve.url + "/metrics", {"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    assert value(parse(gzip.decompress(body)), "claude_api_records_total") == 2
    accept = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    status, headers, body = get(serve.url + "/metrics", {"Accept": accept})
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


def test_listens_on_loopback_by_default(serve: Serve) -> None:
    assert serve.proc.stderr is not None
    line = serve.proc.stderr.readline().decode()
    assert line.startswith(f"claudewrap serve: http://127.0.0.1:{serve.port}/metrics")
    hex_port = f"{serve.port:04X}"
    listening = [row.split()[1] for row in Path("/proc/net/tcp").read_text().splitlines()[1:]
                 if row.split()[1].endswith(":" + hex_port) and row.split()[3] == "0A"]
    assert listening == [f"0100007F:{hex_port}"]


def test_port_in_use_is_one_clear_line(serve: Serve, journal: Path, tmp_path: Path) -> None:
    result = subprocess.run([*CW, "serve", "--port", str(serve.port), "--journal", str(journal)],
                            env=environment(tmp_path), capture_output=True, timeout=20,
                            check=False)
    assert result.returncode == 1
    assert result.stderr.decode() == (
        f"Error: cannot listen on 127.0.0.1:{serve.port}: the port is in use (another"
        f" `claudewrap serve`?); stop it or choose another --port\n")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_it_cleanly(journal: Path, tmp_path: Path, sig: int) -> None:
    server = Serve(journal, tmp_path)
    try:
        server.scrape()
        started = time.monotonic()
        assert stop(server.proc, sig) == 0
        assert time.monotonic() - started < 5
        assert server.proc.stderr is not None
        assert b"Traceback" not in server.proc.stderr.read()
    finally:
        stop(server.proc, signal.SIGKILL)
    with pytest.raises(ConnectionRefusedError):  # nothing listens any more
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


def test_scrapes_of_a_big_journal_read_only_new_lines(tmp_path: Path) -> None:
    """A scrape after a small append reads the new lines, not the journal again.

    Measured in bytes the server read (/proc/PID/io rchar), not in time: times on
    these shared machines swing 2x (bench/readers.py has the timings)."""
    generate = gen_journal().generate
    journal = tmp_path / "big.jsonl"
    with open(journal, "w", encoding="utf-8") as out:
        generate(out, 100_000, seed=3)
    server = Serve(journal, tmp_path)

    def read_so_far() -> int:
        io = Path(f"/proc/{server.proc.pid}/io").read_text()
        return int(next(line.split()[1] for line in io.splitlines() if line.startswith("rchar:")))

    try:
        size = journal.stat().st_size
        start = value(parse(get(server.url + "/metrics")[2]), "claude_api_tokens_input_total")
        reads = []
        added = []
        for i in range(5):
            was = journal.stat().st_size
            write(journal, [rec(5, f"new{i}", input_tokens=1)] * 100, "a")
            added.append(journal.stat().st_size - was)
            before = read_so_far()
            status, _, body = get(server.url + "/metrics")
            reads.append(read_so_far() - before)
            assert status == 200 and b"new" not in body  # session ids are no labels
        # every new line counted: 5 appends of 100 records of 1 input token
        assert value(parse(body), "claude_api_tokens_input_total") == start + 500
        print(f"\n{size >> 20} MiB journal: a scrape after 100 new records"
              f" ({added[0] >> 10} KiB) read {sorted(reads)[2] >> 10} KiB (median)")
        assert max(reads) < size // 50, (reads, size, added)
        # About the new lines: what else a scrape reads does not grow with the journal
        # (two digests of 68 KiB, rollup.file_checks; the limits file; the live markers).
        assert all(r < a + (256 << 10) for r, a in zip(reads, added)), (reads, added)
    finally:
        stop(server.proc, signal.SIGKILL)


def test_systemd_unit_is_valid(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    text = (ROOT / "examples/systemd/claudewrap-exporter.service").read_text()
    assert "ExecStart=%h/.local/bin/claudewrap serve --host 127.0.0.1 --port 9404" in text
    unit = tmp_path / "claudewrap-exporter.service"
    unit.write_text(text.replace("%h/.local/bin/claudewrap", sys.executable + " -m claudewrap"))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "claudewrap-exporter.service" not in result.stderr, result.stderr


# ------------------------------------------------------------------------- Pushgateway


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    binary = require("prometheus-pushgateway")
    port = free_port()
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=tempfile.mkdtemp(dir=tmp_path))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/-/ready", proc)
        yield url
    finally:
        stop(proc, signal.SIGTERM)


def test_push_groups_by_host(pushgateway: str, tmp_path: Path) -> None:
    journal = write(tmp_path / "journal.jsonl", [
        rec(120, input_tokens=1000, cost_usd=0.5, host=HOST),
        rec(60, "s2", input_tokens=20, cost_usd=0.25, host="laptop-2"),
    ])
    result = subprocess.run([*CW, "metrics", "--push", pushgateway, "--journal", str(journal)],
                            env=environment(tmp_path), capture_output=True, timeout=30,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    _, _, body = get(pushgateway + "/metrics")
    s = parse(body)
    mine = {"job": "claudewrap", "host": HOST}
    assert value(s, "claude_api_tokens_input_total", **mine) == 1000
    assert value(s, "claude_api_cost_dollars_total", **mine) == 0.5
    assert value(s, "claude_api_tokens_input_total", job="claudewrap", host="laptop-2") == 20
    assert value(s, "claude_sessions_active", **mine) == 0
    assert value(s, "claude_journal_skipped_lines", **mine) == 0
    # a push replaces this host's group: numbers move, nothing is duplicated
    write(journal, [rec(10, input_tokens=1, host=HOST)], "a")
    subprocess.run([*CW, "metrics", "--push", pushgateway, "--job", "claudewrap",
                    "--journal", str(journal)], env=environment(tmp_path), check=True,
                   capture_output=True, timeout=30)
    s = parse(get(pushgateway + "/metrics")[2])
    assert value(s, "claude_api_tokens_input_total", **mine) == 1001


def test_push_to_nothing_is_one_line(tmp_path: Path, journal: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run([*CW, "metrics", "--push", url, "--journal", str(journal)],
                            env=environment(tmp_path), capture_output=True, timeout=30,
                            check=False)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert err.count("\n") == 1 and err.startswith(f"Error: cannot push to {url}: ")
    assert "is the Pushgateway running there?" in err


# ------------------------------------------------------------------------- under load


def scrape_seconds(url: str, timeout: float = 15) -> float:
    started = time.monotonic()
    status, _, body = get(url, timeout=timeout)
    assert status == 200 and b"claude_api_tokens_input_total" in body
    return time.monotonic() - started


def test_200_concurrent_scrapes_are_all_answered(serve: Serve) -> None:
    """Issue 13 item 10: with a backlog of 5, 13 of 200 timed out."""
    url = serve.url + "/metrics"
    times: list[float] = []
    errors: list[str] = []
    gate = threading.Barrier(201)

    def one() -> None:
        try:
            gate.wait(10)
            times.append(scrape_seconds(url))
        except (OSError, AssertionError, threading.BrokenBarrierError) as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=one, daemon=True) for _ in range(200)]
    for t in threads:
        t.start()
    gate.wait(10)
    deadline = time.monotonic() + 30
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not [t for t in threads if t.is_alive()]
    assert errors == []
    assert len(times) == 200
    print(f"\n200 concurrent scrapes: median {statistics.median(times) * 1000:.0f} ms,"
          f" slowest {max(times) * 1000:.0f} ms")
    assert max(times) < 10


def closed_after(sock: socket.socket, limit: float) -> float | None:
    """Seconds until the server closes ``sock`` (None: still open after ``limit``)."""
    started = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_a_scrape_during_slowloris_is_as_fast_as_without(serve: Serve) -> None:
    """50 connections trickling a request head (one byte a second) and one that sends
    nothing are dropped after a few seconds; meanwhile scrapes go as fast as alone."""
    url = serve.url + "/metrics"
    alone = statistics.median(scrape_seconds(url) for _ in range(5))
    head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100 + b"\r\n\r\n"
    silent = socket.create_connection(("127.0.0.1", serve.port), timeout=5)
    slow = [socket.create_connection(("127.0.0.1", serve.port), timeout=5) for _ in range(50)]
    stop_trickle = threading.Event()

    def trickle() -> None:
        for i in range(len(head)):
            if stop_trickle.wait(1.0):
                return
            for s in slow:
                try:
                    s.send(head[i:i + 1])
                except OSError:
                    pass  # dropped by the server: what the test waits for

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        time.sleep(1.5)
        during = statistics.median(scrape_seconds(url) for _ in range(5))
        print(f"\nscrape alone {alone * 1000:.0f} ms, during slowloris {during * 1000:.0f} ms")
        assert during < 3 * alone + 0.25
        # the server drops them once their time to send a request head is up
        assert closed_after(silent, 10) is not None
        waited = closed_after(slow[0], 10)
        assert waited is not None
        for s in slow[1:]:
            assert closed_after(s, 2) is not None
        assert scrape_seconds(url) < 3 * alone + 0.25
    finally:
        stop_trickle.set()
        thread.join(5)
        silent.close()
        for s in slow:
            s.close()
    assert not thread.is_alive()


def raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_malformed_requests_get_a_short_answer(serve: Serve) -> None:
    assert raw_request(serve.port, b"HELLO\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw_request(serve.port, b"POST /metrics HTTP/1.1\r\n\r\n").startswith(
        b"HTTP/1.1 405 ")
    huge = b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    assert raw_request(serve.port, huge).startswith(b"HTTP/1.1 431 ")
    answer = raw_request(serve.port, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\n")
    assert int(answer.split(b"Content-Length: ")[1].split(b"\r\n")[0]) > 0
    assert stop(serve.proc, signal.SIGTERM) == 0  # nothing in all that hurt it


def test_scrapes_that_arrive_during_a_render_share_the_next_one() -> None:
    """The coalescing of claudewrap.export.exporter.Renders, with a real (slow) render."""
    from concurrent.futures import ThreadPoolExecutor

    from claudewrap.export.exporter import Renders

    started: list[int] = []

    def render() -> int:
        started.append(len(started))
        time.sleep(0.2)
        return len(started)

    async def burst() -> list[int]:
        renders: Renders[int] = Renders(render, executor)
        first = asyncio.ensure_future(renders.get())
        await asyncio.sleep(0.05)  # the first render is running
        rest = [asyncio.ensure_future(renders.get()) for _ in range(50)]
        later = await asyncio.gather(first, *rest)
        after = await renders.get()  # one that comes later gets a render of its own
        return [*later, after]

    with ThreadPoolExecutor(2) as executor:
        results = asyncio.run(asyncio.wait_for(burst(), 10))
    assert len(started) == 3
    assert results == [1] + [2] * 50 + [3]
