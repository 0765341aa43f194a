"""`usage --json` writes what the report says, byte for byte as before.

The report's rows are summed per grouping in C (report._bucket_sums) and
`usage --json` writes them with msgspec straight from the sums
(report.usage_json): here both are held to the way they were made before, a
loop that adds every bucket into each of its rows (:func:`reference_report`,
as report.py did it), and to ``json.dumps(report_json(...), indent=2)``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest
from conftest import ROOT, gen_journal
from hypothesis import given, settings
from hypothesis import strategies as st

from claudewrap.store.records import UsageRecord
from claudewrap.usage import lines, rollup
from claudewrap.usage.filters import NONE, UNKNOWN_MODEL, Filters
from claudewrap.usage.pricing import PriceTable, default_table
from claudewrap.usage.report import (
    STANDARD_GROUPS,
    Report,
    Row,
    _label,
    _usage_json_settled,
    estimated_cost,
    make_report,
    period_days,
    report_json,
    usage_json,
)
from claudewrap.usage.state import UsageState

UTC = timezone.utc


@pytest.fixture(autouse=True)
def no_user_prices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDEWRAP_PRICES", str(tmp_path / "absent.toml"))


def reference_report(state: UsageState, dims: Iterable[tuple[str, ...]],
                     filters: Filters | None, today: date, table: PriceTable) -> Report:
    """The report as report.py made it before (its general loop, sessions counted):
    each bucket priced, then added into every row it belongs to, one at a time."""
    starts = period_days(today)
    dims = tuple(dict.fromkeys(dims))
    groups: dict[tuple[str, ...], dict[tuple[str, ...], list[Any]]] = {d: {} for d in dims}
    periods = {name: [0, 0, 0, 0, 0.0, 0.0, 0, 0, set()]
               for name in ("today", "this week", "this month", "all time")}
    prices: dict[Any, Any] = {}
    weeks: dict[str, str] = {}
    for unit, row in state.buckets(filters):
        model, day, aid, printed, n, i, o, cr, cw, cost = row
        attrs = state.attrs[aid]
        est, unpriced = 0.0, 0
        if not printed:
            cost, unpriced = estimated_cost(prices, table, model, n, i, o, cr, cw)
            est = cost
        targets = [periods["all time"]]
        if day >= starts["this month"]:
            targets.append(periods["this month"])
        if day >= starts["this week"]:
            targets.append(periods["this week"])
            if day >= starts["today"]:
                targets.append(periods["today"])
        for d, rows in groups.items():
            key = tuple(_label(x, unit, row, attrs, weeks) for x in d)
            targets.append(rows.setdefault(key, [0, 0, 0, 0, 0.0, 0.0, 0, 0, set()]))
        for v in targets:
            for j, x in enumerate((i, o, cr, cw, cost, est, unpriced, n)):
                v[j] += x
            v[8].add(unit[0])

    def row(v: list[Any]) -> Row:
        return Row(*v[:8], sessions=len(v[8]))

    return Report(total=row(periods["all time"]),
                  groups={d: {k: row(v) for k, v in rows.items()} for d, rows in groups.items()},
                  periods={name: row(v) for name, v in periods.items()},
                  skipped_lines=state.stats.skipped,
                  first_bad_lines=list(state.stats.first_bad_lines),
                  records_read=state.stats.good)


def same(a: Report, b: Report) -> None:
    """Equal to the last bit of every float, keys in the same order."""
    assert repr(a.total) == repr(b.total)
    assert repr(a.periods) == repr(b.periods)
    assert list(a.groups) == list(b.groups)
    for d in a.groups:
        assert repr(sorted(a.groups[d].items())) == repr(sorted(b.groups[d].items())), d
    assert (a.skipped_lines, a.first_bad_lines, a.records_read) == (
        b.skipped_lines, b.first_bad_lines, b.records_read)


def odd_records(now: datetime, mystery_model: bool = True) -> list[str]:
    """What a generated year lacks: names that are not ASCII (json escapes them),
    DEL, a tiny cost (2.5e-05: msgspec and json spell it differently), a model
    without a price (rates learned from its printed costs), tags."""
    out = []
    for k in range(60):
        # The first half recent (live), the second settled (60+ days old).
        ago = k % 9 if k < 30 else 60 + k % 9
        ts = (now - timedelta(days=ago, minutes=k)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        odd = "odd" if k < 30 else "old"
        mystery = k % 3 == 0 and mystery_model
        i, o = (k * 1000 + 7, k * 50 + 3) if mystery else (k * 3, k)
        if mystery:  # printed at $3/$15 a million (learned), or not printed (priced so)
            cost = (3 * i + 15 * o) / 1e6 if k % 2 else None
        else:
            cost = (2.5e-05 if k % 4 == 1 else 0.001 * k + 1e-07) if k % 2 else None
        out.append(UsageRecord(
            ts=ts, session=f"tiny-{k}" if cost == 2.5e-05 else (
                f"{odd}-{k % 6}\x7f" if k % 5 == 0 else f"{odd}-{k % 6}é"),
            source="transcript" if mystery else "pty",
            model="claude-mystery-9" if mystery else "claude-sonnet-4-5",
            input_tokens=i, output_tokens=o, cost_usd=cost,
            project=["café ☕", "日本", "plain", "emoji 😀"][k % 4],
            tags={"team": "ü" if k % 2 else "a"}).to_json())
    return out


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A realistic journal (bench/gen_journal.py: a year of sessions up to now,
    torn lines among them) with the odd records; its rollup written, history archived."""
    j = tmp_path_factory.mktemp("year") / "journal.jsonl"
    gen = gen_journal()
    now = datetime.now(UTC)
    gen.START = (now - timedelta(days=120)).replace(hour=0, minute=0, second=0, microsecond=0)
    with open(j, "w", encoding="utf-8") as out:
        gen.generate(out, 30_000, seed=3, corrupt_every=7_000)
        out.write("\n".join(odd_records(now)) + "\n")
    rollup.load_state(j, tz=UTC)  # writes the rollup: history is archived
    return j


