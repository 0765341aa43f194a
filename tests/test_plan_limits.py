"""Plan limits everywhere (issue 15 item 3): the 5-hour and 7-day windows that Claude
Code's status line reports, as `status`, `status --format tmux`, `monitor --once`,
monitor's plain line and `metrics` show them (nothing without fresh data), and
`usage --by block` (ccusage's 5-hour blocks) against the reference summing rule."""

from __future__ import annotations

import calendar
import itertools
import json
import random
import subprocess
import time
from pathlib import Path

from conftest import CW, cw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from test_rule import journals

from claudewrap.plain import replace
from claudewrap.store.journal import append_records
from claudewrap.store.records import UsageRecord
from claudewrap.usage import limits
from claudewrap.usage.pricing import default_table
from claudewrap.usage.rule import effective_rows
from claudewrap.views.blocks import TimeState, blocks_of

HOUR = 3600.0


def record_limits(journal: Path, five: float, week: float, *, five_resets: float,
                  week_resets: float, ts: str = "2026-11-30T10:00:00.000Z",
                  host: str = "laptop") -> None:
    """What `claudewrap statusline` keeps for one status-line input of a subscriber."""
    payload = {"session_id": "s", "cost": {"total_cost_usd": 0.1},
               "rate_limits": {"five_hour": {"used_percentage": five, "resets_at": five_resets},
                               "seven_day": {"used_percentage": week,
                                             "resets_at": week_resets}}}
    assert limits.record(journal, limits.from_status_input(payload, ts=ts, host=host))


def utc_env(env: dict[str, str]) -> dict[str, str]:
    return dict(env, TZ="UTC")  # local times in the output: UTC, as the test computes them


def hhmm(when: float) -> str:
    return time.strftime("%H:%M", time.gmtime(when))


def shown(when: float, now: float) -> str:
    """A time within the next days as status shows it: ``15:40`` today, ``Tue 00:09``
    on another day (a 5-hour reset after midnight)."""
    same_day = time.gmtime(when)[:3] == time.gmtime(now)[:3]
    return hhmm(when) if same_day else time.strftime("%a %H:%M", time.gmtime(when))


def whole_minute_from_now(hours: float) -> float:
    """A time ``hours`` ahead, 30 s into its minute (a run of a few seconds never
    moves its HH:MM)."""
    return (time.time() + hours * HOUR) // 60 * 60 + 30


# --- status ------------------------------------------------------------------------------


