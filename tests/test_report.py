"""Summing rules, breakdowns and the rollup, on hand-built journals written as real JSONL."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from claudewrap.store.records import UsageRecord
from claudewrap.usage import rollup
from claudewrap.usage.filters import Filters
from claudewrap.usage.pricing import Price, PriceTable, load_table
from claudewrap.usage.report import Report, effective_records, make_report, report_json, summarize
from claudewrap.usage.state import UsageState

UTC = timezone.utc
SONNET = "claude-sonnet-4-5"


@pytest.fixture(autouse=True)
def no_user_prices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDEWRAP_PRICES", str(tmp_path / "absent.toml"))


def rec(ts: str, session: str = "s1", source: str = "pty", kind: str = "delta",
        model: str | None = SONNET, i: int = 0, o: int = 0, cr: int = 0, cw: int = 0,
        cost: float | None = None, **kw: Any) -> UsageRecord:
    return UsageRecord(ts=ts, session=session, source=source, kind=kind, model=model,
                       input_tokens=i, output_tokens=o, cache_read_tokens=cr,
                       cache_write_tokens=cw, cost_usd=cost, **kw)


def write(path: Path, items: Iterable[UsageRecord | str], mode: str = "w") -> Path:
    with open(path, mode, encoding="utf-8") as f:
        f.writelines((item if isinstance(item, str) else item.to_json()) + "\n"
                     for item in items)
    return path


def report(path: Path, *, tz: Any = UTC, dims: Iterable[tuple[str, ...]] = (),
           filters: Filters | None = None, use_cache: bool = True,
           since: str | None = None, until: str | None = None) -> Report:
    state = rollup.load_state(path, use_cache=use_cache, tz=tz, since=since, until=until)
    return make_report(state, dims=dims, filters=filters, today=date(2026, 7, 2))


def tokens(row: Any) -> tuple[int, int, int, int]:
    return (row.input_tokens, row.output_tokens, row.cache_read_tokens, row.cache_write_tokens)


# --- rule 3: within a session, totals replace deltas ---------------------------------------


def test_deltas_add_up(tmp_path: Path) -> None:
    j = write(tmp_path / "j.jsonl", [
        rec("2026-07-01T10:00:00.000Z", i=100, o=10, cr=1000, cw=50, cost=0.10),
        rec("2026-07-01T10:05:00.000Z", i=200, o=20, cost=0.20),
        rec("2026-07-01T11:00:00.000Z", session="s2", i=1, o=2, cr=3, cw=4, cost=0.01),
    ])
    r = report(j)
    assert tokens(r.total) == (301, 32, 1003, 54)
    assert r.total.cost_usd == pytest.approx(0.31)
    assert r.total.cost_estimated_usd == 0
    assert (r.total.records, r.total.sessions) == (3, 2)


def test_the_newest_total_replaces_the_deltas_of_its_session(tmp_path: Path) -> None:
    j = write(tmp_path / "j.jsonl", [
        rec("2026-07-01T10:00:00.000Z", i=100, o=10),
        rec("2026-07-01T10:01:00.000Z", kind="total", i=1200, o=500, cr=9000, cw=300,
            cost=0.55, approximate=True),
        rec("2026-07-01T10:02:00.000Z", i=100, o=10),
        rec("2026-07-01T10:03:00.000Z", kind="total", i=1500, o=600, cr=9900, cw=300,
            cost=0.60, approximate=True),
        rec("2026-07-01T10:00:00.000Z", session="other", i=7),  # another session: deltas
    ])
    r = report(j)
    assert tokens(r.total) == (1507, 600, 9900, 300)
    assert r.total.cost_usd == pytest.approx(0.60 + 7 * 3 / 1e6)


def test_redrawn_cost_block_counts_once(tmp_path: Path) -> None:
    block = rec("2026-07-01T10:01:00.000Z", kind="total", i=1200, o=567, cr=8900, cw=2300,
                cost=0.0298, approximate=True)
    j = write(tmp_path / "j.jsonl", [block] * 5)
    r = report(j)
    assert tokens(r.total) == (1200, 567, 8900, 2300)
    assert r.total.cost_usd == pytest.approx(0.0298)
    assert r.total.records == 1


def test_an_older_block_redrawn_after_a_newer_one_does_not_count_again(tmp_path: Path) -> None:
    old = rec("2026-07-01T10:01:00.000Z", kind="total", i=100, o=10, cost=0.01)
    new = rec("2026-07-01T10:02:00.000Z", kind="total", i=300, o=30, cost=0.03)
    j = write(tmp_path / "j.jsonl", [old, new, old, new])
    assert tokens(report(j).total) == (300, 30, 0, 0)
    assert report(j).total.cost_usd == pytest.approx(0.03)


def test_totals_of_each_model_count_separately(tmp_path: Path) -> None:
    j = write(tmp_path / "j.jsonl", [
        rec("2026-07-01T10:00:00.000Z", kind="total", model="claude-3-5-haiku", i=236100,
            o=11600),
        rec("2026-07-01T10:00:00.000Z", kind="total", model="claude-3-7-sonnet", i=1400,
            o=169900, cr=31_500_000, cw=2_000_000),
        rec("2026-07-01T10:05:00.000Z", kind="total", model="claude-3-5-haiku", i=236100,
            o=11600),
    ])
    r = report(j, dims=[("model",)])
    by_model = r.groups[("model",)]
    assert tokens(by_model[("claude-3-5-haiku",)]) == (236100, 11600, 0, 0)
    assert tokens(by_model[("claude-3-7-sonnet",)]) == (1400, 169900, 31_500_000, 2_000_000)
    est = 236100 * 0.8 / 1e6 + 11600 * 4 / 1e6
    assert by_model[("claude-3-5-haiku",)].cost_estimated_usd == pytest.approx(est)


def test_a_session_across_midnight_is_split_by_local_day(tmp_path: Path) -> None:
    # 23:30 and 00:30 in Paris (UTC+2 in July) are 21:30 and 22:30 UTC, one UTC day.
    j = write(tmp_path / "j.jsonl", [
        rec("2026-07-01T21:30:00.000Z", kind="total", i=100, o=10),
        rec("2026-07-01T22:30:00.000Z", kind="total", i=250, o=40),
        rec("2026-07-01T21:45:00.000Z", session="d", i=5),
        rec("2026-07-01T22:15:00.000Z", session="d", i=6),
    ])
    paris = report(j, tz=ZoneInfo("Europe/Paris"), dims=[("day",)]).groups[("day",)]
    assert tokens(paris[("2026-07-01",)]) == (105, 10, 0, 0)
    assert tokens(paris[("2026-07-02",)]) == (156, 30, 0, 0)
    utc = report(j, tz=UTC, dims=[("day",)]).groups[("day",)]
    assert list(utc) == [("2026-07-01",)]
    assert tokens(utc[("2026-07-01",)]) == (261, 40, 0, 0)


def test_week_and_month_follow_local_days(tmp_path: Path) -> None:
    # 2026-06-30T23:30 in New York is 2026-07-01T03:30 UTC: June there, July in UTC.
    j = write(tmp_path / "j.jsonl", [rec("2026-07-01T03:30:00.000Z", i=9)])
    ny = report(j, tz=ZoneInfo("America/New_York"), dims=[("month",), ("week",)])
    assert list(ny.groups[("month",)]) == [("2026-06",)]
    assert list(ny.groups[("week",)]) == [("2026-W27",)]
    assert list(report(j, dims=[("month",)]).groups[("month",)]) == [("2026-07",)]


# --- rules 1 and 2: across sources -------------------------------------------------------


def test_the_same_request_from_two_sources_counts_once(tmp_path: Path) -> None:
    common: dict[str, Any] = {"i": 10, "o": 135, "cr": 22820, "cw": 9907,
                              "request_id": "req_1", "claude_session": "c1"}
    j = write(tmp_path / "j.jsonl", [
        rec("2026-07-01T10:00:00.000Z", session="c1", source="otel", cost=0.05, **common),
        rec("2026-07-01T10:00:01.000Z", session="c1", source="transcript", **common),
        rec("2026-07-01T10:00:02.000Z", session="c1", source="transcript", **common),
    ])
    r = report(j, dims=[("source",)])
    assert tokens(r.total) == (10, 135, 22820, 9907)
    assert list(r.groups[("source",)]) == [("otel",)]
    assert r.total.cost_usd == pytest.approx(0.05)


def test_a_better_source_that_comes_later_replaces_the_request(tmp_path: Path) -> None:
    j = write(tmp_path / "j.jsonl", [
        rec("2026-07-01T10:00:00.000Z", source="scan", i=1000, request_id="req_9"),
        rec("2026-07-01T10:00:00.000Z", source="pty", i=7, request_id="req_8"),
        rec("2026-07-01T10:00:05.000Z", session="t", source="transcript", i=1234,
            request_id="req_9"),
    ])
    for use_cache in (False, True, True):
        r = report(j, dims=[("source",)], use_cache=use_cache)
        assert r.total.input_tokens == 1241
        assert r.groups[("source",)][("transcript",)].input_tokens == 1234
        assert ("scan",) not in r.groups[("source",)]


def test_replacement_across_an_incremental_read(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rollup, "_REWRITE", 0)
    j = write(tmp_path / "j.jsonl", [
        rec("2026-07-01T10:00:00.000Z", source="pty", i=100, request_id="r1"),
        rec("2026-07-01T10:00:00.000Z", source="pty", i=5, request_id="r2")])
    assert report(j).total.input_tokens == 105
    write(j, [rec("2026-07-01T10:00:01.000Z", session="o", source="otel", i=101,
                  request_id="r1"),
              rec("2026-07-01T10:00:01.000Z", session="o", source="manual", i=99,
                  request_id="r2")], "a")
    assert report(j).total.input_tokens == 106
    assert report(j, use_cache=False).total.input_tokens == 106


def test_rounded_totals_give_way_to_exact_totals_of_the_same_claude_session(
        tmp_path: Path) -> None:
    j = write(tmp_path / "j.jsonl", [
        rec("2026-07-01T10:00:00.000Z", session="w1", kind="total", i=1200, o=5300,
            cost=0.55, approximate=True, claude_session="c1"),
        rec("2026-07-01T10:09:00.000Z", session="c1", source="transcript", kind="total",
            i=1187, o=5312, cost=0.5512, claude_session="c1"),
        # a rounded total of another Claude session stays
        rec("2026-07-01T10:00:00.000Z", session="w2", kind="total", i=50, cost=0.01,
            approximate=True, claude_session="c2"),
    ])
    r = report(j)
    assert tokens(r.total) == (1187 + 50, 5312, 0, 0)
    assert r.total.cost_usd == pytest.approx(0.5612)


def test_exact_and_rounded_totals_in_one_wrapped_session(tmp_path: Path) -> None:
    j = write(tmp_path / "j.jsonl", [
        rec("2026-07-01T10:00:00.000Z", kind="total", i=1200, cost=0.5, approximate=True),
        rec("2026-07-01T10:01:00.000Z", kind="total", i=1187, cost=0.49),
    ])
    assert report(j).total.input_tokens == 1187


def test_effective_records_show_what_counts() -> None:
    eff = effective_records([
        rec("2026-07-01T10:00:00.000Z", i=1),
        rec("2026-07-01T10:01:00.000Z", kind="total", i=50),
        rec("2026-07-01T10:02:00.000Z", kind="total", i=50),
    ], tz=UTC)
    assert [(e.session, e.kind, e.input_tokens, e.ts) for e in eff] == [
        ("s1", "delta", 50, "2026-07-01")]


# --- costs -----------------------------------------------------------------------------------


def test_unknown_models_are_unpriced_not_free(tmp_path: Path) -> None:
    j = write(tmp_path / "j.jsonl", [
        rec("2026-07-01T10:00:00.000Z", model="claude-opus-9", i=1000, o=100),
        rec("2026-07-01T10:00:00.000Z", model=None, i=5),
        rec("2026-07-01T10:00:00.000Z", model="claude-opus-9", i=1000, cost=0.25),
        rec("2026-07-01T10:00:00.000Z", i=1_000_000),
    ])
    r = report(j, dims=[("model",)])
    assert r.total.unpriced_records == 2
    assert r.total.cost_usd == pytest.approx(0.25 + 3.0)
    assert r.total.cost_estimated_usd == pytest.approx(3.0)
    assert r.groups[("model",)][("unknown",)].unpriced_records == 1


def test_estimates_follow_the_current_price_table(tmp_path: Path) -> None:
    j = write(tmp_path / "j.jsonl", [rec("2026-07-01T10:00:00.000Z", i=1_000_000)])
    report(j)  # builds the rollup
    cheap = load_table(tmp_path / "none.toml")
    cheap.prices[SONNET] = Price(model=SONNET, input=1.0)
    state = rollup.load_state(j, tz=UTC)
    r = make_report(state, table=PriceTable(cheap.prices))
    assert r.total.cost_usd == pytest.approx(1.0)


# --- reading the journal ---------------------------------------------------------------------


def test_corrupt_lines_are_skipped_and_counted_with_their_line_numbers(tmp_path: Path) -> None:
    j = write(tmp_path / "j.jsonl", [
        rec("2026-07-01T10:00:00.000Z", i=1),
        '{"ts":"2026-07-01T10:00:00.000Z","session":',  # torn
        "",  # blank lines do not count as bad
        rec("2026-07-01T10:00:00.000Z", i=2),
        "[1, 2, 3]",
        '{"ts": "2026-07-01T10:00:00.000Z"}',  # no session
        '{"ts":"2026-07-01T10:00:00.000Z","session":"s1","input_tokens":"many"}',
        "\xff\xfe not json",
        rec("2026-07-01T10:00:00.000Z", i=4),
    ])
    with open(j, "a") as f:
        f.write('{"ts":"2026-07-01T10:00:00.000Z","session":"s1","input_tokens":99')  # no \n
    for use_cache in (False, True, True):
        r = report(j, use_cache=use_cache)
        assert r.total.input_tokens == 7
        assert r.skipped_lines == 5
        assert r.first_bad_lines == [2, 5, 6, 7, 8]


def test_a_bad_line_in_a_big_block_costs_only_its_piece(tmp_path: Path) -> None:
    """Blocks of many 64 KiB pieces with bad and blank lines among good ones:
    the same totals, counts and line numbers as a reading line by line."""
    items: list[UsageRecord | str] = [rec("2026-07-01T10:00:00.000Z", session=f"s{n % 7}", i=n)
                                      for n in range(3000)]
    for at, bad in ((5, "{torn"), (1400, ""), (1401, "[]"), (2999, '{"ts": 1}')):
        items.insert(at, bad)
    j = write(tmp_path / "j.jsonl", items)
    assert j.stat().st_size > 4 * (64 << 10)
    state = UsageState(UTC)
    state.feed_block(j.read_bytes(), 0)
    want = sum(range(3000))
    assert make_report(state).total.input_tokens == want
    assert (state.stats.lines, state.stats.good, state.stats.skipped) == (3004, 3000, 3)
    assert state.stats.first_bad_lines == [6, 1402, 3000]
    r = report(j, use_cache=False)
    assert r.total.input_tokens == want and r.first_bad_lines == [6, 1402, 3000]


def test_unusual_but_valid_lines_are_read_like_records_py_reads_them(tmp_path: Path) -> None:
    j = write(tmp_path / "j.jsonl", [
        ('{"ts":"2026-07-01T12:00:00+02:00","session":"s1","input_tokens":10.0,'
         '"model":"claude-sonnet-4-5","kind":"weird","tags":{"n":1},"extra":true}'),
        '{"ts":"2026-07-01T10:00:00Z","session":"s1","output_tokens":5}',
        '{"ts":"yesterday","session":"s1","output_tokens":5}',
    ])
    r = report(j, dims=[("day",), ("tag:n",)])
    assert tokens(r.total) == (10, 5, 0, 0)
    assert set(r.groups[("tag:n",)]) == {("(none)",), ("1",)}
    assert r.skipped_lines == 1  # a time that cannot be placed


def test_a_missing_journal_is_empty(tmp_path: Path) -> None:
    r = report(tmp_path / "nothing.jsonl")
    assert r.total.records == 0 and r.skipped_lines == 0


# --- breakdowns and filters --------------------------------------------------------------------


def _attributed(tmp_path: Path) -> Path:
    return write(tmp_path / "j.jsonl", [
        rec("2026-07-01T10:00:00.000Z", session="a", model="claude-opus-4-8", i=10,
            project="web", host="box", tmux_pane="%1", tags={"agent": "coordinator"}),
        rec("2026-07-01T11:00:00.000Z", session="b", model="claude-sonnet-4-6", i=20,
            project="api", host="box", screen_session="123.pts-0:2"),
        rec("2026-06-28T11:00:00.000Z", session="c", model="claude-sonnet-4-6", i=40,
            project="web", host="ci", tags={"agent": "worker", "pipeline": "ci"}),
    ])


def test_breakdowns_by_every_dimension(tmp_path: Path) -> None:
    j = _attributed(tmp_path)
    dims = [("model",), ("day",), ("week",), ("month",), ("project",), ("session",),
            ("pane",), ("host",), ("source",), ("tag:agent",), ("project", "model")]
    g = report(j, dims=dims).groups
    assert {k: v.input_tokens for k, v in g[("project",)].items()} == {
        ("web",): 50, ("api",): 20}
    assert {k: v.input_tokens for k, v in g[("pane",)].items()} == {
        ("%1",): 10, ("123.pts-0:2",): 20, ("(none)",): 40}
    assert {k: v.input_tokens for k, v in g[("tag:agent",)].items()} == {
        ("coordinator",): 10, ("(none)",): 20, ("worker",): 40}
    assert {k: v.input_tokens for k, v in g[("week",)].items()} == {
        ("2026-W27",): 30, ("2026-W26",): 40}
    assert g[("project", "model")][("web", "claude-sonnet-4-6")].input_tokens == 40
    assert g[("host",)][("box",)].sessions == 2


def test_filters(tmp_path: Path) -> None:
    j = _attributed(tmp_path)
    assert report(j, filters=Filters(projects=("web",))).total.input_tokens == 50
    assert report(j, filters=Filters(models=("SONNET",))).total.input_tokens == 60
    assert report(j, filters=Filters(tags=(("agent", "worker"),))).total.input_tokens == 40
    assert report(j, filters=Filters(tags=(("agent", "worker"), ("pipeline", "x")))
                  ).total.input_tokens == 0
    assert report(j, filters=Filters(since_day="2026-07-01")).total.input_tokens == 30
    assert report(j, filters=Filters(until_day="2026-07-01")).total.input_tokens == 40


def test_periods_today_week_month(tmp_path: Path) -> None:
    j = write(tmp_path / "j.jsonl", [
        rec("2026-07-02T01:00:00.000Z", i=1),  # today (2026-07-02, a Thursday)
        rec("2026-06-29T01:00:00.000Z", i=10),  # Monday: this week, last month
        rec("2026-07-01T01:00:00.000Z", i=100),  # this week and month
        rec("2025-12-01T01:00:00.000Z", i=1000),
    ])
    p = report(j).periods
    assert [p[k].input_tokens for k in ("today", "this week", "this month", "all time")] == [
        1, 111, 101, 1111]


def test_a_window_counts_only_what_a_session_used_inside_it(tmp_path: Path) -> None:
    j = write(tmp_path / "j.jsonl", [
        rec("2026-07-01T10:00:00.000Z", kind="total", i=100),
        rec("2026-07-01T12:00:00.000Z", kind="total", i=160),
        rec("2026-07-01T14:00:00.000Z", kind="total", i=200),
        rec("2026-07-01T11:00:00.000Z", session="d", i=5),
        rec("2026-07-01T13:00:00.000Z", session="d", i=6),
    ])
    r = report(j, since="2026-07-01T11:00:00.000Z", until="2026-07-01T13:00:00.000Z")
    assert r.total.input_tokens == 60 + 5
    assert not list(tmp_path.glob("*.rollup"))  # windows leave the cache alone


def test_summarize_in_memory_equals_the_journal(tmp_path: Path) -> None:
    records = [rec("2026-07-01T10:00:00.000Z", i=1, request_id="x"),
               rec("2026-07-01T10:00:00.000Z", source="otel", i=2, request_id="x"),
               rec("2026-07-01T10:01:00.000Z", session="t", kind="total", i=7)]
    j = write(tmp_path / "j.jsonl", records)
    mem = summarize(records, tz=UTC, dims=[("session",)], today=date(2026, 7, 2))
    disk = report(j, dims=[("session",)])
    assert report_json(mem) == report_json(disk)
    assert mem.total.input_tokens == 9


# --- the rollup ------------------------------------------------------------------------------


def _journal_for_rollup(path: Path, n: int, start: int = 0, mode: str = "w",
                        day: str = "2026-07-01") -> Path:
    items = []
    for k in range(start, start + n):
        items.append(rec(f"{day}T{10 + k % 10:02d}:00:00.000Z", session=f"s{k % 7}",
                         i=k, o=1, request_id=f"r{k}" if k % 3 == 0 else None))
        if k % 5 == 0:
            items.append(rec(f"{day}T10:00:00.000Z", session=f"t{k % 4}", kind="total",
                             i=k * 10, approximate=True))
    return write(path, items, mode)


def _saved_state(journal: Path) -> UsageState:
    fd = os.open(journal, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        cached = rollup.read_cache(rollup.cache_path(journal), rollup.MAGIC,
                                   (st.st_dev, st.st_ino), st.st_size, fd,
                                   lambda data: UsageState.from_json(data, UTC))
    finally:
        os.close(fd)
    assert cached is not None
    return cached[0]


def _numbers(path: Path, **kw: Any) -> dict[str, Any]:
    dims = [("model",), ("day",), ("project",), ("session",)]
    return report_json(report(path, dims=dims, **kw))


def _scan_starts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The offsets each later rollup.scan starts reading the journal at."""
    starts: list[int] = []
    real_scan = rollup.scan

    def spy(fd: int, state: UsageState, start: int, stop: int | None = None) -> Any:
        starts.append(start)
        return real_scan(fd, state, start, stop)

    monkeypatch.setattr(rollup, "scan", spy)
    return starts


