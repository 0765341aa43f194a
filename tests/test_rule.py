"""The plain reference of the summing rule (claudewrap.usage.rule) == every fast path.

Random journals with requests seen by several sources, redrawn totals, sessions
across midnight, take-backs, resumed sessions and incomplete transcripts are summed
by the reference and by UsageState: in memory, from the file in one read, in two
processes, from the rollup after random appends, and a parallel read after the
rollup (whose second process sees the rollup's request ids).
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claudewrap.store.records import UsageRecord
from claudewrap.usage import rollup
from claudewrap.usage.report import make_report
from claudewrap.usage.rule import SUMMARY, effective_rows, undated, unit_of
from claudewrap.usage.state import UsageState

if TYPE_CHECKING:
    from claudewrap.usage.rule import RowKey

UTC = timezone.utc
WRAPPERS = ["w0", "w1", "w2"]
CLAUDES = ["c0", "c1", "c2"]
# OpenTelemetry names a model with its date where /cost shows it without.
MODELS = ["claude-sonnet-4-5", "claude-opus-4-5", None, "claude-sonnet-4-5-20250929"]
PROJECTS = {"w0": "api", "w1": "web", "w2": None, "c0": "api", "c1": "cli", "c2": None}


def day(ts: str) -> str:
    return ts[:10]


@st.composite
def journals(draw: st.DrawFn) -> list[UsageRecord]:
    """Records in journal order, shaped like what the sources write.

    Drawn from a seeded generator: hypothesis's own draws per field made a
    journal cost 25-330 ms to generate; this costs well under 1 ms.
    """
    rnd = random.Random(draw(st.integers(0, 2**32)))
    n = draw(st.integers(1, 60))
    minute = rnd.randint(23 * 60 - 30, 23 * 60 + 30)  # around midnight
    out = []
    for _ in range(n):
        minute += rnd.randint(0, 7)
        ts = f"2026-11-{1 + minute // 1440:02d}T{minute % 1440 // 60:02d}:{minute % 60:02d}:00.000Z"
        source = rnd.choice(["otel", "transcript", "pty", "scan", "manual", "statusline",
                             "claude_json"])
        session = rnd.choice(WRAPPERS + CLAUDES)
        claude = rnd.choice([None, *CLAUDES])
        if source == "transcript" and rnd.random() < 0.5:
            session = claude = claude or "c0"  # imported: its own session
        if source in ("statusline", "claude_json"):  # a Claude session's own summary
            session = claude = claude or "c1"
        total = source in ("pty", "scan", "manual") and rnd.random() < 0.5 or (
            source in ("statusline", "claude_json"))
        approximate = total and source in ("pty", "scan") and rnd.random() < 0.5
        cost_alone = source == "statusline" or (total and rnd.random() < 0.15)
        rid = None if total else rnd.choice([None, "r0", "r1", "r2", "r3", "r4"])
        cost = None if rnd.random() < 0.4 else round(rnd.uniform(0, 2), 4)
        if cost_alone:  # `Total cost:` without rows, or the status line's cost
            cost = round(rnd.uniform(0, 3), 4)
        out.append(UsageRecord(
            ts=ts, session=session, source=source, kind="total" if total else "delta",
            model=None if cost_alone else rnd.choice(MODELS),
            input_tokens=0 if cost_alone else rnd.randint(0, 3000),
            output_tokens=0 if cost_alone else rnd.randint(0, 3000),
            cache_read_tokens=0 if cost_alone else rnd.choice([0, rnd.randint(0, 2_000_000)]),
            cache_write_tokens=0 if cost_alone else rnd.randint(0, 3000), cost_usd=cost,
            cost_estimated=cost is not None and rnd.random() < 0.1,
            approximate=approximate, request_id=rid, claude_session=claude,
            project=PROJECTS[session], tags={"k": session[-1]} if session < "w" else {},
            # where the tokens went: exact sources only, as Claude Code tells them
            agent=rnd.choice([None, None, "general-purpose", "compact"])
            if source in ("otel", "transcript") else None,
            command=rnd.choice([None, None, "review"]) if source in ("otel", "transcript")
            else None))
    return out


def fast_rows(state: UsageState) -> dict[RowKey, list[Any]]:
    out: dict[RowKey, list[Any]] = {}
    for unit, row in state.buckets():
        key = (unit, row[0], row[1], state.attrs[row[2]], bool(row[3]))
        have = out.setdefault(key, [0, 0, 0, 0, 0, 0.0])
        for j in range(6):
            have[j] += row[4 + j]
    return out


def same(a: dict[RowKey, list[Any]], b: dict[RowKey, list[Any]]) -> bool:
    if set(a) != set(b):
        return False
    return all(a[k][:5] == b[k][:5] and math.isclose(a[k][5], b[k][5], abs_tol=1e-9)
               for k in a)


def write(path: Path, records: list[UsageRecord], mode: str = "w") -> None:
    with open(path, mode, encoding="utf-8") as fh:
        fh.write("".join(r.to_json() + "\n" for r in records))


@contextmanager
def parallel_at(fraction: float | None) -> Iterator[None]:
    """Force the two-process read, split at ``fraction`` of the journal's bytes."""
    if fraction is None:
        yield
        return
    saved = rollup._PARALLEL, rollup._line_start_after
    rollup._PARALLEL = 1

    def split(fd: int, pos: int) -> int | None:
        # ``pos`` is the middle of what is left to read: start + half, size - half.
        half = os.fstat(fd).st_size - pos
        return saved[1](fd, pos + int((2 * fraction - 1) * half))

    rollup._line_start_after = split
    try:
        yield
    finally:
        rollup._PARALLEL, rollup._line_start_after = saved


SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@SETTINGS
@given(journals())
def test_in_memory_state_is_the_reference(records: list[UsageRecord]) -> None:
    state = UsageState(UTC)
    state.add_records(records)
    assert same(fast_rows(state), effective_rows(records, day))


@SETTINGS
@given(journals(), st.sampled_from([None, 0.2, 0.5, 0.8]))
def test_a_full_read_of_the_file_is_the_reference(tmp_path_factory: Any,
                                                  records: list[UsageRecord],
                                                  fraction: float | None) -> None:
    path = tmp_path_factory.mktemp("j") / "journal.jsonl"
    write(path, records)
    with parallel_at(fraction):
        state = rollup.load_state(path, use_cache=False, tz=UTC)
    assert same(fast_rows(state), effective_rows(records, day))


def summary_numbers(state: UsageState) -> dict[str, list[Any]]:
    """The default table's numbers (the report's fast path: the archive's cells)."""
    report = make_report(state, dims=[("model",), ("project",)], count_sessions=False)
    out = {}
    for dim, rows in report.groups.items():
        for key, row in rows.items():
            out[f"{dim}{key}"] = [row.input_tokens, row.output_tokens, row.cache_read_tokens,
                                  row.cache_write_tokens, row.records, row.unpriced_records,
                                  row.cost_usd]
    return out


def same_summary(a: dict[str, list[Any]], b: dict[str, list[Any]]) -> bool:
    return a.keys() == b.keys() and all(
        a[k][:6] == b[k][:6] and math.isclose(a[k][6], b[k][6], abs_tol=1e-9) for k in a)


@SETTINGS
@given(journals(), st.lists(st.integers(0, 60), min_size=1, max_size=3),
       st.sampled_from([None, 0.3, 0.7]), st.sampled_from([35, -3650]))
def test_the_rollup_after_random_appends_is_the_reference(
        tmp_path_factory: Any, records: list[UsageRecord], cuts: list[int],
        fraction: float | None, settle_days: int) -> None:
    """settle_days -3650: every save archives every link group (state.Archive), so
    that appends put archived units back and reports read the archive's rows and cells."""
    path = tmp_path_factory.mktemp("j") / "journal.jsonl"
    path.write_text("")
    saved = rollup._REWRITE, rollup.SETTLE_DAYS
    rollup._REWRITE = 0  # save the rollup after every read
    rollup.SETTLE_DAYS = settle_days
    try:
        start = 0
        for cut in [*sorted(c % (len(records) + 1) for c in cuts), len(records)]:
            write(path, records[start:cut], mode="a")
            start = max(start, cut)
            with parallel_at(fraction):
                state = rollup.load_state(path, tz=UTC)
            assert same(fast_rows(state), effective_rows(records[:start], day))
            plain = rollup.load_state(path, tz=UTC, use_cache=False)
            assert same_summary(summary_numbers(state), summary_numbers(plain))
        if settle_days < 0 and records:
            again = rollup.load_state(path, tz=UTC)
            assert again.archive is not None and not again.units
            assert same(fast_rows(again), effective_rows(records, day))
    finally:
        rollup._REWRITE, rollup.SETTLE_DAYS = saved