def _year(folder: Path, mystery_model: bool) -> Path:
    j = folder / "journal.jsonl"
    gen = gen_journal()
    now = datetime.now(UTC)
    gen.START = (now - timedelta(days=120)).replace(hour=0, minute=0, second=0, microsecond=0)
    with open(j, "w", encoding="utf-8") as out:
        gen.generate(out, 30_000, seed=3, corrupt_every=7_000)
        out.write("\n".join(odd_records(now, mystery_model)) + "\n")
    rollup.load_state(j, tz=UTC)  # writes the rollup: history is archived
    return j


@pytest.fixture
def priced_year(tmp_path: Path) -> Path:
    """The same, every model with a list price: `usage --json` then reads the
    settled history's saved sums (report._usage_json_settled)."""
    return _year(tmp_path, mystery_model=False)


DIM_SETS = [(), (("week",),), (("model", "day"),), (("tag:team",), ("agent",)),
            (("source",), ("project", "session"))]


@pytest.mark.parametrize("extra", DIM_SETS)
@pytest.mark.parametrize("use_cache", [True, False])
def test_usage_json_is_the_reports_json_as_before(year: Path, extra: tuple[tuple[str, ...], ...],
                                                   use_cache: bool) -> None:
    state = rollup.load_state(year, use_cache=use_cache, tz=UTC)
    if use_cache:
        assert state.archive is not None and state.archive.rows  # settled history read
    table = default_table()
    today = datetime.now(UTC).date()
    dims = [("model",), ("project",), *STANDARD_GROUPS, *extra]
    made = make_report(state, dims=dims, today=today, table=table)
    # Rates are learned for the model without a price, as make_report learns them.
    assert made.table is not None and "claude-mystery-9" in made.table.learned
    same(made, reference_report(state, dims, None, today, made.table))
    expected = json.dumps(report_json(made, extra), indent=2)
    assert "\\u00e9" in expected and "\\u007f" in expected and "2.5e-05" in expected
    assert usage_json(state, extra, today=today, table=table) == expected.encode()


