"""Budget alerts: a wrapped run that takes a budget over its line says so once on
stderr, after claude exited, and POSTs once to a webhook on 127.0.0.1; a receiver
that is down or slow never delays or fails the run."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_capture_e2e import P_JSON

from claudewrap.export import budget
from claudewrap.store.journal import append_records
from claudewrap.store.records import UsageRecord, utc_now_iso
from claudewrap.usage import limits

# The API as `claudewrap run` uses it (stdout is a pipe here: no pty involved).
RUN = ("import sys; from claudewrap.api import run_claude; "
       "sys.exit(run_claude(sys.argv[1:], project='web').exit_status)")


class Receiver(http.server.ThreadingHTTPServer):
    def __init__(self, behaviour: str) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.behaviour = behaviour
        self.requests: list[tuple[dict[str, str], Any]] = []
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Hook(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((dict(self.headers), body))
        if self.server.behaviour == "slow":
            self.server.release.wait(10)  # bounded: released at the end of the test
        failing = self.server.behaviour == "fail-first" and len(self.server.requests) == 1
        self.send_response(503 if failing else 204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    server = Receiver(getattr(request, "param", "ok"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def configure(env: dict[str, str], tmp_path: Path, url: str, daily: float = 0.02) -> None:
    config = Path(env["XDG_CONFIG_HOME"]) / "claudewrap" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[budget]\ndaily_usd = {daily}\n\n[alerts]\nwebhook_url = \"{url}\"\n"
                      "headers = { Authorization = \"Bearer t0ken\" }\n")
    result = tmp_path / "result.json"
    result.write_text(json.dumps(P_JSON) + "\n")  # $0.012345 per run


def run(env: dict[str, str], tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", RUN, "file", str(tmp_path / "result.json"),
                           "4"], env=env, capture_output=True, text=True, check=False, timeout=60)
    return done, time.monotonic() - started


def wait_for(cond: Any, limit: float = 15) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_one_notice_and_one_post_per_crossing(env: dict[str, str], tmp_path: Path,
                                              receiver: Receiver) -> None:
    configure(env, tmp_path, receiver.url)
    first, _ = run(env, tmp_path)  # $0.0123 of $0.02: under
    assert first.returncode == 4 and first.stderr == ""
    second, _ = run(env, tmp_path)  # $0.0247: over
    assert second.returncode == 4
    assert second.stdout == (tmp_path / "result.json").read_text()
    notice = second.stderr.splitlines()
    assert len(notice) == 1
    assert notice[0] == ("claudewrap: budget reached: today's spending $0.0247 is over your daily"
                         " budget of $0.02 (see `claudewrap monitor`)")
    wait_for(lambda: len(receiver.requests) == 1)
    headers, body = receiver.requests[0]
    assert headers["Authorization"] == "Bearer t0ken"
    assert headers["Content-Type"] == "application/json"
    assert body["event"] == "budget_exceeded" and body["period"] == "day"
    assert body["budget_usd"] == 0.02 and body["cost_usd"] == pytest.approx(0.02469)
    assert body["tokens"] == {"input": 20, "output": 40, "cache_read": 80, "cache_write": 60,
                              "total": 200}
    assert body["project"] is None and body["host"] and len(body["session"]) == 16
    third, _ = run(env, tmp_path)  # still over: the same crossing, never again
    assert third.stderr == ""
    time.sleep(0.5)
    assert len(receiver.requests) == 1


def test_a_crossing_with_unpriced_usage_says_the_spend_is_a_lower_bound(
        env: dict[str, str], tmp_path: Path, receiver: Receiver) -> None:
    configure(env, tmp_path, receiver.url, daily=0.01)
    # Earlier today: usage of a model without a price (its cost is unknown, not $0).
    append_records(Path(env["CLAUDEWRAP_JOURNAL"]), [UsageRecord(
        ts=utc_now_iso(), session="by-hand", source="manual", model="mystery-model-9",
        input_tokens=500, output_tokens=50)])
    done, _ = run(env, tmp_path)  # $0.0123 known, over $0.01
    assert done.stderr.splitlines() == [(
        "claudewrap: budget reached: today's spending $0.0123+? is over your daily budget"
        " of $0.01 (see `claudewrap monitor`)")]
    wait_for(lambda: len(receiver.requests) == 1)
    body = receiver.requests[0][1]
    assert body["cost_usd"] == pytest.approx(0.012345) and body["unpriced_records"] == 1
    assert body["tokens"]["input"] == 510


@pytest.mark.parametrize("receiver", ["fail-first"], indirect=True)
def test_a_failed_post_is_retried_once(env: dict[str, str], tmp_path: Path,
                                       receiver: Receiver) -> None:
    configure(env, tmp_path, receiver.url, daily=0.01)
    done, _ = run(env, tmp_path)
    assert "budget reached" in done.stderr
    wait_for(lambda: len(receiver.requests) == 2)
    assert receiver.requests[0][1] == receiver.requests[1][1]


@pytest.mark.parametrize("receiver", ["slow"], indirect=True)
def test_a_slow_receiver_does_not_delay_the_run(env: dict[str, str], tmp_path: Path,
                                               receiver: Receiver) -> None:
    configure(env, tmp_path, receiver.url, daily=0.01)
    _, plain = run(dict(env, XDG_CONFIG_HOME=str(tmp_path / "none")), tmp_path)
    done, took = run(env, tmp_path)
    assert done.returncode == 4 and "budget reached" in done.stderr
    # Waiting for the receiver would cost at least WEBHOOK_TIMEOUT (it never answers in time).
    assert took < plain + budget.WEBHOOK_TIMEOUT * 0.8, (took, plain)
    wait_for(lambda: len(receiver.requests) == 1)  # it was sent, just not waited for


def test_a_receiver_that_is_down_changes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    configure(env, tmp_path, f"http://127.0.0.1:{port}/hook", daily=0.01)
    done, _ = run(env, tmp_path)
    assert done.returncode == 4
    assert done.stdout == (tmp_path / "result.json").read_text()
    assert len(done.stderr.splitlines()) == 1 and "budget reached" in done.stderr


def test_budget_config_errors_name_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[budget]\nmonthly_usd = -3\n")
    with pytest.raises(budget.BudgetError, match="budget.monthly_usd"):
        budget.load_config(config, env={})
    config.write_text("[budget.projects.web]\ndaily_usd = '2.50'\n[alerts]\nwebhook_url = 'x'\n")
    with pytest.raises(budget.BudgetError, match="webhook_url"):
        budget.load_config(config, env={})
    config.write_text("[budget]\ndaily_usd = 5\n[budget.projects.web]\ndaily_usd = '$2.50'\n")
    cfg = budget.load_config(config, env={budget.MONTH_ENV: "40"}, day=7)
    assert sorted((b.period, b.usd, b.project) for b in cfg.budgets) == [
        ("day", 2.5, "web"), ("day", 7.0, None), ("month", 40.0, None)]


# --- plan limits ---------------------------------------------------------------------------


def configure_limits(env: dict[str, str], tmp_path: Path, url: str) -> None:
    config = Path(env["XDG_CONFIG_HOME"]) / "claudewrap" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[alerts]\nwebhook_url = \"{url}\"\nrate_limit_percent = [80, 95]\n")
    (tmp_path / "result.json").write_text(json.dumps(P_JSON) + "\n")


def see(env: dict[str, str], five: float, resets: float) -> None:
    """A status-line input of a subscriber, recorded as `claudewrap statusline` does."""
    payload = {"rate_limits": {"five_hour": {"used_percentage": five, "resets_at": resets},
                               "seven_day": {"used_percentage": 10,
                                             "resets_at": time.time() + 86400}}}
    limits.record(Path(env["CLAUDEWRAP_JOURNAL"]),
                  limits.from_status_input(payload, ts=utc_now_iso(), host="laptop"))


def test_plan_limit_alerts_once_per_window_and_threshold(env: dict[str, str], tmp_path: Path,
                                                         receiver: Receiver) -> None:
    configure_limits(env, tmp_path, receiver.url)
    window = time.time() + 3600
    see(env, 70, window)
    assert run(env, tmp_path)[0].stderr == ""  # under 80%: nothing
    see(env, 85, window)
    done, _ = run(env, tmp_path)
    assert done.returncode == 4
    assert done.stderr.startswith("claudewrap: plan limit over 80%: 5-hour window: 85% used,")
    wait_for(lambda: len(receiver.requests) == 1)
    body = receiver.requests[0][1]
    assert body["event"] == "rate_limit_reached" and body["window"] == "five_hour"
    assert body["threshold_percent"] == 80 and body["used_percent"] == 85
    assert body["resets_at"] == window and body["host"] == "laptop" and body["session"]
    see(env, 96, window)
    assert "plan limit over 95%" in run(env, tmp_path)[0].stderr
    wait_for(lambda: len(receiver.requests) == 2)
    assert receiver.requests[1][1]["threshold_percent"] == 95
    # The same window again, even higher: both thresholds were alerted.
    see(env, 99, window)
    assert run(env, tmp_path)[0].stderr == ""
    time.sleep(0.5)
    assert len(receiver.requests) == 2
    # A new window (another resets_at) alerts again.
    see(env, 81, window + 5 * 3600)
    assert "plan limit over 80%" in run(env, tmp_path)[0].stderr
    wait_for(lambda: len(receiver.requests) == 3)
    assert receiver.requests[2][1]["resets_at"] == window + 5 * 3600


def test_the_status_line_checks_plan_limits_with_what_it_just_saw(
        env: dict[str, str], tmp_path: Path, receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """budget.check_rate_limits as `claudewrap statusline` calls it: the snapshots it
    recorded, no wrapped session; a jump over both thresholds alerts once."""
    configure_limits(env, tmp_path, receiver.url)
    monkeypatch.setenv("XDG_CONFIG_HOME", env["XDG_CONFIG_HOME"])
    journal = tmp_path / "journal.jsonl"
    payload = {"rate_limits": {"five_hour": {"used_percentage": 97,
                                             "resets_at": time.time() + 600}}}
    snaps = limits.from_status_input(payload, ts=utc_now_iso(), host="laptop")
    config = budget.load_config()
    notices = budget.check_rate_limits(journal, config, snaps, session="claude-1")
    assert len(notices) == 1 and notices[0].startswith("claudewrap: plan limit over 95%:")
    assert budget.check_rate_limits(journal, config, snaps, session="claude-1") == []
    wait_for(lambda: len(receiver.requests) == 1)
    time.sleep(0.5)
    assert len(receiver.requests) == 1
    assert receiver.requests[0][1]["threshold_percent"] == 95
    assert receiver.requests[0][1]["session"] == "claude-1"


def test_rate_limit_percent_must_be_percentages(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[alerts]\nrate_limit_percent = [80, 120]\n")
    with pytest.raises(budget.BudgetError, match="alerts.rate_limit_percent"):
        budget.load_config(config, env={})
    config.write_text("[alerts]\nrate_limit_percent = 90\n")
    assert budget.load_config(config, env={}).rate_limit_percent == (90.0,)
