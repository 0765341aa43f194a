"""5-hour blocks of usage, as ccusage makes them (`claudewrap usage --by block`).

For people without the plan-limit windows from Claude Code's status line
(API keys, older versions: claudewrap.usage.limits), a block is the next best thing:
a block starts at the first request after the previous block ended, floored to
the UTC hour, and lasts 5 hours; a request more than 5 hours after its block's
start opens the next one (ccusage's ``identifySessionBlocks``: its second test,
a gap of more than 5 hours since the last request, is implied by the first).

What counts is what the summing rule counts (claudewrap.usage.report, the reference in
claudewrap.usage.rule): a :class:`TimeState` is the usage state (usage/state.py) keyed by each
record's UTC time, to the millisecond, where reports keep the local day, so the
rule's rows keep their times (a running total's rise at the record that shows
it, rule 4's remainder at the screen total it comes from). Rows are then
assigned to blocks in time order. The rollup cache is kept by day, so this is a
full read of the journal: about as long as `usage --no-cache` (see
:func:`read_blocks`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path

from claudewrap.usage.filters import Filters
from claudewrap.usage.pricing import PriceTable
from claudewrap.usage.report import Report, Row, make_report
from claudewrap.usage.state import UsageState, no_cyclic_gc

LENGTH = timedelta(hours=5)
_TIME = 23  # "YYYY-MM-DDTHH:MM:SS.mmm": a journal ts without its "Z"


class TimeState(UsageState):
    """the usage state (usage/state.py) with each record's UTC time (journal form, to the
    millisecond, without the ``Z``) where reports keep the local day."""

    def __init__(self, tz: tzinfo | None = None) -> None:
        super().__init__(tz)
        self.tz_key = "claudewrap-blocks-time-1"  # never mistaken for a day state
        self._prefix = _TIME  # what UsageState memoises day() by: nothing to share

    def day(self, ts: str) -> str:
        return ts[:_TIME]


def block_starts(times: Iterable[str]) -> dict[str, str]:
    """Each time (journal form, at least to the hour) -> the start of its block,
    ``YYYY-MM-DDTHH:00:00.000`` (UTC): the first time floored to the hour; a time
    more than 5 hours after its block's start begins the next block."""
    out: dict[str, str] = {}
    start = end = ""
    for t in sorted(set(times)):
        if not start or t[:_TIME] > end:  # same form and length: compared as strings
            start = t[:13] + ":00:00.000"
            try:
                end = (datetime.fromisoformat(start + "+00:00") + LENGTH).strftime(
                    "%Y-%m-%dT%H:%M:%S.000")
            except ValueError:  # not a time after all: a block of its own
                end = start
        out[t] = start
    return out


@dataclass
class Block:
    start: datetime  # aware, UTC
    row: Row  # what counts in it (sessions: the sessions with usage in it)
    last: datetime  # the last usage in it

    @property
    def end(self) -> datetime:
        return self.start + LENGTH


@dataclass
class Blocks:
    blocks: list[Block]  # oldest first
    total: Row
    report: Report  # the whole journal's (skipped lines, records read, prices used)


def _utc(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text + "+00:00")
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)


def blocks_of(state: UsageState, *, filters: Filters | None = None,
              table: PriceTable | None = None, since: str | None = None,
              until: str | None = None) -> Blocks:
    """The blocks of a :class:`TimeState`: the usage ``filters`` match, from
    ``since`` to before ``until`` (journal-form UTC strings), priced as reports
    price it (claudewrap.usage.report.make_report)."""
    dims = ("day", "session")
    report = make_report(state, dims=[dims], filters=filters, table=table,
                         count_sessions=False)
    lo = since[:_TIME] if since else None
    hi = until[:_TIME] if until else None
    rows = {k: r for k, r in report.groups[dims].items()
            if (lo is None or k[0] >= lo) and (hi is None or k[0] < hi)}
    starts = block_starts(k[0] for k in rows)
    by_start: dict[str, tuple[Row, set[str], list[str]]] = {}
    total = Row()
    every: set[str] = set()
    for (when, session), row in rows.items():
        acc, sessions, last = by_start.setdefault(starts[when], (Row(), set(), [when]))
        acc.add(row)
        total.add(row)
        sessions.add(session)
        every.add(session)
        last[0] = max(last[0], when)
    blocks = []
    for start in sorted(by_start):
        acc, sessions, last = by_start[start]
        acc.sessions = len(sessions)
        blocks.append(Block(_utc(start), acc, _utc(last[0])))
    total.sessions = len(every)
    return Blocks(blocks, total, report)


def read_blocks(journal: Path, *, filters: Filters | None = None,
                table: PriceTable | None = None, since: str | None = None,
                until: str | None = None) -> Blocks:
    """The blocks of the journal at ``journal`` (a missing one has none).

    A full read of the journal into a :class:`TimeState` (one process: the
    parallel reader builds day states): about 1 s per 100k records here, as
    `usage --no-cache`. Raises JournalError when it cannot be read.
    """
    from claudewrap.store.files import open_regular
    from claudewrap.store.journal import read_error
    from claudewrap.usage import rollup

    state = TimeState()
    try:
        fd = open_regular(journal, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return blocks_of(state, filters=filters, table=table, since=since, until=until)
    except OSError as exc:
        raise read_error(journal, exc) from None
    try:
        with no_cyclic_gc():
            rollup.scan(fd, state, 0)
            return blocks_of(state, filters=filters, table=table, since=since, until=until)
    finally:
        os.close(fd)


__all__ = ["LENGTH", "Block", "Blocks", "TimeState", "block_starts", "blocks_of",
           "read_blocks"]
