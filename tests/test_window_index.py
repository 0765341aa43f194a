"""The windows of a heavy day (issue 16, bench/readers.py --shape today-heavy): the
metrics state settles the groups with no usage in the last half hour and sums their
minutes in a WindowIndex; `status`, `monitor` and the rate gauges read that. Their
numbers must be the rule's: a plain recomputation from the records
(claudewrap.usage.rule.effective_rows); the sessions in them those of the walk over
every row, as before."""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rule import SETTINGS, journals, write

from claudewrap.export import metrics
from claudewrap.plain import replace
from claudewrap.store.records import UsageRecord
from claudewrap.usage.rule import effective_rows


def _iso(when: datetime) -> str:
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def spread(records: list[UsageRecord], now: float, step: int, eras: int = 1
           ) -> list[UsageRecord]:
    """The same records, ``step`` seconds apart, the last one a minute before ``now``:
    a day of sessions, the early ones quiet for hours. With ``eras``, the records of
    each part of the journal have their own session and request ids (the sessions
    of the morning are not those of the evening)."""
    end = datetime.fromtimestamp(now, timezone.utc) - timedelta(minutes=1)
    out = []
    for k, r in enumerate(records):
        era = k * eras // len(records)

        def own(x: str | None, era: int = era) -> str | None:
            return f"{x}-{era}" if x and eras > 1 else x

        out.append(replace(r, ts=_iso(end - timedelta(seconds=step * (len(records) - 1 - k))),
                           session=own(r.session), claude_session=own(r.claude_session),
                           request_id=own(r.request_id)))
    return out


def local_day(ts: str) -> str:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d")


# (More examples than SETTINGS: about one in seven has settled groups left after the
# appended lines, the rest check the walk; ~5 s.)
@settings(SETTINGS, max_examples=300)
@given(journals(), st.integers(60, 2400), st.floats(0.6, 1.0), st.integers(1, 6))
def test_heavy_day_windows_are_the_rules(tmp_path_factory: Any, records: list[UsageRecord],
                                         step: int, cached_share: float, eras: int) -> None:
    now = time.time()
    records = spread(records, now, step, eras)
    path = tmp_path_factory.mktemp("j") / "journal.jsonl"
    cut = int(len(records) * cached_share)
    write(path, records[:cut])
    first = metrics.JournalMetrics(path)
    first.update(now)
    first.save()  # the cache: quiet groups settled, their minutes indexed
    write(path, records[cut:], "a")  # what a reader of that cache reads itself
    reader = metrics.JournalMetrics(path)
    reader.update(now)

    cutoff = metrics._minute(now - metrics._RETENTION)
    by_minute = effective_rows(records, lambda ts: ts[:16] if ts[:16] >= cutoff else "-")
    by_day = effective_rows(records, local_day)
    table = metrics.default_table()

    def expected(keep: Any, rows: dict[Any, list[Any]]) -> tuple[list[int], float]:
        sums = [0, 0, 0, 0, 0]
        cost = 0.0
        for key, v in rows.items():
            if keep(key):
                for j in range(5):
                    sums[j] += v[j]
                cost += v[5] if key[4] else (table.cost(key[1], *v[1:5]) or 0.0)
        return sums, cost

    def check(got: metrics.Window, want: tuple[list[int], float]) -> None:
        t = got.total
        assert [t.records, t.input_tokens, t.output_tokens, t.cache_read_tokens,
                t.cache_write_tokens] == want[0]
        assert t.cost_usd == pytest.approx(want[1], rel=1e-9, abs=1e-9)
        assert t.sessions == len(got.sessions)

    plain = metrics.JournalMetrics(path, use_cache=False)  # every row walked
    plain.update(now)
    assert plain.state.window_index is None
    for seconds in (60, 600, 900, 3600, 5 * 3600, 24 * 3600):
        lo, hi = metrics.window_bounds(now, seconds)
        got = reader.recent_usage(seconds, now)
        check(got, expected(lambda key, lo=lo, hi=hi: key[2] != "-" and lo <= key[2] <= hi,
                            by_minute))
        walked = plain.recent_usage(seconds, now)
        assert got.sessions == walked.sessions
    today = datetime.now().astimezone().strftime("%Y-%m-%d")
    got = reader.today(now)
    check(got, expected(lambda key: key[2] >= today, by_day))
    assert got.sessions == plain.today(now).sessions

    # The metrics' rates: the same rows (usage_sums), by series.
    shot, walked_shot = reader.snapshot(now), plain.snapshot(now)
    assert shot.tokens_per_minute.keys() == walked_shot.tokens_per_minute.keys()
    for key, value in walked_shot.tokens_per_minute.items():
        assert shot.tokens_per_minute[key] == pytest.approx(value)