def test_status_shows_each_fresh_window_its_reset_and_the_pace(env: dict[str, str]) -> None:
    env = utc_env(env)
    journal = Path(env["CLAUDEWRAP_JOURNAL"])
    five_resets = whole_minute_from_now(2)
    week_resets = whole_minute_from_now(3 * 24)
    started = time.time()
    # 3 of 5 hours gone and 75% used: 25% an hour, so 100% about an hour from now,
    # before the reset; the week (17% in 4 days) will not fill before it resets.
    record_limits(journal, 75, 17, five_resets=five_resets, week_resets=week_resets)
    done = cw(["status"], env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    windows = [line for line in lines if "window" in line]
    assert len(windows) == 2
    full = {shown(at + (1 - 0.75) * (5 * HOUR - (five_resets - at)) / 0.75, at)
            for at in (started, time.time())}  # the pace is read when status runs
    assert windows[0] in {f"5-hour window: 75% used, resets {shown(five_resets, at)}"
                          f" (at this pace 100% at {f})" for f in full
                          for at in (started, time.time())}
    day = time.strftime("%a", time.gmtime(week_resets))
    assert windows[1] == f"7-day window: 17% used, resets {day} {hhmm(week_resets)}"
    assert lines.index(windows[0]) > 1  # after today's cost and the rate


def test_tmux_segment_shows_both_windows_without_a_hash(env: dict[str, str]) -> None:
    journal = Path(env["CLAUDEWRAP_JOURNAL"])
    record_limits(journal, 62.4, 17, five_resets=time.time() + HOUR,
                  week_resets=time.time() + 86400)
    done = cw(["status", "--format", "tmux"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "claude $0.00 0 tok/min 5h 62% 7d 17%\n"
    assert "#" not in done.stdout


def test_without_fresh_data_no_window_is_shown(env: dict[str, str]) -> None:
    journal = Path(env["CLAUDEWRAP_JOURNAL"])
    plain = cw(["status"], env).stdout
    tmux = cw(["status", "--format", "tmux"], env).stdout
    assert "window" not in plain and tmux == "claude $0.00 0 tok/min\n"
    # Both windows have reset since they were seen: stale, not shown (not guessed).
    record_limits(journal, 90, 40, five_resets=time.time() - 60, week_resets=time.time() - 1)
    assert cw(["status"], env).stdout == plain
    assert cw(["status", "--format", "tmux"], env).stdout == tmux
    # Another window of the same file stays fresh: only it shows.
    record_limits(journal, 90, 40, five_resets=time.time() - 60,
                  week_resets=time.time() + 86400)
    assert cw(["status", "--format", "tmux"], env).stdout == "claude $0.00 0 tok/min 7d 40%\n"


# --- monitor -----------------------------------------------------------------------------

NOW = "2026-11-30T12:00:00Z"
NOW_S = float(calendar.timegm((2026, 11, 30, 12, 0, 0)))


def test_monitor_once_has_a_line_per_window(env: dict[str, str]) -> None:
    env = dict(utc_env(env), COLUMNS="100")
    journal = Path(env["CLAUDEWRAP_JOURNAL"])
    # 4 of 5 hours gone, 40% used: 10% an hour, 100% in 6 h, after the reset (no pace).
    record_limits(journal, 40, 80, five_resets=NOW_S + HOUR, week_resets=NOW_S + 2 * 86400,
                  ts="2026-11-30T11:59:00.000Z")
    done = cw(["monitor", "--once", "--now", NOW], env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "5-hour window: 40% used, resets 13:00" in lines
    # 80% of the week in 5 days: 16% a day, 100% in 1.25 days, before the reset in 2.
    assert "7-day window: 80% used, resets Wed 12:00 (at this pace 100% at Tue 18:00)" in lines
    narrow = cw(["monitor", "--once", "--now", NOW], dict(env, COLUMNS="40")).stdout
    assert "5-hour window: 40% used, resets 13:00" in narrow.splitlines()
    assert "7d 80% used, resets Wed 12:00" in narrow.splitlines()  # the pace left out
    assert all(len(line) <= 40 for line in narrow.splitlines())


def test_monitor_without_fresh_data_has_no_window_line(env: dict[str, str]) -> None:
    env = utc_env(env)
    record_limits(Path(env["CLAUDEWRAP_JOURNAL"]), 40, 80, five_resets=NOW_S - 1,
                  week_resets=NOW_S - 1)
    done = cw(["monitor", "--once", "--now", NOW], env)
    assert done.returncode == 0 and "window" not in done.stdout and "5h" not in done.stdout


def test_monitor_plain_line_has_the_windows(env: dict[str, str]) -> None:
    env = utc_env(env)
    record_limits(Path(env["CLAUDEWRAP_JOURNAL"]), 75, 17, five_resets=NOW_S + 2 * HOUR,
                  week_resets=NOW_S + 3 * 86400)
    # stdout is a pipe: monitor prints a plain line, then one per change.
    proc = subprocess.Popen([*CW, "monitor", "--now", NOW, "--interval", "60"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
    finally:
        proc.kill()
        proc.wait(10)
    assert line.endswith(" 5h=75% 5h_resets=14:00 5h_full=13:00 7d=17% 7d_resets=Thu_12:00\n"), line


# --- metrics -----------------------------------------------------------------------------


def gauges(text: str) -> dict[tuple[str, str, str], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("claude_rate_limit"):
                out[(s.name, s.labels["window"], s.labels["host"])] = s.value
    return out


def test_metrics_export_the_fresh_windows_only(env: dict[str, str]) -> None:
    journal = Path(env["CLAUDEWRAP_JOURNAL"])
    assert gauges(cw(["metrics"], env).stdout) == {}
    five, week = time.time() + 2 * HOUR, time.time() + 3 * 86400
    record_limits(journal, 62, 17, five_resets=five, week_resets=week)
    done = cw(["metrics"], env)
    assert done.returncode == 0, done.stderr
    assert "# TYPE claude_rate_limit_used_ratio gauge" in done.stdout
    assert gauges(done.stdout) == {
        ("claude_rate_limit_used_ratio", "five_hour", "laptop"): 0.62,
        ("claude_rate_limit_used_ratio", "seven_day", "laptop"): 0.17,
        ("claude_rate_limit_resets_timestamp_seconds", "five_hour", "laptop"): five,
        ("claude_rate_limit_resets_timestamp_seconds", "seven_day", "laptop"): week}
    # The 5-hour window resets: its series goes; the week's stays.
    record_limits(journal, 10, 17, five_resets=time.time() - 1, week_resets=week)
    assert set(gauges(cw(["metrics"], env).stdout)) == {
        ("claude_rate_limit_used_ratio", "seven_day", "laptop"),
        ("claude_rate_limit_resets_timestamp_seconds", "seven_day", "laptop")}


# --- usage --by block --------------------------------------------------------------------


def ccusage_blocks(times: list[float]) -> dict[float, float]:
    """ccusage's identifySessionBlocks, on Unix times: time -> its block's start."""
    out: dict[float, float] = {}
    start = last = None
    for t in sorted(times):
        if start is None or last is None or t - start > 5 * HOUR or t - last > 5 * HOUR:
            start = t - t % HOUR
        out[t] = start
        last = t
    return out


def unix(ts: str) -> float:
    return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + int(ts[20:23]) / 1000


def reference_blocks(records: list[UsageRecord]) -> dict[float, list[float]]:
    """Block start -> [records, input, output, cache read, cache write, printed cost],
    from the reference rule's rows at each record's time."""
    rows = effective_rows(records, lambda ts: ts)
    starts = ccusage_blocks([unix(key[2]) for key in rows])
    out: dict[float, list[float]] = {}
    for key, v in rows.items():
        acc = out.setdefault(starts[unix(key[2])], [0, 0, 0, 0, 0, 0.0])
        for j in range(5):
            acc[j] += v[j]
        acc[5] += v[5] if key[4] else 0.0
    return out


def spread(records: list[UsageRecord], seed: int) -> list[UsageRecord]:
    """The same records over days: gaps from a millisecond to 7 hours (blocks end by
    their length and by gaps), times to the millisecond, near the 5-hour edges too."""
    rnd = random.Random(seed)
    at = unix("2026-11-30T09:59:58.000Z")
    out = []
    for r in records:
        at += rnd.choice([0.001, 0.5, 60, 1800, 3 * HOUR, 5 * HOUR, 5 * HOUR + 0.001, 7 * HOUR,
                          rnd.uniform(0, 6 * HOUR)])
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z"
        out.append(replace(r, ts=ts))
    return out


def same_blocks(fast: dict[float, list[float]], ref: dict[float, list[float]]) -> bool:
    return fast.keys() == ref.keys() and all(
        fast[k][:5] == ref[k][:5] and abs(fast[k][5] - ref[k][5]) < 1e-6 for k in ref)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(journals(), st.integers(0, 2**32))
def test_blocks_count_what_the_reference_rule_counts(records: list[UsageRecord],
                                                     seed: int) -> None:
    records = spread(records, seed)
    state = TimeState()
    state.add_records(records)
    result = blocks_of(state, table=default_table())
    fast = {b.start.timestamp(): [b.row.records, b.row.input_tokens, b.row.output_tokens,
                                  b.row.cache_read_tokens, b.row.cache_write_tokens,
                                  b.row.cost_usd - b.row.cost_estimated_usd]
            for b in result.blocks}
    assert same_blocks(fast, reference_blocks(records))


def test_usage_by_block_starts_a_block_at_the_first_request_after_one_ends(
        env: dict[str, str]) -> None:
    env = utc_env(env)
    journal = Path(env["CLAUDEWRAP_JOURNAL"])

    def req(ts: str, n: int, session: str = "a") -> UsageRecord:
        return UsageRecord(ts=ts, session=session, source="otel", model="claude-sonnet-4-5",
                           input_tokens=n, cost_usd=n / 1000, request_id=f"r-{ts}")

    append_records(journal, [
        req("2026-11-30T10:55:30.000Z", 1),  # the block starts at 10:00 (floored)
        req("2026-11-30T15:00:00.000Z", 2, "b"),  # exactly 5 h after: still in it
        req("2026-11-30T15:00:00.001Z", 4),  # after: the next block, from 15:00
        req("2026-11-30T21:30:00.000Z", 8),  # after a gap: from 21:00
        req("2026-11-30T21:45:00.000Z", 16),
    ])
    done = cw(["usage", "--by", "block", "--json"], env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    got = {k: (v["input_tokens"], v["records"], v["sessions"]) for k, v in data["by_block"].items()}
    assert got == {"2026-11-30T10:00:00Z": (3, 2, 2), "2026-11-30T15:00:00Z": (4, 1, 1),
                   "2026-11-30T21:00:00Z": (24, 2, 1)}
    assert data["total"]["input_tokens"] == 31 and abs(data["total"]["cost_usd"] - 0.031) < 1e-9
    text = cw(["usage", "--by", "block"], env).stdout.splitlines()
    assert [line.split()[:3] for line in text[1:4]] == [
        ["2026-11-30", "10:00", "3"], ["2026-11-30", "15:00", "4"], ["2026-11-30", "21:00", "24"]]
    assert text[0].split()[0] == "block" and text[4].split()[:2] == ["total", "31"]
    csv = cw(["usage", "--by", "block", "--csv"], env).stdout.splitlines()
    assert csv[1].startswith("2026-11-30T10:00:00Z,3,0,0,0,0.003,")
    # --since applies before the blocks are made: the 15:00 request opens its own.
    since = cw(["usage", "--by", "block", "--json", "--since", "2026-11-30T15:00:00.001Z"], env)
    assert list(json.loads(since.stdout)["by_block"]) == ["2026-11-30T15:00:00Z",
                                                          "2026-11-30T21:00:00Z"]


_JOURNALS = itertools.count()


@settings(max_examples=3, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(journals(), st.integers(0, 2**32)), min_size=5, max_size=5))
def test_usage_by_block_of_a_journal_file_is_the_reference(
        env: dict[str, str], tmp_path: Path, parts: list[tuple[list[UsageRecord], int]]) -> None:
    records = sorted((r for batch, seed in parts for r in spread(batch, seed)),
                     key=lambda r: r.ts)  # journals are roughly in time order
    journal = tmp_path / f"journal-{next(_JOURNALS)}.jsonl"  # one per example
    append_records(journal, records)
    done = cw(["usage", "--by", "block", "--json", "--journal", str(journal)], env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    fast = {unix(k[:19] + ".000Z"): [v["records"], v["input_tokens"], v["output_tokens"],
                                     v["cache_read_tokens"], v["cache_write_tokens"],
                                     v["cost_usd"] - v["cost_estimated_usd"]]
            for k, v in data["by_block"].items()}
    ref = reference_blocks(records)
    assert fast.keys() == ref.keys()
    for k in ref:  # JSON rounds costs to 6 places
        assert fast[k][:5] == ref[k][:5] and abs(fast[k][5] - ref[k][5]) < 1e-5, k


def test_usage_by_block_cannot_be_combined(env: dict[str, str]) -> None:
    done = cw(["usage", "--by", "block", "--by", "model"], env)
    assert done.returncode == 2
    assert "use --by block alone" in done.stderr and "Traceback" not in done.stderr


def test_usage_by_block_of_no_usage_says_so(env: dict[str, str]) -> None:
    done = cw(["usage", "--by", "block"], env)
    assert done.returncode == 0 and done.stdout.startswith("No usage recorded yet")
