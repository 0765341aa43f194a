"""The webhook per record (``[alerts] each_record = true``, claudewrap.export.record_hook):
real wrapped runs in a real pty, a real HTTP receiver on 127.0.0.1.

The wrapped program is a small script that prints usage lines (the seed's
``Tokens: N input, M output``) quickly, and where a test needs it waits for a
file before printing the rest and exiting: the test decides when the run ends
by what the receiver has seen, never by a clock.
"""

from __future__ import annotations

import http.server
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from claude_code import claude_cli  # noqa: F401 - fixture
from conftest import CW, read_all, spawn, wait_until
from test_claude_code import Setup, api, cc, run_cw  # noqa: F401 - fixtures

from claudewrap.export.budget import BudgetError, load_config
from claudewrap.store.journal import read_records
from claudewrap.store.records import UsageRecord
from claudewrap.usage.report import summarize

SECRET = "PROMPT-TEXT-NEVER-SENT"

# Prints FIRST usage lines 20 ms apart, then (with a GO file named) waits for
# it, prints LAST more at once and exits with STATUS: the last records are
# written in the run's last moment.
FAKE = """#!{python}
import os, sys, time
first, last, status, go = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
print("{secret}: what a prompt would look like", flush=True)
for i in range(1, first + 1):
    print(f"Tokens: {{i}} input, {{2 * i}} output", flush=True)
    time.sleep(0.02)
deadline = time.monotonic() + 60
while go != "-" and not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.02)
for i in range(first + 1, first + last + 1):
    print(f"Tokens: {{i}} input, {{2 * i}} output", flush=True)
print("done", flush=True)
sys.exit(status)
"""


class Receiver(http.server.ThreadingHTTPServer):
    """Records every POST (arrival time, body) and answers as ``mode`` says:
    ``ok`` (204), ``fail`` (503 until :attr:`mode` changes), ``hang`` (no
    answer until :attr:`release` is set)."""

    def __init__(self, mode: str = "ok", *, listen: bool = True) -> None:
        super().__init__(("127.0.0.1", 0), _Hook, bind_and_activate=False)
        self.server_bind()  # bound: the port is ours; refused until server_activate()
        self.mode = mode
        self.posts: list[tuple[float, int, dict[str, Any], dict[str, str]]] = []
        self.raw: list[bytes] = []
        self.in_flight = 0
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        if listen:
            self.listen()

    def listen(self) -> None:
        self.server_activate()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def ok_bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [body for _, status, body, _ in self.posts if status == 204]

    def stop(self) -> None:
        self.release.set()
        if self.thread is not None:
            self.shutdown()
        self.server_close()


