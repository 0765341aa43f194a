"""What a person reads in `status` (both formats), `monitor` (--once and its plain
line), `cost` and the metrics' rates, parsed from the real CLI's output and compared
with `usage --json` / `cost --json` on the same journal: the `~` and `+?` markers,
unpriced models, budgets over unpriced usage, session ids that are not ASCII, and a
journal whose end is megabytes of garbage."""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import CW, cw
from prometheus_client.parser import text_string_to_metric_families

from claudewrap.store.journal import append_records
from claudewrap.store.records import UsageRecord

PRICED = "claude-sonnet-4-5"
UNPRICED = "mystery-model-9"  # no list price, no exact record to learn one from
MONEY = re.compile(r"(~?)\$([\d,]+\.\d+)(\+\?)?")
COUNT = r"[\d,.]+[kMG]?"


def ago(minutes: float) -> str:
    when = datetime.now(timezone.utc) - timedelta(minutes=minutes)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def rec(minutes_ago: float, session: str, *, kind: str = "delta", source: str = "pty",
        model: str = PRICED, **kw: Any) -> UsageRecord:
    kw.setdefault("project", "web")
    return UsageRecord(ts=ago(minutes_ago), session=session, source=source, kind=kind,
                       model=model, **kw)


@pytest.fixture
def venv(env: dict[str, str]) -> dict[str, str]:
    """``env`` in UTC, 100 columns, away from midnight (today must hold the last hour)."""
    now = datetime.now(timezone.utc)
    if now.hour == 0 and now.minute < 50:
        pytest.skip("too close to midnight for today's numbers")
    return dict(env, TZ="UTC", COLUMNS="100")


def journal(env: dict[str, str]) -> Path:
    return Path(env["CLAUDEWRAP_JOURNAL"])


def money(text: str) -> tuple[float, bool, bool]:
    """``~$1,234.50+?`` -> (1234.5, estimated, unpriced)."""
    m = MONEY.fullmatch(text)
    assert m, f"not an amount: {text!r}"
    return float(m[2].replace(",", "")), bool(m[1]), bool(m[3])


def short(text: str) -> float:
    """A count as display.short_count prints it: ``2,450``, ``21.5k``, ``4.5M``."""
    units = {"k": 1e3, "M": 1e6, "G": 1e9}
    if text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text.replace(",", ""))


def usage_json(env: dict[str, str], since: str) -> dict[str, Any]:
    done = cw(["usage", "--json", "--since", since], env)
    assert done.returncode == 0, done.stderr
    total: dict[str, Any] = json.loads(done.stdout)["total"]
    return total


def window_since(minutes: int = 10) -> str:
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def tokens(row: dict[str, Any]) -> int:
    return int(row["input_tokens"] + row["output_tokens"] + row["cache_read_tokens"]
               + row["cache_write_tokens"])


def markers(row: dict[str, Any]) -> tuple[bool, bool]:
    return row["cost_estimated_usd"] > 0, row["unpriced_records"] > 0