def test_a_heavy_day_is_read_from_the_index(tmp_path: Path) -> None:
    """Sessions that ended hours ago are settled and summed by minute (the test above
    would pass without the index: this one says it is used)."""
    now = time.time()
    records = spread([UsageRecord(ts="", session=f"s{k // 40}", source="pty",
                                  model="claude-sonnet-4-5", input_tokens=10 + k,
                                  output_tokens=k, cost_usd=0.01) for k in range(200)], now, 90)
    path = tmp_path / "journal.jsonl"
    write(path, records)
    first = metrics.JournalMetrics(path)
    first.update(now)
    first.save()
    reader = metrics.JournalMetrics(path)
    reader.update(now)
    index = reader.state.window_index
    assert index is not None and index.valid(reader.state) and len(index.sessions) == 4
    assert {k[0] for k in reader.state.units} == {"s4"}  # the live session is not settled
    today = local_day(_iso(datetime.now(timezone.utc)))
    assert reader.today(now).total.input_tokens == sum(
        r.input_tokens for r in records if local_day(r.ts) == today)


def _record(when: datetime, session: str, k: int, project: str | None = "p",
            model: str = "claude-sonnet-4-5", cost: float | None = 0.01) -> UsageRecord:
    return UsageRecord(ts=_iso(when), session=session, source="pty", model=model,
                       input_tokens=10 + k, output_tokens=k, cost_usd=cost, project=project,
                       request_id=f"{session}-{k}")


def _cached(path: Path, records: list[UsageRecord], now: float) -> None:
    """``records`` as the journal, and the state cache a reader left (groups quiet
    for half an hour settled and indexed)."""
    write(path, records)
    first = metrics.JournalMetrics(path)
    first.update(now)
    first.save()


def test_a_session_s_project_is_that_of_the_window_s_rows(tmp_path: Path) -> None:
    """A settled session whose newer rows name no project: the project of the rows
    in the window (none), as the walk folds them, not the one of its older rows."""
    now = time.time()
    end = datetime.fromtimestamp(now, timezone.utc)
    records = [_record(end - timedelta(minutes=300 - k), "mixed", k, "early") for k in range(5)]
    records += [_record(end - timedelta(minutes=120 - k), "mixed", 10 + k, None)
                for k in range(5)]
    records += [_record(end - timedelta(minutes=200 - 3 * k), "other", 20 + k, "o")
                for k in range(30)]
    records += [_record(end - timedelta(minutes=2), "live", 99, "l")]
    path = tmp_path / "journal.jsonl"
    _cached(path, records, now)
    reader = metrics.JournalMetrics(path)
    reader.update(now)
    index = reader.state.window_index
    assert index is not None and index.valid(reader.state)
    assert len(index.sessions["mixed"]) > 2 and len(index.sessions["other"]) == 2
    plain = metrics.JournalMetrics(path, use_cache=False)
    plain.update(now)
    for minutes in (130, 150, 250, 400):
        got = reader.recent_usage(minutes * 60, now)
        assert got.sessions == plain.recent_usage(minutes * 60, now).sessions
    assert reader.recent_usage(150 * 60, now).sessions["mixed"][1] is None
    assert reader.recent_usage(400 * 60, now).sessions["mixed"][1] == "early"


def test_running_totals(tmp_path: Path) -> None:
    """Each minute of the index holds the sums of every minute on or after it."""
    now = time.time()
    end = datetime.fromtimestamp(now, timezone.utc)
    records = [_record(end - timedelta(minutes=400 - 2 * k), f"s{k // 50}", k,
                       model=("claude-sonnet-4-5", "claude-opus-4-1")[k % 2],
                       cost=None if k % 3 else 0.02) for k in range(150)]
    path = tmp_path / "journal.jsonl"
    _cached(path, records, now)
    reader = metrics.JournalMetrics(path)
    reader.update(now)
    index = reader.state.window_index
    assert index is not None and len(index.minutes) == 150
    for k, row in enumerate(index.minutes):
        later = [r for r in records if r.ts[:16] >= row[0]]
        assert row[1] + sum(row[at + 1] for at in range(7, len(row), 6)) == len(later)
        assert row[2] + sum(row[at + 2] for at in range(7, len(row), 6)) == sum(
            r.input_tokens for r in later)
        assert row[6] == pytest.approx(sum(r.cost_usd or 0.0 for r in later))
        assert len(later) == 150 - k