def test_rollup_is_used_and_read_incrementally(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # Dated yesterday: nothing settles (see the test after this one).
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()
    j = _journal_for_rollup(tmp_path / "j.jsonl", 50, day=yesterday)
    first = _numbers(j)
    cache = rollup.cache_path(j)
    assert cache.exists() and (os.stat(cache).st_mode & 0o777) == 0o600
    assert _saved_state(j).archive is None
    starts = _scan_starts(monkeypatch)
    assert _numbers(j) == first
    size = j.stat().st_size
    assert starts == [size]  # nothing re-read
    _journal_for_rollup(j, 30, start=50, mode="a", day=yesterday)
    incremental = _numbers(j)
    assert starts[-1] == size
    assert incremental == _numbers(j, use_cache=False)
    assert incremental["total"]["input_tokens"] > first["total"]["input_tokens"]
    # a little new data is read again rather than saved; a lot is saved
    assert _numbers(j) == incremental and starts[-1] == size
    monkeypatch.setattr(rollup, "_REWRITE", 0)
    assert _numbers(j) == incremental and starts[-1] == size
    assert _numbers(j) == incremental and starts[-1] == j.stat().st_size


def test_settled_history_is_archived_and_comes_back_when_touched(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Link groups with nothing in the last 35 days are saved as the rows they
    count (state.Archive); a new record of one of their sessions brings the units
    back, and the cache is saved again once (not re-done by every reader)."""
    j = _journal_for_rollup(tmp_path / "j.jsonl", 50)  # 2026-07-01: long settled
    recent = (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()
    write(j, [rec(f"{recent}T10:00:00.000Z", session="fresh", i=7, o=1)], "a")
    first = _numbers(j)
    assert first == _numbers(j, use_cache=False)
    saved = _saved_state(j)
    assert saved.archive is not None and saved.archive.rows
    assert "s1" in saved.archive.keys and "fresh" not in saved.archive.keys
    assert {k[0] for k in saved.units} == {"fresh"}  # only what can still change
    assert _numbers(j) == first
    starts = _scan_starts(monkeypatch)
    size = j.stat().st_size
    # Session s3 resumed (old day: it stays settled after), and a request id seen again
    # from a better source: each reaches an archived unit.
    write(j, [rec("2026-07-01T11:30:00.000Z", session="s3", i=1000, o=5),
              rec("2026-07-01T12:00:00.000Z", session="x9", source="otel", i=3, o=3,
                  request_id="r9")], "a")
    after = _numbers(j)
    assert starts == [size]
    assert after == _numbers(j, use_cache=False)
    assert after["total"]["input_tokens"] == first["total"]["input_tokens"] + 1000 + 3 - 9
    assert _numbers(j) == after and starts[-1] == j.stat().st_size  # saved again once
    again = _saved_state(j)
    assert again.archive is not None and "s3" in again.archive.keys
    assert {k[0] for k in again.units} == {"fresh"}


@pytest.mark.parametrize("change", ["truncate", "replace", "rewrite", "rotate", "garbage"])
def test_rollup_never_gives_wrong_numbers(tmp_path: Path, change: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rollup, "_REWRITE", 0)
    j = _journal_for_rollup(tmp_path / "j.jsonl", 60)
    _numbers(j)
    if change == "truncate":
        with open(j, "r+b") as f:
            data = f.read()
            f.truncate(data.index(b"\n", len(data) // 3) + 1)
    elif change == "replace":
        _journal_for_rollup(tmp_path / "new.jsonl", 80, start=1000)
        os.replace(tmp_path / "new.jsonl", j)
    elif change == "rewrite":  # same file, same size or bigger, other bytes
        data = j.read_bytes()
        with open(j, "r+b") as f:
            f.write(data.replace(b'"input_tokens":1,', b'"input_tokens":9,', 1))
        _journal_for_rollup(j, 5, start=5000, mode="a")
    elif change == "rotate":
        os.rename(j, tmp_path / "j.jsonl.1")
        _journal_for_rollup(j, 3, start=7)
    else:
        rollup.cache_path(j).write_bytes(rollup.MAGIC + b'{"offset": 5}\n' + b"x" * 7)
    assert _numbers(j) == _numbers(j, use_cache=False)


def test_concurrent_reports_all_agree(tmp_path: Path) -> None:
    j = _journal_for_rollup(tmp_path / "j.jsonl", 200)
    expected = _numbers(j, use_cache=False)
    pids = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            ok = all(_numbers(j) == expected for _ in range(5))
            os._exit(0 if ok else 1)
        pids.append(pid)
    assert all(os.waitpid(pid, 0)[1] == 0 for pid in pids)
    assert _numbers(j) == expected
    assert not list(tmp_path.glob("*.tmp"))


def test_parallel_read_equals_one_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    # Interleaved sessions, running totals and duplicated requests on both sides of the split.
    items: list[UsageRecord | str] = []
    for k in range(400):
        ts = f"2026-07-{1 + k // 100:02d}T{k % 24:02d}:00:00.000Z"
        items.append(rec(ts, session=f"w{k % 5}", kind="total", i=k * 3, o=k, cost=k / 1000,
                         approximate=k % 2 == 0, claude_session=f"c{k % 5}"))
        items.append(rec(ts, session=f"d{k % 3}", source="pty" if k < 200 else "otel",
                         i=k, request_id=f"r{k % 250}", tags={"k": str(k % 2)}))
        if k == 150:
            items.append("garbage")
    j = write(tmp_path / "j.jsonl", items)
    dims = [("model",), ("day",), ("session",), ("source",), ("tag:k",)]
    expected = report_json(report(j, dims=dims, use_cache=False), dims[3:])
    expected_bad = report(j, use_cache=False).first_bad_lines
    monkeypatch.setattr(rollup, "_PARALLEL", 1)
    size = j.stat().st_size
    for frac in (0.1, 0.5, 0.9):
        monkeypatch.setattr(rollup, "_line_start_after",
                            lambda fd, pos, f=frac, real=rollup._line_start_after:
                            real(fd, int(size * f)))
        r = report(j, dims=dims, use_cache=False)
        assert report_json(r, dims[3:]) == expected
        assert r.first_bad_lines == expected_bad


def test_the_parallel_read_knows_where_each_session_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """first_line (where `cost --session` starts reading) is the same after a
    parallel read as after a plain one, for the sessions of either half: the
    forked half's were lost, and `cost --session` read the journal from byte 0."""
    from claudewrap.store.journal import append_records
    from claudewrap.usage.rollup import load_state

    items = [rec(f"2026-07-01T{k % 24:02d}:00:00.000Z", session=f"s{k // 50}", i=k + 1,
                 claude_session=f"c{k // 50}") for k in range(400)]
    j = write(tmp_path / "j.jsonl", items)
    plain = load_state(j, use_cache=False)
    truth = {sid: plain.first_line(sid) for k in range(8) for sid in (f"s{k}", f"c{k}")}
    assert truth["s7"] == 351 and truth["c0"] == 1
    monkeypatch.setattr(rollup, "_PARALLEL", 1)
    size = j.stat().st_size
    monkeypatch.setattr(rollup, "_line_start_after",
                        lambda fd, pos, real=rollup._line_start_after: real(fd, size // 2))
    split = load_state(j, use_cache=False)
    assert {sid: split.first_line(sid) for sid in truth} == truth
    again = load_state(j)  # and from the rollup it saved
    assert {sid: again.first_line(sid) for sid in truth} == truth

    # Ids JSON spells in other ways, read back from the saved index one by one.
    odd = ["é-sess", 'q"uote', "back\\slash", "tab\tid", "s1x", "[s", "ß,", "\u2028",
           "pair\U0001f600"]
    k = tmp_path / "k.jsonl"
    append_records(k, [rec("2026-07-01T10:00:00.000Z", session=sid, i=1) for sid in odd])
    load_state(k)
    saved = load_state(k)
    assert saved.saved_first is not None
    full = dict(json.loads(saved.saved_first))
    assert [saved.first_line(sid) for sid in odd] == [full[sid] for sid in odd] == [
        1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert saved.first_line("s1") is None and saved.first_line("nobody") is None


def test_state_round_trips_through_json() -> None:
    state = UsageState(UTC)
    state.add_records([rec("2026-07-01T10:00:00.000Z", i=1, tags={"a": "b"}),
                       rec("2026-07-01T10:00:00.000Z", kind="total", i=5)])
    again = UsageState.from_json(state.to_json(), UTC)
    assert report_json(make_report(again)) == report_json(make_report(state))
    with pytest.raises(ValueError):
        UsageState.from_json(state.to_json(), ZoneInfo("Asia/Kolkata"))


def test_half_hour_zones_get_their_own_midnight(tmp_path: Path) -> None:
    # 18:40 UTC is 00:10 the next day in India (UTC+5:30).
    j = write(tmp_path / "j.jsonl", [rec("2026-07-01T18:20:00.000Z", i=1),
                                     rec("2026-07-01T18:40:00.000Z", i=2)])
    g = report(j, tz=ZoneInfo("Asia/Kolkata"), dims=[("day",)]).groups[("day",)]
    assert {k[0]: v.input_tokens for k, v in g.items()} == {"2026-07-01": 1, "2026-07-02": 2}
    assert datetime(2026, 7, 1, tzinfo=UTC)  # keep the import honest


def test_exact_per_request_sources_replace_screen_totals_of_their_session() -> None:
    from claudewrap.store.records import UsageRecord
    from claudewrap.usage.report import summarize

    def rec(**kw: object) -> UsageRecord:
        base = {"ts": "2026-11-24T10:00:00.000Z", "session": "w1", "model": "claude-opus-4-8"}
        base.update(kw)
        return UsageRecord(**base)  # type: ignore[arg-type]

    records = [
        # -p JSON result on screen (exact total) and the /cost block (rounded total) ...
        rec(source="pty", kind="total", input_tokens=1234, output_tokens=10, cost_usd=0.5,
            claude_session="c1"),
        rec(source="pty", kind="total", input_tokens=1200, output_tokens=10, cost_usd=0.5,
            approximate=True),
        # ... and the same request, exact, from OpenTelemetry.
        rec(source="otel", kind="delta", input_tokens=1234, output_tokens=10, cost_usd=0.5,
            request_id="req_1", claude_session="c1"),
        # Another wrapped session without OTel still counts its screen total.
        rec(session="w2", source="pty", kind="total", input_tokens=7, output_tokens=3,
            cost_usd=0.01),
    ]
    total = summarize(records).total
    assert (total.input_tokens, total.output_tokens, total.cost_usd) == (1241, 13, 0.51)


@pytest.mark.parametrize("seed", range(12))
def test_the_hot_loop_gives_what_one_record_at_a_time_gives(tmp_path: Path, seed: int) -> None:
    # UsageState._feed keeps the last units and buckets at hand and sums deltas at
    # the end of a call; fed one record per call, none of that is used. Random
    # journals mix what breaks those shortcuts: alternating sources and sessions,
    # attribution and model changes, days, printed and missing costs, totals,
    # request ids seen from better and worse sources, odd timestamps and kinds.
    import random

    rnd = random.Random(seed)
    choices: dict[str, tuple[Any, ...]] = {
        "session": ("s1", "s2", "s3"), "source": ("pty", "otel", "transcript", "scan", "manual"),
        "kind": ("delta", "delta", "total"), "model": (SONNET, "claude-opus-4-1", None),
        "claude_session": (None, "c1", "c2"), "approximate": (False, False, True),
        "cost_estimated": (False, True), "project": ("p1", "p2"), "host": ("h1", None),
        "tmux_pane": ("%1", "%2", None), "screen_session": (None, "9.x"),
        "tags": ({}, {"k": "a"}, {"k": "b"}), "hour": tuple(range(72))}
    # Each field keeps its value for a while (runs are what the shortcuts are for).
    now = {f: rnd.choice(c) for f, c in choices.items()}
    records: list[UsageRecord] = []
    for k in range(400):
        for f, c in choices.items():
            if rnd.random() < 0.15:
                now[f] = rnd.choice(c)
        fields = dict(now)
        hour = fields.pop("hour")
        ts = f"2026-07-{1 + hour // 24:02d}T{hour % 24:02d}:{rnd.randrange(60):02d}:00.000Z"
        if rnd.random() < 0.03:
            ts = ts.replace(".000Z", "+02:00")  # an odd but valid time
        if rnd.random() < 0.02:
            fields["kind"] = "weird"  # an unknown kind counts as a delta
        if fields["kind"] != "total" and rnd.random() < 0.5:
            fields["request_id"] = f"r{rnd.randrange(60)}"
        records.append(rec(
            ts, i=rnd.randrange(0, 500) * (k if fields["kind"] == "total" else 1),
            o=rnd.randrange(0, 50), cr=rnd.randrange(0, 9), cw=rnd.randrange(0, 9),
            cost=rnd.choice((None, rnd.randrange(1, 64) / 64)),  # sums exact in any order
            **fields))
    dims = [("model",), ("day",), ("session",), ("source",), ("project",), ("pane",),
            ("tag:k",)]
    at_once = UsageState(UTC)
    at_once.add_records(records)
    one_by_one = UsageState(UTC)
    for r in records:
        one_by_one.add_records([r])
    expected = report_json(make_report(one_by_one, dims=dims), dims[3:])
    assert report_json(make_report(at_once, dims=dims), dims[3:]) == expected
    # The same records as journal lines, decoded by the fast decoder.
    j = write(tmp_path / "j.jsonl", records)
    assert report_json(report(j, dims=dims, use_cache=False), dims[3:]) == expected


def test_a_parallel_read_after_the_rollup_sees_the_request_ids_before_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The second process of a parallel read must know the request ids the rollup
    # holds: a request seen again must not count twice, and a better source that
    # comes later must take back what the rollup counted.
    old = [rec("2026-07-01T10:00:00.000Z", session=f"s{k % 3}", i=10 + k, request_id=f"r{k}")
           for k in range(60)]
    new: list[UsageRecord | str] = []
    for k in range(200):
        ts = "2026-07-02T10:00:00.000Z"
        if k % 4 == 0:  # the same request again, from an exact source: replaces the old one
            new.append(rec(ts, session="o", source="otel", i=1000 + k, request_id=f"r{k % 60}"))
        elif k % 4 == 1:  # again from the screen: counted already
            new.append(rec(ts, session="p", i=5000 + k, request_id=f"r{k % 60}"))
        else:
            new.append(rec(ts, session=f"n{k % 5}", i=k, request_id=f"new{k}"))
    j = write(tmp_path / "j.jsonl", old)
    dims = [("session",)]
    assert report(j, dims=dims).total.input_tokens == sum(10 + k for k in range(60))
    write(j, new, mode="a")
    expected = report_json(report(j, dims=dims, use_cache=False))
    monkeypatch.setattr(rollup, "_PARALLEL", 1)
    monkeypatch.setattr(rollup, "_REWRITE", 1)
    size = j.stat().st_size
    monkeypatch.setattr(rollup, "_line_start_after",
                        lambda fd, pos, real=rollup._line_start_after: real(fd, size - 4000))
    assert report_json(report(j, dims=dims)) == expected
    assert report_json(report(j, dims=dims)) == expected  # from the rollup it wrote


def test_odd_request_ids_count_once_through_the_rollup(tmp_path: Path) -> None:
    # The rollup keeps request ids as text, one per line: an id with a newline,
    # or beyond ASCII, must still be found again.
    ids = ["req_1", "a\nb", "a", "b", "ré-ü", "日本", "z" * 300]
    first = [rec("2026-07-01T10:00:00.000Z", session="p", i=1, request_id=r) for r in ids]
    j = write(tmp_path / "j.jsonl", first)
    assert report(j).total.input_tokens == len(ids)
    # Seen again from the screen (counted already) and from OTel (better: replaces).
    write(j, [rec("2026-07-02T10:00:00.000Z", session="q", i=100, request_id=r) for r in ids]
          + [rec("2026-07-02T10:00:00.000Z", session="o", source="otel", i=10, request_id=r)
             for r in ids[:3]], mode="a")
    expected = report_json(report(j, dims=[("session",)], use_cache=False))
    assert expected["total"]["input_tokens"] == (len(ids) - 3) + 3 * 10
    assert report_json(report(j, dims=[("session",)])) == expected


@pytest.mark.parametrize("block", [64, 1000, 128 << 10])
def test_fetcher_finds_every_line_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        block: int) -> None:
    # Positions are line numbers; the state marks where some lines start and
    # rollup.fetcher counts lines from the nearest mark: with lines longer than a
    # read, blank and bad lines, and reads in any order.
    import random

    from claudewrap.usage import state as state_module

    monkeypatch.setattr(rollup, "_BLOCK", block)
    monkeypatch.setattr(state_module, "_MARK_EVERY", 300)
    items: list[UsageRecord | str] = []
    for k in range(120):
        if k % 17 == 5:
            items.append("not json")
        elif k % 23 == 7:
            items.append("")
        else:
            items.append(rec("2026-07-01T10:00:00.000Z", session=f"s{k}" + "x" * (k * 37 % 900),
                             i=k))
    j = write(tmp_path / "j.jsonl", items)
    state = UsageState(UTC)
    fd = os.open(j, os.O_RDONLY)
    try:
        rollup.scan(fd, state, 0)
        assert state.stats.lines == len(items)
        assert len(state.marks[0]) > 3 or block > j.stat().st_size
        expected = {n: (item.input_tokens if isinstance(item, UsageRecord) else None)
                    for n, item in enumerate(items, 1)}
        fetch = rollup.fetcher(fd, state)
        got = {n: getattr(fetch(n), "input_tokens", None) for n in range(1, len(items) + 1)}
        assert got == expected
        order = list(expected)
        random.Random(block).shuffle(order)
        fetch = rollup.fetcher(fd, state)
        assert {n: getattr(fetch(n), "input_tokens", None) for n in order} == expected
        assert fetch(len(items) + 1) is None
    finally:
        os.close(fd)


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
                                  "Asia/Kolkata", "UTC"])
def test_local_days_of_every_hour_across_daylight_saving_changes(zone: str) -> None:
    # UsageState.day() memoises a whole UTC date at once when the zone's offset
    # is the same all that day: every hour must still get the date a direct
    # conversion gives, on the days the clocks change too.
    from datetime import timedelta

    tz = ZoneInfo(zone)
    state = UsageState(tz)
    for start in (datetime(2026, 3, 25, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC),
                  datetime(2026, 11, 28, tzinfo=UTC)):
        for hour in range(24 * 10):
            when = start + timedelta(hours=hour, minutes=59)
            ts = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            assert state.day(ts) == when.astimezone(tz).strftime("%Y-%m-%d"), ts


def test_a_rollup_that_cannot_be_written_costs_nothing_but_speed(tmp_path: Path) -> None:
    # The rollup's place is taken by a folder: the report is right, nothing is
    # left behind, and the next report reads the whole journal again.
    j = _journal_for_rollup(tmp_path / "j.jsonl", 30)
    expected = _numbers(j, use_cache=False)
    rollup.cache_path(j).mkdir()
    assert _numbers(j) == expected
    assert _numbers(j) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.jsonl", "j.jsonl.rollup"]


def test_the_default_report_prices_cells_as_the_general_report_prices_rows() -> None:
    # make_report's fast path (model and project only) prices a cell of rows at
    # once when the model has every rate, row by row otherwise; the general path
    # prices every row. Both must agree, with a model missing a rate too.
    import random

    table = PriceTable({"full": Price("full", 3.0, 15.0, 3.75, 6.0, 0.3),
                        "part": Price("part", 1.0, 5.0, None, None, None)})
    rnd = random.Random(7)
    records = [rec(f"2026-07-0{1 + k % 3}T10:00:00.000Z", session=f"s{k % 4}",
                   model=rnd.choice(("full", "part", "nope", None)), i=rnd.randrange(0, 900),
                   o=rnd.randrange(0, 90), cr=rnd.choice((0, 0, 50)), cw=rnd.choice((0, 7)),
                   cost=rnd.choice((None, None, 0.125)), project=rnd.choice(("p", "q")))
               for k in range(300)]
    state = UsageState(UTC)
    state.add_records(records)
    fast = make_report(state, dims=[("model",), ("project",)], table=table,
                       count_sessions=False, today=date(2026, 7, 2))
    general = make_report(state, dims=[("model",), ("project",), ("day",)], table=table,
                          count_sessions=False, today=date(2026, 7, 2))

    def numbers(row: Any) -> tuple[Any, ...]:
        return (*tokens(row), row.records, row.unpriced_records,
                pytest.approx(row.cost_usd), pytest.approx(row.cost_estimated_usd))

    assert numbers(fast.total) == numbers(general.total)
    assert fast.total.unpriced_records > 0 and fast.total.cost_estimated_usd > 0
    for name in fast.periods:
        assert numbers(fast.periods[name]) == numbers(general.periods[name])
    for dim in (("model",), ("project",)):
        assert fast.groups[dim].keys() == general.groups[dim].keys()
        for key, row in fast.groups[dim].items():
            assert numbers(row) == numbers(general.groups[dim][key])


def _bytes_read() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_old_request_ids_are_not_read_for_new_usage_but_still_meet_old_records(
        tmp_path: Path) -> None:
    """The request-id index's old segments (records days older than any new one)
    stay unread in the rollup while new usage comes in; a record of an old request
    (an import of old transcripts) still meets the record of it already counted."""
    j = tmp_path / "j.jsonl"
    old = [rec(f"2026-01-{1 + k % 28:02d}T10:00:00.000Z", session=f"o{k % 50}", i=10, o=1,
               request_id=f"old-request-{k:06d}") for k in range(20000)]
    write(j, old)
    _numbers(j)  # builds the rollup
    cache = rollup.cache_path(j)
    size = cache.stat().st_size
    now = datetime.now(timezone.utc)
    recent = [rec((now - timedelta(minutes=k)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                  session="new", source="otel", i=100, o=2, request_id=f"new-{k}")
              for k in range(30)]
    write(j, recent, "a")
    before = _bytes_read()
    fresh = _numbers(j)
    read = _bytes_read() - before
    assert fresh == _numbers(j, use_cache=False)
    assert read < size // 4, (read, size)  # the old segment (most of the file) unread
    # An old request seen again by a better source: the pty record is taken back.
    write(j, [rec("2026-01-08T10:00:05.000Z", session="imported", source="transcript", i=10,
                  o=1, cr=5, request_id="old-request-000007")], "a")
    again = _numbers(j)
    assert again == _numbers(j, use_cache=False)
    assert again["total"]["cache_read_tokens"] == fresh["total"]["cache_read_tokens"] + 5
    assert again["total"]["input_tokens"] == fresh["total"]["input_tokens"]


def test_a_bad_request_id_segment_read_late_means_a_full_read(tmp_path: Path) -> None:
    j = tmp_path / "j.jsonl"
    write(j, [rec(f"2026-01-{1 + k % 28:02d}T10:00:00.000Z", session=f"o{k % 9}", i=10,
                  request_id=f"rq-{k}") for k in range(3000)])
    _numbers(j)
    cache = rollup.cache_path(j)
    data = bytearray(cache.read_bytes())
    data[-9] ^= 0x55  # in the last part: the segment's values (no archive: all recent)
    cache.write_bytes(bytes(data))
    write(j, [rec("2026-01-03T10:00:01.000Z", session="o2", source="otel", i=10,
                  request_id="rq-2")], "a")
    assert _numbers(j) == _numbers(j, use_cache=False)
    assert rollup.cache_path(j).read_bytes() != bytes(data)  # saved again, whole


def _rollup_covers(j: Path) -> int | None:
    """The journal offset the saved rollup covers (None: no rollup that checks out)."""
    fd = os.open(j, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        got = rollup.read_cache(rollup.cache_path(j), rollup.MAGIC, (st.st_dev, st.st_ino),
                                st.st_size, fd, lambda data: UsageState.from_json(data, UTC))
    finally:
        os.close(fd)
    return None if got is None else got[1]


def test_a_few_records_dated_days_back_save_the_rollup_again_a_few_new_ones_do_not(
        tmp_path: Path) -> None:
    """New lines are read again by every later reader until the rollup is saved;
    that is cheap for records of now (their request ids are looked up in the last
    days' part of the index only), not for records dated months back (an import of
    old transcripts): after those the rollup is saved at once, however few."""
    j = write(tmp_path / "j.jsonl", [
        rec(f"2026-07-{1 + k % 28:02d}T10:00:00.000Z", session=f"s{k % 7}", source="otel",
            i=10, request_id=f"req_{k}") for k in range(2000)])
    assert report(j).total.input_tokens == 20_000
    assert _rollup_covers(j) == j.stat().st_size
    saved = j.stat().st_size
    now = datetime.now(timezone.utc)
    recent = [rec((now - timedelta(seconds=60 - k)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                  session="now", source="otel", i=1, request_id=f"req_now_{k}")
              for k in range(50)]
    write(j, recent, "a")
    assert report(j).total.input_tokens == 20_050
    assert _rollup_covers(j) == saved  # a few lines of now: read again next time, not saved
    write(j, [rec("2026-07-03T11:00:00.000Z", session="old", source="otel", i=1000,
                  request_id=f"req_old_{k}") for k in range(20)], "a")
    assert report(j).total.input_tokens == 40_050
    assert _rollup_covers(j) == j.stat().st_size  # saved at once
    # The same request as before from a worse source, in another session: not
    # counted twice, whether the rollup was saved or not.
    write(j, [rec("2026-07-05T10:00:00.000Z", session="old", source="pty", i=10,
                  request_id="req_4")], "a")
    assert report(j).total.input_tokens == 40_050
    assert _rollup_covers(j) == j.stat().st_size
    assert report(j).total.input_tokens == 40_050
    assert report(j, use_cache=False).total.input_tokens == 40_050