def run(env: dict[str, str], *args: str) -> str:
    done = cw(list(args), env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def monitor_line(env: dict[str, str]) -> str:
    """The first plain line `monitor` prints when stdout is not a terminal."""
    proc = subprocess.Popen([*CW, "monitor", "--interval", "60"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        return proc.stdout.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def metrics_rate(env: dict[str, str], window: str = "10m") -> float:
    text = run(env, "metrics", "--window", window)
    return sum(s.value for family in text_string_to_metric_families(text)
               for s in family.samples if s.name == "claude_tokens_per_minute")


def mixed_journal(env: dict[str, str]) -> None:
    """Today: a running total (printed cost) with its baseline before the window, a
    transcript request without a cost (estimated) and one of a model without a price."""
    append_records(journal(env), [
        rec(30, "run-1", kind="total", input_tokens=10_000, output_tokens=2_000,
            cost_usd=0.50),
        rec(5, "run-1", kind="total", input_tokens=30_000, output_tokens=4_000, cost_usd=0.90),
        rec(4, "tr-2", source="transcript", input_tokens=1_000, output_tokens=500),
        rec(3, "otel-3", source="otel", model=UNPRICED, input_tokens=700, output_tokens=300),
    ])


# ----------------------------------------------------------------- markers, unpriced


def test_status_shows_todays_cost_with_the_markers_usage_json_implies(
        venv: dict[str, str]) -> None:
    mixed_journal(venv)
    today = usage_json(venv, "today")
    window = usage_json(venv, window_since())
    assert markers(today) == (True, True)  # the journal is what the test says it is
    lines = run(venv, "status").splitlines()
    m = re.fullmatch(r"today: (\S+), ([\d,]+) tokens, (\d+) sessions", lines[0])
    assert m, lines
    assert money(m[1]) == (round(today["cost_usd"], 2), *markers(today))
    assert int(m[2].replace(",", "")) == tokens(today)
    assert int(m[3]) == today["sessions"]
    m = re.fullmatch(r"last 10 min: ([\d,]+) tokens/min", lines[1])
    assert m, lines
    assert int(m[1].replace(",", "")) == round(tokens(window) / 10) == 2_450
    m = re.fullmatch(rf"claude (\S+) ({COUNT}) tok/min", run(venv, "status", "--format", "tmux")
                     .rstrip("\n"))
    assert m
    assert money(m[1]) == (round(today["cost_usd"], 2), *markers(today))
    assert short(m[2]) == round(tokens(window) / 10)


def test_a_budget_over_unpriced_usage_says_its_spend_is_a_lower_bound(
        venv: dict[str, str]) -> None:
    mixed_journal(venv)
    today = usage_json(venv, "today")
    env = dict(venv, CLAUDEWRAP_BUDGET_DAY="2")
    lines = run(env, "status").splitlines()
    m = re.fullmatch(r"daily budget: (\S+) of \$2\.00 \((\d+)%(\+\?)?\)", lines[2])
    assert m, lines
    assert money(m[1]) == (round(today["cost_usd"], 2), True, True)
    assert int(m[2]) == round(today["cost_usd"] / 2 * 100) and m[3] == "+?"
    tmux = run(env, "status", "--format", "tmux")
    assert re.fullmatch(rf"claude \S+ {COUNT} tok/min day (\d+)%\+\?\n", tmux), tmux
    screen = run(env, "monitor", "--once")
    m = re.search(r"^today +(\S+) +(\d+)%\+\? of \$2\.00 budget", screen, re.MULTILINE)
    assert m, screen
    assert money(m[1]) == (round(today["cost_usd"], 2), True, True)
    assert int(m[2]) == round(today["cost_usd"] / 2 * 100)
    # What today is heading for rests on a lower bound too.
    assert re.search(r"^  at this rate ~\$[\d,.]+\+\? by midnight", screen, re.MULTILINE), screen
    line = monitor_line(env)
    assert re.search(r" today_budget=\d+%\+\? ", line), line


def test_monitor_once_and_its_plain_line_agree_with_usage_json(venv: dict[str, str]) -> None:
    mixed_journal(venv)
    today = usage_json(venv, "today")
    window = usage_json(venv, window_since())
    screen = run(venv, "monitor", "--once")
    m = re.search(rf"^today +(\S+) +({COUNT}) tok$", screen, re.MULTILINE)
    assert m, screen
    assert money(m[1]) == (round(today["cost_usd"], 2), *markers(today))
    assert short(m[2]) == pytest.approx(tokens(today), rel=0.005)
    m = re.search(rf"^last 10 min +({COUNT}) tok/min +(\S+)/h$", screen, re.MULTILINE)
    assert m, screen
    assert short(m[1]) == round(tokens(window) / 10)
    # $/h: the window's cost six times, marked as the window is (estimated, unpriced).
    assert money(m[2]) == (round(window["cost_usd"] * 6, 2), True, True)
    line = monitor_line(venv)
    fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
    assert money(fields["today"]) == (round(today["cost_usd"], 2), *markers(today))
    assert int(fields["today_tokens"]) == tokens(today)
    assert int(fields["tok/min"]) == round(tokens(window) / 10)
    assert money(fields["cost/h"]) == (round(window["cost_usd"] * 6, 2), True, True)


@pytest.mark.parametrize("session", ["run-1", "tr-2", "otel-3"])
def test_cost_line_matches_cost_json(venv: dict[str, str], session: str) -> None:
    mixed_journal(venv)
    data = json.loads(run(venv, "cost", "--session", session, "--json"))
    line = run(venv, "cost", "--session", session).rstrip("\n")
    m = re.fullmatch(rf"(\S+) ({COUNT}) in, ({COUNT}) out, ({COUNT}) cache read, ({COUNT}) "
                     rf"cache write \((.*); session (.*), project web\)", line)
    assert m, line
    amount, estimated, unpriced = money(m[1])
    assert amount == round(data["cost_usd"], 4)
    assert (estimated, unpriced) == markers(data)
    for text, key in zip(m.groups()[1:5], ("input_tokens", "output_tokens",
                                           "cache_read_tokens", "cache_write_tokens")):
        assert short(text) == pytest.approx(data[key], rel=0.005)
    assert m[6] == ", ".join(sorted(data["by_model"]))
    assert m[7] == session
    if session == "otel-3":  # a model without a price: never a plain $0
        assert (amount, unpriced) == (0, True) and m[1] == "$0.0000+?"


# ------------------------------------------------------------------- session ids


@pytest.mark.parametrize("session", ["sess-é", "会话-1", "run-🚀", 'quo"te', "back\\slash"])
def test_sessions_whose_ids_are_not_plain_ascii_are_found(venv: dict[str, str],
                                                           session: str) -> None:
    append_records(journal(venv), [
        rec(30, session, kind="total", input_tokens=1_000, output_tokens=100, cost_usd=0.10),
        # Other sessions between: the baseline is found by its id, not by being near.
        *(rec(20 - n, f"other-{n}", input_tokens=10, cost_usd=0.001) for n in range(10)),
        rec(4, session, kind="total", input_tokens=3_000, output_tokens=300, cost_usd=0.30),
    ])
    assert session.encode("utf-8") in journal(venv).read_bytes() or '"' in session \
        or "\\" in session  # written as UTF-8 (ensure_ascii=False), not as \u escapes
    data = json.loads(run(venv, "cost", "--session", session, "--json"))
    assert (data["session"], data["input_tokens"], data["records"]) == (session, 3_000, 2)
    line = run(venv, "cost", "--session", session)
    assert line == (f"$0.3000 3,000 in, 300 out, 0 cache read, 0 cache write "
                    f"({PRICED}; session {session}, project web)\n")
    # The window's rise from the baseline: (3,000 + 300) - (1,000 + 100) in 10 minutes.
    window = usage_json(venv, window_since())
    assert tokens(window) == 2_200
    assert run(venv, "status").splitlines()[1] == "last 10 min: 220 tokens/min"
    screen = run(venv, "monitor", "--once")
    assert re.search(r"^last 10 min +220 tok/min +\$1\.20/h$", screen, re.MULTILINE), screen
    assert metrics_rate(venv) == pytest.approx(220)


# ------------------------------------------------------------------ garbage tail


def rates(env: dict[str, str]) -> tuple[int, int, int, float]:
    """(usage --json over the window, status, monitor --once, metrics), tokens/min."""
    expected = round(tokens(usage_json(env, window_since())) / 10)
    status = run(env, "status").splitlines()[1]
    m = re.fullmatch(r"last 10 min: ([\d,]+) tokens/min", status)
    assert m, status
    screen = run(env, "monitor", "--once")
    n = re.search(rf"^last 10 min +({COUNT}) tok/min", screen, re.MULTILINE)
    assert n, screen
    return expected, int(m[1].replace(",", "")), int(short(n[1])), metrics_rate(env)


@pytest.mark.parametrize("garbage", ["random bytes", "one long line"])
def test_a_garbage_tail_leaves_the_rates_right_and_equal(venv: dict[str, str],
                                                         garbage: str) -> None:
    path = journal(venv)
    # A running total (its rise counts, from the level before the window) and requests
    # of another session; none near the window's start, which moves while the test runs.
    times = [40, 35, 30, 25, 20, 15, 7, 6, 5, 4, 3, 2]
    append_records(path, [rec(t, "run-1", kind="total", input_tokens=1_000 * k,
                              output_tokens=100 * k, cost_usd=0.01 * k)
                          for k, t in enumerate(times, 1)]
                   + [rec(t + 0.5, "otel-2", source="otel", input_tokens=50, cost_usd=0.001)
                      for t in times])
    before = rates(venv)
    assert before[0] > 0 and before[1:3] == before[:2] and before[3] == pytest.approx(before[0],
                                                                                      abs=0.5)
    noise = os.urandom(5 << 20)
    if garbage == "one long line":
        noise = noise.replace(b"\n", b"x")
    with open(path, "ab") as fh:
        fh.write(noise)
    after = rates(venv)
    assert after[0] > 0 and after[1] == after[2] == after[0]
    assert after[3] == pytest.approx(after[0], abs=0.5)
    # One more record after the garbage: its rise counts from the level before.
    append_records(path, [rec(0.1, "run-1", kind="total", input_tokens=25_000,
                              output_tokens=2_500, cost_usd=0.25)])
    last = rates(venv)
    assert last[1] == last[2] == last[0] > after[0]
    assert last[3] == pytest.approx(last[0], abs=0.5)