def test_rates_without_the_settled_rows(tmp_path: Path) -> None:
    """The rate gauges of a window after the newest settled minute: the series of the
    settled sessions listed (at 0) from the index, their rows not read; a window
    reaching them (a day) sums them; both as the walk does."""
    now = time.time()
    end = datetime.fromtimestamp(now, timezone.utc)
    records = [_record(end - timedelta(minutes=600 - 3 * k), f"s{k // 40}", k,
                       project=f"p{k // 40}", model=("claude-sonnet-4-5", "m-x")[k % 2],
                       cost=None if k % 2 == 0 else 0.5) for k in range(160)]
    records += [_record(end - timedelta(minutes=3 - k), "live", 500 + k, "pl") for k in range(3)]
    path = tmp_path / "journal.jsonl"
    _cached(path, records, now)
    for window in (15 * 60.0, 24 * 3600.0):
        reader = metrics.JournalMetrics(path, window=window)
        reader.update(now)
        assert reader.state.window_index is not None
        plain = metrics.JournalMetrics(path, window=window, use_cache=False)
        plain.update(now)
        shot, walked = reader.snapshot(now), plain.snapshot(now)
        assert shot.tokens_per_minute == pytest.approx(walked.tokens_per_minute)
        assert shot.cost_per_hour == pytest.approx(walked.cost_per_hour)
        assert len(shot.cost_per_hour) == 9  # 4 settled sessions x 2 models, the live one
        archive = reader.state.archive
        assert archive is not None
        if window < 3600:
            assert archive._rows is None  # the settled rows: not decoded


def test_a_resumed_session_is_saved_settled_again(tmp_path: Path) -> None:
    """A record of a settled session puts the settled groups back (UsageState.unarchive):
    the reader that reads it saves the cache (the others load it settled again)."""
    now = time.time()
    end = datetime.fromtimestamp(now, timezone.utc)
    records = [_record(end - timedelta(minutes=300 - k), f"s{k // 20}", k) for k in range(100)]
    path = tmp_path / "journal.jsonl"
    _cached(path, records, now)
    cache = metrics.state_cache_path(path)
    before = cache.read_bytes()
    write(path, [_record(end - timedelta(minutes=1), "s0", 1000)], "a")  # s0 resumed
    reader = metrics.JournalMetrics(path)
    reader.update(now)
    assert cache.read_bytes() != before and reader.saved_offset == reader.offset
    again = metrics.JournalMetrics(path)
    again.update(now)
    assert again.offset == again.saved_offset == path.stat().st_size  # nothing read again
    assert again.state.archive is not None and "s0" not in again.state.archive.keys
    assert {k[0] for k in again.state.units} == {"s0"}
    plain = metrics.JournalMetrics(path, use_cache=False)
    plain.update(now)
    assert again.today(now) == plain.today(now)


@pytest.mark.parametrize("fast", [True, False])
def test_attributions_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 fast: bool) -> None:
    """The metrics state saves its attributions as one JSON string: read back the
    tuples UsageState makes (tags included), with msgspec loaded or not."""
    state = metrics.MinuteState()
    state.add_records([UsageRecord(ts="2026-01-01T00:00:00.000Z", session="a", source="pty", project="p",
                                   host="h", tmux_pane="%1", tags={"k": "v", "x": "é"},
                                   input_tokens=1),
                       UsageRecord(ts="2026-01-01T00:00:00.000Z", session="b", source="pty",
                                   input_tokens=1)])
    data = state.to_json()
    assert isinstance(data["attrs"], str)
    if not fast:
        monkeypatch.delitem(sys.modules, "msgspec", raising=False)
    back = metrics.MinuteState.from_json(data)
    assert back.attrs == state.attrs and all(type(a[3]) is tuple for a in back.attrs)
    assert back._attr_ids == state._attr_ids