@pytest.mark.parametrize("filters", [
    Filters(projects=("plain",)), Filters(models=("sonnet",)), Filters(tags=(("team", "ü"),)),
    Filters(since_day=(datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%d")),
    Filters(agents=("main",))])
def test_filtered_reports_as_before(year: Path, filters: Filters) -> None:
    state = rollup.load_state(year, tz=UTC)
    table = default_table()
    today = datetime.now(UTC).date()
    dims = [*STANDARD_GROUPS, ("week",), ("model", "project")]
    made = make_report(state, dims=dims, filters=filters, today=today, table=table)
    assert made.total.records
    same(made, reference_report(state, dims, filters, today, made.table or table))
    expected = json.dumps(report_json(made, dims[4:]), indent=2).encode()
    assert usage_json(state, dims[4:], filters=filters, today=today, table=table) == expected


@pytest.mark.parametrize("journal", ["year", "priced_year"])
def test_the_command_prints_it(journal: str, tmp_path: Path,
                               request: pytest.FixtureRequest) -> None:
    """`claudewrap usage --json` (the console's process, its rollup warm) prints
    json.dumps(report_json(...), indent=2) of the report made as before."""
    year = request.getfixturevalue(journal)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDEWRAP_")}
    env.update(CLAUDEWRAP_JOURNAL=str(year), TZ="UTC", PYTHONPATH=str(ROOT),
               CLAUDEWRAP_PRICES=str(tmp_path / "absent.toml"))
    for args in (["--json"], ["--json"], ["--json", "--by", "week", "--project", "日本"]):
        out = subprocess.run([sys.executable, "-m", "claudewrap", "usage", *args], env=env,
                             capture_output=True, timeout=120, check=True)
        state = rollup.load_state(year, tz=UTC)
        filters = Filters(projects=tuple(args[4:]))
        extra = [("week",)] if "--by" in args else []
        table = make_report(state, filters=filters, table=default_table()).table
        assert table is not None
        ref = reference_report(state, [*STANDARD_GROUPS, *extra], filters,
                               datetime.now(UTC).date(), table)
        assert out.stdout == (json.dumps(report_json(ref, extra), indent=2) + "\n").encode()
        assert b"skipped" in out.stderr  # the torn lines, said as before


def test_a_lone_surrogate_in_a_name_goes_json_s_way() -> None:
    state = UsageState(UTC)
    state.add_records([UsageRecord(ts="2026-07-01T10:00:00.000Z", session="s\udce9",
                                   source="pty", model="claude-sonnet-4-5", input_tokens=5,
                                   project="caf\udce9")])
    made = make_report(state, dims=STANDARD_GROUPS, today=date(2026, 7, 2))
    expected = json.dumps(report_json(made), indent=2).encode()
    assert b"\\udce9" in expected
    assert usage_json(state, today=date(2026, 7, 2)) == expected


def test_an_empty_journal() -> None:
    state = UsageState(UTC)
    made = make_report(state, dims=STANDARD_GROUPS, today=date(2026, 7, 2))
    same(made, reference_report(state, STANDARD_GROUPS, None, date(2026, 7, 2), default_table()))
    assert usage_json(state) == json.dumps(report_json(made), indent=2).encode()


# --- the float and string spelling -----------------------------------------------------


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_json_float_is_written_as_json_writes_it(x: float) -> None:
    assert msgspec.json.encode(lines.json_float(x)) == json.dumps(x).encode()
    r = round(x, 6)
    assert msgspec.json.encode(lines.json_float(r)) == json.dumps(r).encode()


@pytest.mark.parametrize("x", [1e-4, 9.999999e-05, 1e16, 9999999999999998.0, 1e-06, 5e-324,
                               1.7976931348623157e308, -2.5e-05, -0.0, 0.0, 123.456])
def test_json_float_at_the_edges(x: float) -> None:
    assert msgspec.json.encode(lines.json_float(x)) == json.dumps(x).encode()


def test_what_json_writes_as_nan_or_infinity_goes_json_s_way() -> None:
    for x in (math.inf, -math.inf, math.nan):
        assert lines.indented_spelled({"a": lines.json_float(x)}) is None


def _spelled(value: Any) -> Any:
    if isinstance(value, float):
        return lines.json_float(value)
    if isinstance(value, list):
        return [_spelled(v) for v in value]
    if isinstance(value, dict):
        return {k: _spelled(v) for k, v in value.items()}
    return value


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=4),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_indented_spelled_is_json_dumps_indent_2(value: Any) -> None:
    """Any text (not ASCII, DEL, control characters, lone surrogates: then None)."""
    got = lines.indented_spelled(_spelled(value))
    expected = json.dumps(value, indent=2)
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate: msgspec refuses it
        assert got is None
        return
    assert got == expected.encode()


def test_every_character_is_escaped_as_json_escapes_it() -> None:
    text = "".join(chr(c) for c in range(0x800)) + "☕😀\U0010ffff\u2028\u2029\ufeff"
    obj = {text: [text, {"k" + text: 1.5}]}
    assert lines.indented_spelled(_spelled(obj)) == json.dumps(obj, indent=2).encode()


def test_unknown_model_and_no_project_labels(year: Path) -> None:
    """(The labels the report gives what has none.)"""
    state = UsageState(UTC)
    state.add_records([UsageRecord(ts="2026-07-01T10:00:00.000Z", session="s", source="pty",
                                   model=None, input_tokens=5, cost_usd=0.5)])
    data = json.loads(usage_json(state, today=date(2026, 7, 2)))
    assert list(data["by_model"]) == [UNKNOWN_MODEL]
    assert list(data["by_project"]) == [NONE]


# --- the settled history's saved sums ---------------------------------------------------


def expected_json(journal: Path, table: PriceTable | None = None) -> bytes:
    state = rollup.load_state(journal, tz=UTC)
    table = table or default_table()
    ref = reference_report(state, STANDARD_GROUPS, None, datetime.now(UTC).date(), table)
    return json.dumps(report_json(ref), indent=2).encode()


def sums_file(journal: Path) -> Path:
    return journal.with_name(journal.name + rollup.SUFFIX + "-sums")


def test_saved_sums_give_the_same_text(priced_year: Path) -> None:
    expected = expected_json(priced_year)
    assert "\\u00e9" in expected.decode() and "2.5e-05" in expected.decode()
    for _ in range(2):  # made and saved, then read
        state = rollup.load_state(priced_year, tz=UTC)
        assert _usage_json_settled(state, default_table(), priced_year) == expected
        assert sums_file(priced_year).exists()
        state = rollup.load_state(priced_year, tz=UTC)
        assert usage_json(state, journal=priced_year) == expected
    state = rollup.load_state(priced_year, tz=UTC)
    made = rollup.read_sums(priced_year)
    assert made is not None
    # Only settled sessions are in it; the live ones are summed each time.
    saved = json.loads(bytes(made[0]))["sessions"]
    live = {k[0] for k in state.units}
    assert saved and live and not live & set(saved)
    # Odd names and a tiny cost among the settled sessions and the live ones alike.
    for names in (saved, live):
        assert any(k.startswith("tiny-") for k in names)
        assert any("é" in k for k in names) and any("\x7f" in k for k in names)


def test_saved_sums_made_again_when_a_price_changes(priced_year: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    state = rollup.load_state(priced_year, tz=UTC)
    before = usage_json(state, journal=priced_year)  # saved with the shipped prices
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."claude-sonnet-4-5"]\ninput = 1.25\noutput = 7.5\n'
                      'cache_read = 0.1\ncache_write_5m = 1.5\n')
    monkeypatch.setenv("CLAUDEWRAP_PRICES", str(prices))
    table = default_table()
    assert table.lookup("claude-sonnet-4-5").input == 1.25
    expected = expected_json(priced_year, table)
    assert expected != before
    state = rollup.load_state(priced_year, tz=UTC)
    assert usage_json(state, table=table, journal=priced_year) == expected