def test_a_parallel_read_after_the_rollup_takes_back_the_right_record(tmp_path: Path) -> None:
    # The second process replaces a record the rollup counted (a better source of
    # the same request); the take-back must hit that record, not the line with
    # its number in the second process's own numbering.
    old = [UsageRecord(ts="2026-11-01T10:00:00.000Z", session="p", source="pty",
                       input_tokens=100 + k, request_id=f"r{k}") for k in range(20)]
    new = [UsageRecord(ts="2026-11-02T10:00:00.000Z", session="n", source="manual",
                       input_tokens=1000 * (k + 1)) for k in range(20)]
    new += [UsageRecord(ts="2026-11-02T11:00:00.000Z", session="o", source="otel",
                        input_tokens=7, request_id=f"r{k}") for k in range(5)]
    path = tmp_path / "journal.jsonl"
    write(path, old)
    rollup.load_state(path, tz=UTC)  # the rollup now holds r0..r19
    write(path, new, mode="a")
    expected = effective_rows(old + new, day)
    assert same(fast_rows(rollup.load_state(path, use_cache=False, tz=UTC)), expected)
    otel_starts = path.stat().st_size - sum(len(r.to_json()) + 1 for r in new[20:])
    saved = rollup._REWRITE, rollup._PARALLEL, rollup._line_start_after
    rollup._REWRITE = 0
    rollup._PARALLEL = 1
    rollup._line_start_after = lambda fd, pos: otel_starts  # the second process: otel only
    try:
        state = rollup.load_state(path, tz=UTC)
    finally:
        rollup._REWRITE, rollup._PARALLEL, rollup._line_start_after = saved
    assert same(fast_rows(state), expected)
    total = make_report(state).total.input_tokens
    assert total == sum(100 + k for k in range(5, 20)) + 1000 * 210 + 5 * 7


@SETTINGS
@given(journals())
def test_the_floor_never_reports_less_than_a_displayed_block(records: list[UsageRecord]
                                                             ) -> None:
    # Per group of linked sessions and model, what counts is at least the most any
    # screen total that rule 2 set aside showed (beyond its rounding).
    exact = [r for r in records if r.source in ("otel", "transcript") and not r.approximate]
    seen_exactly = {k for r in exact for k in (r.session, r.claude_session or r.session)}
    links: dict[str, set[str]] = {}
    # A total's session as the rule groups it (a rounded screen total of a known
    # Claude session is that session's: rule 3).
    aside = [r for r in records if r.kind == "total" and r.source in SUMMARY and (
        unit_of(r)[0] in seen_exactly or unit_of(r)[2] in seen_exactly)]
    for r in exact + aside:
        a, b = unit_of(r)[0], unit_of(r)[2]
        links.setdefault(a, set()).add(b)
        links.setdefault(b, set()).add(a)

    def group(key: str) -> frozenset[str]:
        todo, seen = [key], {key}
        while todo:
            for nxt in links.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return frozenset(seen)

    rows = effective_rows(records, day)
    for r in aside:
        g = group(unit_of(r)[0])
        have = [0, 0, 0, 0]
        for (unit, model, _d, _a, _p), v in rows.items():
            if undated(model) == undated(r.model) and (unit[0] in g or unit[2] in g):
                for j in range(4):
                    have[j] += v[j + 1]
        shown = [r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens]
        for got, want in zip(have, shown):
            slack = (50_000 if want >= 999_950 else 50 if want >= 999.5 else 0.5) \
                if r.approximate else 0
            assert got >= want - slack, (r, have)