class _Hook(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        arrived = time.monotonic()
        mode = self.server.mode
        if mode == "hang":
            with self.server.lock:
                self.server.in_flight += 1
            self.server.release.wait(30)  # bounded: set at the end of every test
            with self.server.lock:
                self.server.in_flight -= 1
        status = 503 if mode == "fail" else 204
        with self.server.lock:
            self.server.raw.append(raw)
            self.server.posts.append((arrived, status, json.loads(raw), dict(self.headers)))
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    server = Receiver(getattr(request, "param", "ok"))
    yield server
    server.stop()


def configure(env: dict[str, str], url: str, each_record: bool | None = True) -> None:
    config = Path(env["XDG_CONFIG_HOME"]) / "claudewrap" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    text = f'[alerts]\nwebhook_url = "{url}"\nheaders = {{ Authorization = "Bearer t0ken" }}\n'
    if each_record is not None:
        text += f"each_record = {'true' if each_record else 'false'}\n"
    config.write_text(text)


def start_run(env: dict[str, str], tmp_path: Path, first: int, last: int, status: int,
              go: Path | None = None) -> Any:
    script = tmp_path / "usage_printer.py"
    script.write_text(FAKE.format(python=sys.executable, secret=SECRET))
    script.chmod(0o755)
    run_env = dict(env, CLAUDEWRAP_CLAUDE=str(script))
    return spawn([*CW, "run", "--", str(first), str(last), str(status),
                  str(go) if go else "-"], run_env, timeout=60)


def journal(env: dict[str, str]) -> list[UsageRecord]:
    return list(read_records(Path(env["CLAUDEWRAP_JOURNAL"])))


def sent_records(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for b in bodies for r in b["records"]]


def all_sent(receiver: Receiver, env: dict[str, str]) -> bool:
    ids = {r["id"] for r in sent_records(receiver.ok_bodies())}
    return len(ids) == len(journal(env))


def assert_bodies_are_the_journal(bodies: list[dict[str, Any]], recs: list[UsageRecord]
                                  ) -> None:
    """Each journal record arrived once, as it is in the journal, and the seed's
    tokens/cost add up to the run's usage as the reports count it."""
    session = recs[0].session
    sent = sent_records(bodies)
    assert [r["id"] for r in sent] == [f"{session}:{n}" for n in range(1, len(recs) + 1)]
    fields = ("ts", "model", "kind", "source", "input_tokens", "output_tokens",
              "cache_read_tokens", "cache_write_tokens", "session", "project", "host")
    assert [{k: r[k] for k in fields} for r in sent] == \
        [{k: getattr(rec, k) for k in fields} for rec in recs]
    total = summarize(recs).total
    assert sum(b["tokens"] for b in bodies) == total.tokens > 0
    assert sum(b["cost"] for b in bodies) == pytest.approx(total.cost_usd, abs=1e-9)
    assert bodies[-1]["run_tokens"] == total.tokens
    assert all(b["session"] == session and b["event"] == "usage" for b in bodies)


def test_bodies_add_up_to_the_journal_at_most_one_post_a_second(
        env: dict[str, str], tmp_path: Path, receiver: Receiver) -> None:
    """150 records over ~3 s, then 60 printed in claude's last moment: the bodies
    hold every journal record once, in order (the last ones too, sent after the
    run), the first arrives while claude still runs, and no two POSTs are less
    than a second apart."""
    configure(env, receiver.url)
    go = tmp_path / "go"
    child = start_run(env, tmp_path, 150, 60, 3, go)
    wait_until(receiver.ok_bodies, "a body while the run goes on")
    go.touch()
    out = read_all(child)
    assert child.exitstatus == 3, out
    assert b"Tokens: 210 input, 420 output" in out
    wait_until(lambda: all_sent(receiver, env), "every record at the receiver")
    recs = journal(env)
    assert len(recs) == 210
    bodies = receiver.ok_bodies()
    assert_bodies_are_the_journal(bodies, recs)
    assert [b["seq"] for b in bodies] == list(range(1, len(bodies) + 1))
    arrivals = [t for t, _, _, _ in receiver.posts]
    assert len(arrivals) <= int(arrivals[-1] - arrivals[0]) + 1, arrivals
    assert all(h.get("Authorization") == "Bearer t0ken" for _, _, _, h in receiver.posts)
    assert not any(SECRET.encode() in raw for raw in receiver.raw)


def test_records_wait_while_the_receiver_fails_and_arrive_once(
        env: dict[str, str], tmp_path: Path) -> None:
    """The receiver answers 503 to the first POSTs and is back after the run
    ended: nothing is lost, nothing counts twice, and failed POSTs were not
    repeated faster than once a second."""
    receiver = Receiver("fail")
    try:
        configure(env, receiver.url)
        out = read_all(start_run(env, tmp_path, 30, 30, 0))
        assert b"done" in out
        wait_until(lambda: len(receiver.posts) >= 2, "two failed POSTs")
        receiver.mode = "ok"
        wait_until(lambda: all_sent(receiver, env), "every record after the receiver is back")
        assert_bodies_are_the_journal(receiver.ok_bodies(), journal(env))
        failed = [t for t, status, _, _ in receiver.posts if status == 503]
        assert len(failed) >= 2
        assert all(b - a >= 1.0 for a, b in pairwise(failed))
    finally:
        receiver.stop()


def test_records_arrive_when_a_refusing_receiver_comes_up(
        env: dict[str, str], tmp_path: Path) -> None:
    """Nothing listens on the port while claude runs (connections refused); once
    the run is over the receiver starts listening and gets every record once."""
    receiver = Receiver(listen=False)
    try:
        configure(env, receiver.url)
        child = start_run(env, tmp_path, 20, 20, 4)
        out = read_all(child)
        assert child.exitstatus == 4 and b"done" in out
        receiver.listen()
        wait_until(lambda: all_sent(receiver, env), "every record once the receiver is up")
        assert_bodies_are_the_journal(receiver.ok_bodies(), journal(env))
    finally:
        receiver.stop()


def test_a_hanging_receiver_does_not_hold_claude_or_the_prompt(
        env: dict[str, str], tmp_path: Path) -> None:
    """The receiver takes a POST and does not answer: claude's output and exit
    status are as without the webhook, and the wrapper exits while that POST
    is still unanswered; the records arrive once it answers again."""
    receiver = Receiver("hang")
    try:
        configure(env, receiver.url)
        go = tmp_path / "go"
        child = start_run(env, tmp_path, 10, 10, 5, go)
        wait_until(lambda: receiver.in_flight, "a POST in flight")
        go.touch()
        out = read_all(child)
        assert child.exitstatus == 5
        assert receiver.in_flight >= 1  # the wrapper is gone; the POST still waits
        configure(env, receiver.url, each_record=False)
        plain = read_all(start_run(env, tmp_path, 10, 10, 5))
        assert out.replace(b"\r\n", b"\n") == plain.replace(b"\r\n", b"\n")
        receiver.mode = "ok"
        receiver.release.set()
        wait_until(lambda: {r["id"] for r in sent_records(receiver.ok_bodies())}
                   >= {f"{journal(env)[0].session}:{n}" for n in range(1, 21)},
                   "the first run's records after the receiver answered")
    finally:
        receiver.stop()


def test_a_receiver_that_is_down_changes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    """A webhook URL where nothing listens: same output, same exit status."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    configure(env, f"http://127.0.0.1:{port}/hook")
    child = start_run(env, tmp_path, 5, 5, 7)
    out = read_all(child)
    assert child.exitstatus == 7
    assert out.count(b"Tokens:") == 10 and b"done" in out
    assert len(journal(env)) == 10


def test_off_by_default(env: dict[str, str], tmp_path: Path, receiver: Receiver) -> None:
    """A webhook_url alone sends no records: a run without each_record, then one
    with it, and only the second run's records arrive."""
    configure(env, receiver.url, each_record=None)
    assert not load_config(Path(env["XDG_CONFIG_HOME"]) / "claudewrap" / "config.toml"
                           ).each_record
    read_all(start_run(env, tmp_path, 5, 5, 0))
    first = {r.session for r in journal(env)}
    configure(env, receiver.url)
    read_all(start_run(env, tmp_path, 5, 5, 0))
    second = {r.session for r in journal(env)} - first
    assert len(first) == len(second) == 1
    wait_until(lambda: len(sent_records(receiver.ok_bodies())) >= 10, "the second run's records")
    assert {b["session"] for b in receiver.ok_bodies()} == second


def test_each_record_config_errors_say_the_fix(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[alerts]\nwebhook_url = "http://127.0.0.1:9/h"\neach_record = "yes"\n')
    with pytest.raises(BudgetError, match="alerts.each_record must be true or false"):
        load_config(config)
    config.write_text("[alerts]\neach_record = true\n")
    with pytest.raises(BudgetError, match="each_record needs alerts.webhook_url"):
        load_config(config)


def test_each_record_keeps_the_launch_path_light(env: dict[str, str], tmp_path: Path,
                                                 receiver: Receiver) -> None:
    """With each_record on, the wrapper of a run that records nothing still loads
    nothing heavy (no budget, no subprocess: the sender loads the config)."""
    from test_launch_path import HEAVY, _driver

    configure(env, receiver.url)
    heavy = (*HEAVY, "subprocess", "claudewrap.export.budget", "urllib.request")
    driver = tmp_path / "driver.py"
    driver.write_text(_driver(tmp_path).read_text().replace(repr(HEAVY), repr(heavy)))
    child = spawn([sys.executable, str(driver), "run", "--"],
                  dict(env, CLAUDEWRAP_CLAUDE="/bin/true"))
    out = read_all(child)
    assert child.exitstatus == 0, out
    assert b"LOADED[]" in out, out


@pytest.mark.parametrize("flags", [(), ("--no-otel",)], ids=["otel", "transcript"])
def test_real_claude_code_records_of_every_source_arrive(cc: Setup, receiver: Receiver,  # noqa: F811
                                                         flags: tuple[str, ...]) -> None:
    """The real Claude Code (-p, JSON result) against the fake API: the screen's
    total and OpenTelemetry's request (or, with --no-otel, the transcript read
    after claude exited) all arrive, and tokens add up to what the API served."""
    configure(cc.env, receiver.url)
    done = run_cw(cc, *flags, "--", "-p", "hello", "--output-format", "json")
    assert done.returncode == 0, done.stderr
    wait_until(lambda: all_sent(receiver, cc.env), "every record at the receiver")
    recs = journal(cc.env)
    bodies = receiver.ok_bodies()
    assert_bodies_are_the_journal(bodies, recs)
    exact = "transcript" if flags else "otel"
    assert {r["source"] for r in sent_records(bodies)} == {"pty", exact}
    served = cc.api.totals()
    assert sum(b["tokens"] for b in bodies) == sum(sum(t.values()) for t in served.values())
    assert not any(b"hello" in raw or b"zebra" in raw for raw in receiver.raw)