def test_saved_sums_made_again_when_history_changes(priced_year: Path) -> None:
    state = rollup.load_state(priced_year, tz=UTC)
    usage_json(state, journal=priced_year)
    settled = json.loads(bytes(rollup.read_sums(priced_year)[0]))["sessions"]  # type: ignore[index]
    # A settled session resumed: the archive comes back, then settles without it.
    with open(priced_year, "a", encoding="utf-8") as out:
        out.write(UsageRecord(ts=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                              session=settled[0], source="pty", model="claude-sonnet-4-5",
                              input_tokens=123_456, cost_usd=1.5).to_json() + "\n")
    for _ in range(2):
        state = rollup.load_state(priced_year, tz=UTC)
        expected = json.dumps(report_json(reference_report(
            state, STANDARD_GROUPS, None, datetime.now(UTC).date(), default_table())),
            indent=2).encode()
        assert usage_json(state, journal=priced_year) == expected
    assert settled[0] not in json.loads(
        bytes(rollup.read_sums(priced_year)[0]))["sessions"]  # type: ignore[index]


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "fifo"])
def test_damaged_saved_sums_are_not_believed(priced_year: Path, damage: str) -> None:
    expected = expected_json(priced_year)
    state = rollup.load_state(priced_year, tz=UTC)
    usage_json(state, journal=priced_year)
    path = sums_file(priced_year)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x20
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[: len(data) - 9]))
    elif damage == "garbage":
        path.write_bytes(b"not a sums file\n")
    else:
        path.unlink()
        os.mkfifo(path)
    state = rollup.load_state(priced_year, tz=UTC)
    assert usage_json(state, journal=priced_year) == expected
    if damage == "fifo":
        assert path.is_fifo()  # left alone, not waited on


@pytest.mark.parametrize("live", [[], ["a0"], ["zz"], ["a0", "m3x", "m3y", "zz"]])
def test_live_sessions_in_their_place_among_the_settled(tmp_path: Path, live: list[str]) -> None:
    now = datetime.now(UTC)

    def at(days: float) -> str:
        return (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    j = tmp_path / "journal.jsonl"
    records = [UsageRecord(ts=at(100 - k), session=f"m{k}", source="pty",
                           model="claude-sonnet-4-5", input_tokens=1000 * k + 1,
                           cost_usd=0.25 * k if k % 2 else None, project=f"p{k % 2}")
               for k in range(1, 6)]
    records += [UsageRecord(ts=at(0.01 * (n + 1)), session=name, source="pty",
                            model="claude-sonnet-4-5", input_tokens=77, project="p1")
                for n, name in enumerate(live)]
    j.write_text("".join(r.to_json() + "\n" for r in records))
    rollup.load_state(j, tz=UTC)
    for _ in range(2):
        state = rollup.load_state(j, tz=UTC)
        assert state.archive is not None and {k[0] for k in state.units} == set(live)
        assert _usage_json_settled(state, default_table(), j) == expected_json(j)
