"""Every reader's numbers are the reference rule's (claudewrap.usage.rule), on random journals.

`metrics` (its counters), `status` (today), `monitor` (today, this month, and each
session it lists) and `cost --session` (every session) are compared with the plain
reference over the same records, moved to end a minute ago so that today and
yesterday both occur. The recent window of `status`, `monitor` and the metrics'
rate gauges is the reference's rows by UTC minute (older than a day: one bucket),
in the window's minute buckets (metrics.window_bounds).
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_rule import SETTINGS, journals, write

from claudewrap import api
from claudewrap.export import metrics
from claudewrap.plain import replace
from claudewrap.store.records import UsageRecord
from claudewrap.usage.rule import effective_rows
from claudewrap.views.monitor import Monitor
from claudewrap.views.status_view import read_status

if TYPE_CHECKING:
    from claudewrap.usage.rule import RowKey

TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def local_day(ts: str) -> str:
    return _parse(ts).astimezone().strftime("%Y-%m-%d")


def recent(records: list[UsageRecord]) -> list[UsageRecord]:
    """The same records, moved so that the last one was a minute ago."""
    shift = datetime.now(timezone.utc) - timedelta(minutes=1) - _parse(records[-1].ts)
    out = []
    for r in records:
        when = (_parse(r.ts) + shift).astimezone(timezone.utc)
        ts = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
        out.append(replace(r, ts=ts))
    return out


def tokens(rows: dict[RowKey, list[Any]], keep: Any = lambda key: True) -> list[int]:
    sums = [0, 0, 0, 0]
    for key, v in rows.items():
        if keep(key):
            for j in range(4):
                sums[j] += v[j + 1]
    return sums


def of(row: Any) -> list[int]:
    return [getattr(row, name) for name in TOKENS]


@SETTINGS
@given(journals())
def test_every_reader_shows_the_reference_numbers(tmp_path_factory: Any,
                                                  records: list[UsageRecord]) -> None:
    records = recent(records)
    path = tmp_path_factory.mktemp("j") / "journal.jsonl"
    write(path, records)
    rows = effective_rows(records, local_day)
    today = datetime.now().astimezone().strftime("%Y-%m-%d")
    month = today[:7]

    now = time.time()
    clock = datetime.fromtimestamp(now, timezone.utc)
    cutoff = metrics._minute(now - metrics._RETENTION)
    by_minute = effective_rows(records, lambda ts: ts[:16] if ts[:16] >= cutoff else "-")

    def window(seconds: float) -> list[int]:
        first, last = metrics.window_bounds(now, seconds)
        return tokens(by_minute, lambda key: key[2] != "-" and first <= key[2] <= last)

    # metrics: its counters, per model; its rates over the last 15 minutes.
    snap = metrics.JournalMetrics(path, use_cache=False)
    snap.update(now)
    shot = snap.snapshot(now)
    counters = shot.counters
    rates = [sum(v for key, v in shot.tokens_per_minute.items() if key[-1] == t) * 15
             for t in metrics.TOKEN_TYPES]
    assert rates == [pytest.approx(n) for n in window(15 * 60)]
    by_model: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0, 0])
    for j, name in enumerate(("tokens_input", "tokens_output", "tokens_cache_read",
                              "tokens_cache_write")):
        for key, value in counters[name].items():
            by_model[key[0]][j] += value
    want: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for key, v in rows.items():
        for j in range(4):
            want[key[1] or "unknown"][j] += v[j + 1]
    assert {m: v for m, v in by_model.items() if any(v)} == {
        m: v for m, v in want.items() if any(v)}

    # status and monitor: today (and this month).
    expected_today = tokens(rows, lambda key: key[2] == today)
    status = read_status(path, now=clock)
    assert status.today.tokens == sum(expected_today)
    assert of(status.window) == window(10 * 60)
    mon = Monitor(Path(path), now=lambda: clock)
    mon.update()
    shown = mon.snapshot()
    assert of(shown.today) == expected_today
    assert of(shown.window) == window(10 * 60)
    assert of(shown.month) == tokens(rows, lambda key: key[2][:7] == month)
    for line in shown.sessions:
        assert of(line.usage) == tokens(rows, lambda key, s=line.session: key[0][0] == s)
    mon.close()

    # cost --session: every session and Claude session id of the journal.
    for sid in {k for r in records for k in (r.session, r.claude_session) if k}:
        found = api.session_usage(sid, str(path))
        assert of(found.usage) == tokens(
            rows, lambda key, s=sid: key[0][0] == s or key[0][2] == s), sid


@SETTINGS
@given(journals(), st.lists(st.integers(1, 6), min_size=1, max_size=4))
def test_the_counters_summed_by_unit_after_each_append_are_the_whole_sums(
        tmp_path_factory: Any, records: list[UsageRecord], cuts: list[int]) -> None:
    """`serve` sums again only the units linked to the new lines (and to the records
    rule 1 took back): after every append its totals are those of a fresh read."""
    records = recent(records)
    path = tmp_path_factory.mktemp("j") / "journal.jsonl"
    served = metrics.JournalMetrics(path, use_cache=False)
    table = metrics.default_table()
    start = 0
    for end in sorted({min(len(records), c) for c in accumulate(cuts)} | {len(records)}):
        write(path, records[start:end], "a")
        start = end
        served.update()
        kept = {k: list(v) for k, v in served._totals_now(table).items()}
        fresh = metrics.JournalMetrics(path, use_cache=False)
        fresh.update()
        whole, _ = metrics.usage_sums(fresh.state, table)
        assert kept.keys() == whole.keys()
        for key, v in whole.items():
            assert kept[key][:4] == v[:4] and kept[key][6] == v[6], key
            assert kept[key][4:6] == [pytest.approx(x, abs=1e-9) for x in v[4:6]], key


@SETTINGS
@given(journals(), st.lists(st.integers(1, 6), min_size=1, max_size=4))
def test_settled_groups_in_the_metrics_state_count_as_before(
        tmp_path_factory: Any, records: list[UsageRecord], cuts: list[int]) -> None:
    """The minute state saved after every read archives the groups with no minute row
    left (these records are weeks old): `serve`'s totals after each append, and a
    new reader's from the saved state, are those of a fresh read of the journal."""
    path = tmp_path_factory.mktemp("j") / "journal.jsonl"
    saved = metrics._REWRITE
    metrics._REWRITE = -1  # save the state after every read
    try:
        served = metrics.JournalMetrics(path)
        table = metrics.default_table()
        start = 0
        for end in sorted({min(len(records), c) for c in accumulate(cuts)} | {len(records)}):
            write(path, records[start:end], "a")
            start = end
            served.update()
            kept = {k: list(v) for k, v in served._totals_now(table).items()}
            cached = metrics.JournalMetrics(path)
            cached.update()
            fresh = metrics.JournalMetrics(path, use_cache=False)
            fresh.update()
            whole, _ = metrics.usage_sums(fresh.state, table)
            for got in (kept, metrics.usage_sums(cached.state, table)[0]):
                assert got.keys() == whole.keys()
                for key, v in whole.items():
                    assert got[key][:4] == v[:4] and got[key][6] == v[6], key
                    assert got[key][4:6] == [pytest.approx(x, abs=1e-9) for x in v[4:6]], key
        assert records and served.state.archive is not None
    finally:
        metrics._REWRITE = saved
