"""Prometheus metrics of the journal: what `metrics`, `serve` and `export` expose.

The numbers follow the summing rule (one :class:`UsageState`), kept at minute
resolution for the last day so that the same state gives both the counters and
the recent rates. `status` (today and its rate) and `monitor` (its rate and the
sessions used in the window) read the same state (:func:`window_usage`): every
"last N minutes" is the last N minute buckets of one sum. Only the units of the
sessions concerned are summed (:func:`linked`: the rule links units only by
session and Claude session ids), and `serve` keeps the counters' sums by unit,
summing again only what the new lines touched:

- counters ``claude_api_tokens_{input,output,cache_read,cache_write}_total``,
  ``claude_api_cost_dollars_total`` (label ``estimated``: "true" for what
  claudewrap priced itself) and ``claude_api_records_total``, labelled
  ``model``, ``project``, ``source``, ``host`` (no session ids: bounded);
- gauges ``claude_tokens_per_minute`` (label ``type``) and
  ``claude_cost_per_hour_dollars`` over a recent window (default 15 min), for
  the series used in the last day (idle ones drop out: bounded),
  ``claude_sessions_active`` (live markers, claudewrap.wrap.live) and
  ``claude_journal_skipped_lines``;
- gauges ``claude_rate_limit_used_ratio`` (0-1) and
  ``claude_rate_limit_resets_timestamp_seconds``, labelled ``window``
  (``five_hour``, ``seven_day``) and ``host``: a Claude.ai plan's rate-limit
  windows as Claude Code's status line last gave them (claudewrap.usage.limits), only
  until the window resets (then the series ends: no stale value, no guess).

**Counters never go down for a given journal.** The summing rules can lower what
a series counts: an exact record replaces a rounded one from another source, a
session's first total replaces its deltas, a cheaper price file lowers an
estimate. Prometheus would read such a drop as a restart and count the whole
value again. So each counter is exported as the highest value it reached, and
usage that moved between series of the same project and host (an approximate
``pty`` total giving way to the exact ``transcript`` one) is not counted twice:
a series rises only by what the project's total rose beyond its highest value,
shared among the series that grew. A series that appears after the first export
(a new model, project or host) shows 0 once before its value, or increase()
would never count the usage that created it. The counters are kept in
``<journal>.counters`` (under a lock: `serve`, cron textfiles and `export` agree)
and start again from the journal when it is replaced, truncated or rewritten (as
:mod:`claudewrap.usage.rollup` tells a rewrite: the covered part's digest, or the same
size with another modification time): a real reset. ``--no-cache`` neither reads
nor writes that file: the counters are the journal's own numbers.

Reading is incremental: :class:`JournalMetrics` remembers its byte offset and
the journal's identity (a rotated, truncated or rewritten journal is read again
from the start) and keeps a cache of its state in ``<journal>.metrics`` (temp
file + ``os.replace``; losing it only costs time), so a scrape of a big journal
reads only the new lines. prometheus_client is imported only here.
"""

from __future__ import annotations

import fcntl
import math
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from claudewrap.plain import field, plain
from claudewrap.store.files import open_regular, read_regular
from claudewrap.store.journal import (
    JournalError,
    atomic_write,
    file_identity,
    read_error,
    remove_stale_temporaries,
)
from claudewrap.store.records import UsageRecord
from claudewrap.usage import limits, rollup
from claudewrap.usage.filters import Filters
from claudewrap.usage.lines import dumps, loads
from claudewrap.usage.pricing import Price, PriceTable, default_table
from claudewrap.usage.report import Report, Row, estimated_cost
from claudewrap.usage.ridindex import IndexBroken
from claudewrap.usage.state import Archive, UsageState

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

LABELS = ("model", "project", "source", "host")
TOKEN_TYPES = ("input", "output", "cache_read", "cache_write")
COUNTERS = (*(f"tokens_{t}" for t in TOKEN_TYPES), "cost", "records")
DEFAULT_WINDOW = 15 * 60.0
MAX_WINDOW = 24 * 3600.0
UNKNOWN = "unknown"
STATE_DIR_ENV = "CLAUDEWRAP_STATE_DIR"

_RETENTION = MAX_WINDOW + 120  # minute buckets kept; older usage is summed in one
_COMPACT_EVERY = 600.0
_OLD = "-"  # the bucket "day" of usage before the retention (sorts before any minute)
_SETTLED = "0"  # between _OLD and any minute: a group with only old rows settles
# A group with no usage in the last half hour settles too: its rows go to the archive
# (read only when needed) and its minutes to the state's WindowIndex, so that a warm
# `status` neither loads nor walks a heavy day's finished sessions (bench/readers.py
# --shape today-heavy, 1M + 50k records today: status start+235 -> see the commit).
_QUIET = 30 * 60.0
_REWRITE = 1 << 20  # new journal bytes worth rewriting the state cache for
# 13: the WindowIndex's running totals, projects and series, attributions as one string;
# 12: quiet groups settled, with their WindowIndex; 11: first lines of ids; 10: archive cells, parts read when needed; 9: settled groups archived; 8: each session's last record time
# (last_ts); 7: rollup's cache format 8 (issue 13)
_MAGIC = b"claudewrap-metrics 13\n"
# The counters' file: this line with the CRC-32 of the JSON after it (issue 13: a
# corrupted digit there would be exported for ever, counters never going down).
# 4: each label set once, a column of values per family (3 wrote every family's
# label sets again: its parse was ~30 ms of a `metrics` at 1M records); 3 is still read.
_COUNTERS_MAGIC = b"claudewrap-counters 4 "
_COUNTERS_MAGIC_3 = b"claudewrap-counters 3 "
_LOCK_TIMEOUT = 2.0

Key = tuple[str, ...]
StateT = TypeVar("StateT", bound=UsageState)


def _minute(when: float) -> str:
    """The UTC minute of a Unix time, as the first 16 characters of a journal ``ts``."""
    return time.strftime("%Y-%m-%dT%H:%M", time.gmtime(when))


def _minute_start(minute: str) -> float:
    # (fromisoformat: strptime's import and parse were ~5 ms of a `metrics`)
    return datetime.fromisoformat(minute + ":00+00:00").timestamp()


class MinuteState(UsageState):
    """the usage state (usage/state.py), with the UTC minute where reports keep the local day.

    Usage older than a day is summed in one bucket (``_OLD``) by :meth:`compact`,
    so the state stays as small as the rollup's.
    """

    KEY = "claudewrap-metrics-minutes-1"

    def __init__(self, tz: tzinfo | None = None, since: str | None = None,
                 until: str | None = None, now: float | None = None) -> None:
        super().__init__(tz, since, until)
        self.tz_key = self.KEY  # a saved state is only valid for this class
        self._prefix = 16  # UsageState memoises day() by this prefix of ts
        self.cutoff = _minute((time.time() if now is None else now) - _RETENTION)
        # Each session's (and Claude session's) newest record time in the retention:
        # which of the sessions used in a minute was last (`monitor` lists the most
        # recent first), and which sessions a window needs (:meth:`around`).
        self.last_ts: dict[str, str] = {}
        # The session and Claude session ids of the records fed or taken back since
        # the caller last cleared it: the units whose rows may have changed are
        # those linked to them (JournalMetrics keeps the counters' sums by unit).
        self.touched: set[str] = set()
        self._view: tuple[tuple[Any, ...], str, MinuteState] | None = None
        self._live: tuple[tuple[Any, ...], str, MinuteState] | None = None
        # The minutes of the archive (settled groups) summed, while it is the one they
        # were summed from; and whether compact() changed an archive that was saved.
        self.window_index: WindowIndex | None = None
        self.archive_changed = False

    def _feed(self, objs: list[Any], first: int, positions: Sequence[int]) -> None:
        super()._feed(objs, first, positions)
        cutoff = self.cutoff
        last = self.last_ts
        touched = self.touched
        for r in objs:
            if r is None:
                continue
            touched.add(r.session)
            if r.claude_session:
                touched.add(r.claude_session)
            ts = r.ts
            if len(ts) != 24 or ts[23] != "Z":  # another spelling of a time: as _feed reads it
                odd = self._odd(r)
                if odd is None:
                    continue
                ts = odd.ts
            if ts >= cutoff:
                if ts > last.get(r.session, ""):
                    last[r.session] = ts
                cs = r.claude_session
                if cs and ts > last.get(cs, ""):
                    last[cs] = ts

    def _subtract(self, r: UsageRecord) -> None:
        # Rule 1 takes back a record that a better source replaced: its unit changes,
        # though it may share no session id with the record that replaced it.
        self.touched.add(r.session)
        if r.claude_session:
            self.touched.add(r.claude_session)
        super()._subtract(r)

    def around(self, since: str) -> MinuteState:
        """:meth:`_around`, kept until the state changes: a view from an earlier time
        serves a later one too (it holds whole linked groups; the window's rows are
        picked by their minute). `status` asks for today and for its window."""
        key = (self.stats.lines, self.cutoff, len(self.units))
        if self._view is None or self._view[0] != key or self._view[1] > since:
            self._view = (key, since, self._around(since))
        return self._view[2]

    def _around(self, since: str) -> MinuteState:
        """This state with only the units that can count after ``since`` (a journal
        time prefix): those of the sessions with records since then, and every unit
        that shares a session or Claude session id with them, and so on (the rule
        links units only through those ids). Their rows are the same as in the
        whole state; a window's sum then costs what the window holds, not what
        the journal ever held (38 ms of a `status` at 100k records, all rows)."""
        return linked(self, {k for k, ts in self.last_ts.items() if ts >= since})

    def live_around(self, since: str) -> MinuteState:
        """:meth:`around` without the archive: the units (not settled) that can count
        after ``since``; the archive's share is its :class:`WindowIndex`'s."""
        # (Only those of sessions used since then: a view for today does not serve
        # the last 10 minutes, whose sessions are a few of the day's.)
        key = (self.stats.lines, self.cutoff, len(self.units))
        if self._live is None or self._live[0] != key or self._live[1] != since:
            units_only = _shallow(self)
            units_only.archive = None
            self._live = (key, since, linked(
                units_only, {k for k, ts in self.last_ts.items() if ts >= since}))
        return self._live[2]

    def index_archive(self) -> None:
        """Sum the archive's minutes again (after it changed: settle, compact)."""
        self.window_index = WindowIndex.build(self)

    def to_json(self) -> dict[str, Any]:
        index = self.window_index
        data = super().to_json()
        # The attributions as one JSON string: from_json decodes it straight into
        # tuples (a year's 5,700: 7 ms of a `status` as lists made tuples one by one).
        data["attrs"] = dumps(data["attrs"]).decode("utf-8")
        return {**data, "last_ts": self.last_ts,
                "window": index.to_json() if index is not None and index.valid(self) else None}

    @classmethod
    def from_json(cls, data: dict[str, Any], tz: tzinfo | None = None) -> MinuteState:
        attrs = data["attrs"]
        state = super().from_json({**data, "attrs": []} if isinstance(attrs, str) else data, tz)
        assert isinstance(state, MinuteState)
        if isinstance(attrs, str):
            state.attrs = _attributions(attrs)
            state._attr_ids = dict(zip(state.attrs, range(len(state.attrs))))
        state.last_ts = dict(data["last_ts"])
        if data.get("window") is not None and state.archive is not None:
            state.window_index = WindowIndex.from_json(data["window"], state.archive)
        return state

    def day(self, ts: str) -> str:
        key = ts[:16]
        value = key if key >= self.cutoff else _OLD
        days = self._days
        if len(days) > 50_000:  # a year of journal has that many active minutes
            days.clear()
        days[key] = value
        return value

    def compact(self, now: float, force: bool = False) -> None:
        """Sum the minute buckets that left the retention into the old bucket."""
        cutoff = _minute(now - _RETENTION)
        if not force and _minute_start(cutoff) - _minute_start(self.cutoff) < _COMPACT_EVERY:
            return
        self.cutoff = cutoff
        self._days.clear()
        # Only the units of sessions with records in the retention have minute rows:
        # looking at those alone keeps a warm load from going over every row the
        # journal ever made (0.38 s of a `status` at 1M records, cProfile).
        recent = [k for k in self.units if k[0] in self.last_ts or k[2] in self.last_ts]
        self.last_ts = {k: ts for k, ts in self.last_ts.items() if ts >= cutoff}
        for ukey in recent:
            saved = self.units[ukey]
            if isinstance(saved, list) and not any(
                    _OLD < row[1] < cutoff for rows in (saved[2], saved[3]) for row in rows):
                continue
            unit = self.working_unit(ukey)
            assert unit is not None
            for buckets in (unit.tot, unit.dlt):
                for key in [k for k in buckets if _OLD < k[1] < cutoff]:
                    vec = buckets.pop(key)
                    old_key = (key[0], _OLD, key[2], key[3])
                    have = buckets.get(old_key)
                    if have is None:
                        buckets[old_key] = vec
                    else:
                        for j in range(6):
                            have[j] += vec[j]
        # Settled groups' minutes that left the retention: in the old bucket too.
        archive = self.archive
        index = self.window_index
        if archive is None or (index is not None and index.valid(self)
                               and index.oldest >= cutoff):
            return
        if not any(_OLD < r[5] < cutoff for r in archive.rows):
            return
        archive.changed()
        for r in archive.rows:
            if _OLD < r[5] < cutoff:
                r[5] = _OLD
        self.index_archive()
        self.archive_changed = True  # JournalMetrics saves it (or each reader folds again)


def _attributions(text: str) -> list[tuple[Any, ...]]:
    """UsageState's ``attrs`` from the JSON of UsageState.to_json's list: ``(project,
    host, pane, ((tag, value), ...))`` tuples made by msgspec's decoder when this
    process has it loaded (the state's JSON was big enough), else as
    UsageState.from_json makes them."""
    if "msgspec" in sys.modules:
        import msgspec

        return msgspec.json.decode(text, type=list[tuple[Any, Any, Any,
                                                         tuple[tuple[Any, ...], ...]]])
    return [(a[0], a[1], a[2], tuple(map(tuple, a[3]))) for a in loads(text.encode("utf-8"))]


class WindowIndex:
    """The minute rows of a :class:`MinuteState`'s archive (its settled groups: whole
    link groups, the rule already applied), summed by minute, while that archive
    is unchanged: a window that ends after the newest of them adds one running
    total for them instead of walking every session-minute.

    ``minutes``: sorted ``[minute, records, input, output, cache read, cache
    write, printed cost]`` of the rows whose cost was printed, then ``model,
    records, input, output, cache read, cache write`` per model of the others
    (priced when asked: a price is linear in the tokens), each the running total
    of that minute and every later one (a window from a minute on to the end
    reads one row); ``sessions``: each wrapper session's newest minute and
    project, as window_usage folds them (``[minute, project]``; a session whose
    rows name different projects also keeps ``[minute, project, ...]`` of its
    rows in archive order, folded again for the window); ``series``: the
    metrics' series (model, project, source, host) with rows in the retention
    (the rate gauges list them).

    Why (bench/readers.py --shape today-heavy, 1M + 50k records today): `status`
    loaded and walked every minute of the day's sessions (26k rows, ~80 ms) to
    add up today; window_usage adds their running total instead, and the rate
    gauges (a window after the newest settled minute: the default 15 min) read
    none of the day's settled rows.
    """

    __slots__ = ("archive", "minutes", "newest", "oldest", "series", "sessions", "version")

    def __init__(self, archive: Archive, minutes: list[list[Any]],
                 sessions: dict[str, list[Any]], series: list[list[str]]) -> None:
        self.archive = archive
        self.version = archive.version
        self.minutes = minutes
        self.sessions = sessions
        self.series = series
        self.oldest = minutes[0][0] if minutes else "~"
        self.newest = minutes[-1][0] if minutes else ""

    @classmethod
    def build(cls, state: UsageState) -> WindowIndex | None:
        archive = state.archive
        if archive is None:
            return None
        attrs = state.attrs
        by_minute: dict[str, list[Any]] = {}
        unpriced: dict[str, dict[Any, list[int]]] = {}
        sessions: dict[str, list[Any]] = {}
        rows_of: dict[str, list[Any]] = {}  # each session's [minute, project, ...]
        series: dict[tuple[str, ...], None] = {}
        for r in archive.rows:
            minute = r[5]
            if minute == _OLD:
                continue
            n, i, o, cr, cw = r[8:13]
            if r[7]:
                acc = by_minute.get(minute)
                if acc is None:
                    acc = by_minute[minute] = [minute, 0, 0, 0, 0, 0, 0.0]
                acc[1] += n
                acc[2] += i
                acc[3] += o
                acc[4] += cr
                acc[5] += cw
                acc[6] += r[13]
            else:
                by_minute.setdefault(minute, [minute, 0, 0, 0, 0, 0, 0.0])
                models = unpriced.setdefault(minute, {})
                vec = models.get(r[4])
                if vec is None:
                    models[r[4]] = [n, i, o, cr, cw]
                else:
                    for j, x in enumerate((n, i, o, cr, cw)):
                        vec[j] += x
            a = attrs[r[6]]
            series[(_label(r[4]), _label(a[0]), r[1], _label(a[1]))] = None
            project = a[0]
            seen = sessions.get(r[0])  # window_usage's fold, over every minute
            if seen is None or minute >= seen[0]:
                sessions[r[0]] = [minute, project or (seen[1] if seen else None)]
            mine = rows_of.get(r[0])
            if mine is None:
                rows_of[r[0]] = [minute, project]
            else:
                mine += (minute, project)
        for sid, mine in rows_of.items():
            if any(mine[k] != mine[1] for k in range(3, len(mine), 2)):
                sessions[sid] += mine  # projects differ: the window's rows decide
        minutes = []
        run: list[Any] = [0, 0, 0, 0, 0, 0.0]
        run_models: dict[Any, list[int]] = {}
        for minute in sorted(by_minute, reverse=True):  # running totals from the newest
            row = by_minute[minute]
            for j in range(6):
                run[j] += row[j + 1]
            for model, vec in unpriced.get(minute, {}).items():
                have = run_models.get(model)
                if have is None:
                    run_models[model] = list(vec)
                else:
                    for j in range(5):
                        have[j] += vec[j]
            out = [minute, *run]
            for model, vec in run_models.items():
                out += [model, *vec]
            minutes.append(out)
        minutes.reverse()
        return cls(archive, minutes, sessions, [list(k) for k in series])

    def valid(self, state: UsageState) -> bool:
        """Whether this sums ``state``'s archive as it is."""
        return state.archive is self.archive and self.archive.version == self.version

    def to_json(self) -> list[Any]:
        return [self.minutes, self.sessions, self.series]

    @classmethod
    def from_json(cls, data: list[Any], archive: Archive) -> WindowIndex:
        return cls(archive, data[0], data[1], data[2])

    def add(self, table: PriceTable, first: str, v: list[Any],
            sessions: dict[str, tuple[str, str | None]]) -> bool:
        """Add the minutes from ``first`` on to window_usage's sums ``v`` and its
        ``sessions``; False (nothing added) if a model of them has no full price."""
        minutes = self.minutes
        lo, hi = 0, len(minutes)
        while lo < hi:  # the first minute on or after `first`
            mid = (lo + hi) // 2
            if minutes[mid][0] < first:
                lo = mid + 1
            else:
                hi = mid
        if lo == len(minutes):
            return True  # nothing settled in the window
        row = minutes[lo]
        n, i, o, cr, cw, printed = row[1:7]
        estimated = 0.0
        for at in range(7, len(row), 6):
            price = table.lookup(row[at])
            if price is None or None in (price.input, price.output, price.cache_read,
                                         price.cache_write_5m):
                return False
            mn, mi, mo, mcr, mcw = row[at + 1:at + 6]
            n += mn
            i += mi
            o += mo
            cr += mcr
            cw += mcw
            estimated += price.cost(mi, mo, mcr, mcw) or 0.0
        v[0] += i
        v[1] += o
        v[2] += cr
        v[3] += cw
        v[4] += printed + estimated
        v[5] += estimated
        v[7] += n
        for sid, seen in self.sessions.items():
            if seen[0] >= first:
                sessions[sid] = (seen[0], seen[1] if len(seen) == 2 else _fold(seen, first))
        return True


def _fold(seen: list[Any], first: str) -> str | None:
    """window_usage's project of a session from its rows ``seen[2:]`` (``minute,
    project, ...`` in the walk's order) on or after ``first``."""
    newest: str | None = None
    project = None
    for k in range(2, len(seen), 2):
        minute = seen[k]
        if minute >= first and (newest is None or minute >= newest):
            project = seen[k + 1] or project
            newest = minute
    return project


def _shallow(state: StateT) -> StateT:
    """``copy.copy(state)`` (a state has no slots nor copy hooks), without importing
    copy and weakref (~1 ms of a `status`)."""
    view = object.__new__(type(state))
    view.__dict__.update(state.__dict__)
    return view


def linked(state: StateT, keys: set[str]) -> StateT:
    """``state`` with only the units of the session ids ``keys`` and of every id
    linked to them by a unit (the rule links units only through their session and
    Claude session ids): their rows are the same as in the whole state."""
    units: dict[Any, Any] = {}
    grew = True
    while grew:
        grew = False
        for ukey, unit in state.units.items():
            if ukey not in units and (ukey[0] in keys or ukey[2] in keys):
                units[ukey] = unit
                keys.update((ukey[0], ukey[2]))
                grew = True
    view = _shallow(state)
    view.units = units
    archive = state.archive
    view.archive = None
    if archive is not None and not keys.isdisjoint(archive.keys):
        # A settled group (UsageState.settle) links to no unit above: its rows are
        # final, those of these sessions are all it adds.
        view.archive = Archive(rows=[r for r in archive.rows if r[0] in keys or r[2] in keys],
                               cells=None)
    return view


def sessions_report(state: UsageState, sessions: Iterable[str], filters: Filters | None,
                    table: PriceTable) -> Report:
    """A report by session and by session and model of ``sessions`` (all their
    usage) from their units and those linked to them (:func:`linked`): what
    `monitor` lists, without a pass over every session ever recorded. Prices of
    models without a list price are learned from the whole state, as `usage` does."""
    from claudewrap.usage.price_fit import learn_prices
    from claudewrap.usage.report import make_report

    view = linked(state, set(sessions))
    dims = [("session",), ("session", "model")]
    report = make_report(view, dims=dims, filters=filters, table=table, count_sessions=False)
    # Rates of a model without a list price come from every exact record, as in
    # `usage`: not from these sessions' alone (learned here, or too few to learn from).
    if report.table is not table or report.total.unpriced_records:
        report = make_report(view, dims=dims, filters=filters,
                             table=learn_prices(state, table), count_sessions=False)
    return report


# --- what the state adds up to ---------------------------------------------------------


def _label(value: Any) -> str:
    return str(value) if value else UNKNOWN


def usage_sums(state: UsageState, table: PriceTable, since_minute: str | None = None,
               until_minute: str = "~") -> tuple[dict[Key, list[float]], dict[Key, list[float]]]:
    """``(totals, recent)`` by (model, project, source, host) under the summing rule.

    ``totals``: [input, output, cache read, cache write, printed cost, estimated
    cost, records]; ``recent`` (a MinuteState only; the series used in the last
    day): [input, output, cache read, cache write, cost] of the minutes
    ``since_minute`` to ``until_minute``.
    """
    totals: dict[Key, list[float]] = {}
    recent: dict[Key, list[float]] = {}
    prices: dict[Any, Price | None] = {}
    keys: dict[tuple[Any, int, str], Key] = {}
    attrs = state.attrs
    for unit, row in state.summary_rows():
        model, day, aid, printed, n, i, o, cr, cw, cost = row
        kk = (model, aid, unit[1])
        key = keys.get(kk)
        if key is None:
            a = attrs[aid]
            key = keys[kk] = (_label(model), _label(a[0]), unit[1], _label(a[1]))
        est = 0.0
        if not printed:
            # A model (or a rate) without a price adds no cost, not $0.
            est, _ = estimated_cost(prices, table, model, n, i, o, cr, cw)
        acc = totals.get(key)
        if acc is None:
            totals[key] = [i, o, cr, cw, cost, est, n]
        else:
            acc[0] += i
            acc[1] += o
            acc[2] += cr
            acc[3] += cw
            acc[4] += cost
            acc[5] += est
            acc[6] += n
        if since_minute is not None and day != _OLD:
            rec = recent.get(key)
            if rec is None:
                rec = recent[key] = [0, 0, 0, 0, 0.0]
            if since_minute <= day <= until_minute:
                rec[0] += i
                rec[1] += o
                rec[2] += cr
                rec[3] += cw
                rec[4] += cost + est
    return totals, recent


def unit_sums(state: UsageState, table: PriceTable) -> dict[Any, dict[Key, list[float]]]:
    """usage_sums' ``totals``, per unit (the unit key each row of the rule comes
    with): summed, they are the totals; a unit's share changes only when a unit
    linked to it does (:func:`linked`)."""
    out: dict[Any, dict[Key, list[float]]] = {}
    prices: dict[Any, Price | None] = {}
    attrs = state.attrs
    for unit, row in state.summary_rows():  # settled history: one unit per source
        model, _day, aid, printed, n, i, o, cr, cw, cost = row
        a = attrs[aid]
        key = (_label(model), _label(a[0]), unit[1], _label(a[1]))
        est = 0.0
        if not printed:
            est, _ = estimated_cost(prices, table, model, n, i, o, cr, cw)
        mine = out.setdefault(unit, {})
        acc = mine.get(key)
        if acc is None:
            mine[key] = [i, o, cr, cw, cost, est, n]
        else:
            for j, v in enumerate((i, o, cr, cw, cost, est, n)):
                acc[j] += v
    return out


def _add_sums(totals: dict[Key, list[float]], part: dict[Key, list[float]], sign: int) -> None:
    for key, v in part.items():
        acc = totals.get(key)
        if acc is None:
            acc = totals[key] = [0, 0, 0, 0, 0.0, 0.0, 0]
        for j in range(7):
            acc[j] += sign * v[j]
        if sign < 0 and not any(acc[:4]) and not acc[6] and abs(acc[4]) + abs(acc[5]) < 1e-9:
            del totals[key]  # no usage left in this series: as if never summed


def window_bounds(now: float, seconds: float) -> tuple[str, str]:
    """The minutes of "the last ``seconds``" at ``now``: ``(first, last)`` as journal
    time prefixes. The minute of ``now`` and those before it, ``seconds / 60`` in
    all (rates are per whole minute), and the next one (a minute of clock skew
    between hosts: usage dated a little in the future counts once it is recorded)."""
    return _minute(now - seconds + 60), _minute(now + 60)


@plain
class Window:
    """What the recent minutes used, by the summing rule over the whole journal."""

    total: Row
    # Each session (wrapper session id) with usage in the window: when it was last
    # active (its newest record's time, else its last minute with usage) and the
    # project of that usage.
    sessions: dict[str, tuple[str, str | None]] = field(default_factory=dict)


def window_usage(state: UsageState, table: PriceTable, first: str, last: str,
                 filters: Filters | None = None) -> Window:
    """The usage of the minute buckets ``first`` to ``last`` of a :class:`MinuteState`
    (the same rows usage_sums counts as recent): what `status`, `monitor` and the
    metrics' rates show."""
    v: list[Any] = [0, 0, 0, 0, 0.0, 0.0, 0, 0]
    prices: dict[Any, Price | None] = {}
    sessions: dict[str, tuple[str, str | None]] = {}
    attrs = state.attrs
    if isinstance(state, MinuteState):
        index = state.window_index
        if (index is not None and index.valid(state) and last >= index.newest
                and (filters is None or not (filters.active() or filters.sessions
                                             or filters.since_day or filters.until_day))
                and index.add(table, first, v, sessions)):
            # The archive's share summed by minute; the units' walked.
            state = state.live_around(first)
        else:
            state = state.around(first)
    for unit, row in state.buckets(filters):
        model, minute, aid, printed, n, i, o, cr, cw, cost = row
        if minute == _OLD or not first <= minute <= last:
            continue
        if not printed:
            cost, unpriced = estimated_cost(prices, table, model, n, i, o, cr, cw)
            v[5] += cost
            v[6] += unpriced
        v[0] += i
        v[1] += o
        v[2] += cr
        v[3] += cw
        v[4] += cost
        v[7] += n
        seen = sessions.get(unit[0])
        if seen is None or minute >= seen[0]:
            sessions[unit[0]] = (minute, attrs[aid][0] or (seen[1] if seen else None))
    total = Row(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], len(sessions))
    last_ts = getattr(state, "last_ts", {})
    return Window(total, {sid: (max(minute, last_ts.get(sid, "")), project)
                          for sid, (minute, project) in sessions.items()})


def counter_values(totals: dict[Key, list[float]]) -> dict[str, dict[Key, float]]:
    """The counters' true values (before :func:`advance_counters`) by family."""
    out: dict[str, dict[Key, float]] = {name: {} for name in COUNTERS}
    for key, v in totals.items():
        for j, t in enumerate(TOKEN_TYPES):
            out[f"tokens_{t}"][key] = v[j]
        out["cost"][key + ("false",)] = v[4]
        out["cost"][key + ("true",)] = v[5]
        out["records"][key] = v[6]
    return out


def _group(key: Key) -> tuple[str, str]:
    return (key[1], key[3])  # project, host: where usage can move between series


def advance_counters(prev: dict[str, dict[Key, float]], truth: dict[str, dict[Key, float]]
                     ) -> dict[str, dict[Key, float]]:
    """New counter values: never below ``prev``; per (project, host) as high as the truth.

    A series at or below its true value rises to it, unless series of its group
    stand above theirs (their usage moved): then the group rises only by what
    its true total gained beyond the exported one, shared in proportion to how
    far each series is behind.
    """
    out: dict[str, dict[Key, float]] = {}
    for name in COUNTERS:
        old = prev.get(name, {})
        new = truth.get(name, {})
        integer = name != "cost"
        eps = 0 if integer else 1e-9
        if new == old:  # what a run without new usage finds: nothing moves
            out[name] = dict(old)
            continue
        result: dict[Key, float] = dict.fromkeys(new, 0 if integer else 0.0)
        result.update(old)
        # Only the series whose value changed can move (a series equal to its truth
        # adds nothing to its group's excess nor to what is behind): found by set
        # operations on the items, not a Python loop over every series (8k at 1M
        # records). Sorted: the same shares whatever the hash order.
        changed = {kv[0] for kv in new.items() - old.items()}
        changed.update(kv[0] for kv in old.items() - new.items())
        groups: dict[tuple[str, str], list[Key]] = {}
        for key in sorted(changed):
            groups.setdefault(_group(key), []).append(key)
        for keys in groups.values():
            behind: dict[Key, float] = {}
            excess = 0.0
            for key in keys:
                d = new.get(key, 0) - old.get(key, 0)
                if d > eps:
                    behind[key] = d
                elif d < -eps:
                    excess -= d
            if not behind:
                continue
            if excess == 0:
                for key in behind:
                    result[key] = new[key]
                continue
            need = sum(behind.values())
            rise = need - excess
            if rise <= eps:
                continue
            shares = {key: d * rise / need for key, d in behind.items()}
            if integer:
                floors = {key: math.floor(s) for key, s in shares.items()}
                left = round(rise) - sum(floors.values())
                for key in sorted(shares, key=lambda k: floors[k] - shares[k])[:max(0, left)]:
                    floors[key] += 1
                shares = {key: float(v) for key, v in floors.items()}
            for key, s in shares.items():
                result[key] = old.get(key, 0) + (int(s) if integer else s)
        out[name] = result
    return out


# --- the counters' file -----------------------------------------------------------------


@plain(frozen=True)
class JournalMark:
    """Which journal a set of counters belongs to: its identity, the bytes covered,
    their digest (rollup.file_checks) and the journal's stamp (rollup.stamp)."""

    identity: tuple[int, int] | None
    size: int
    checks: list[str] = field(default_factory=list)
    stamp: list[int] = field(default_factory=list)
    # The digest of an earlier size of this journal, checked by this process while
    # reading it (the previous read's end): no need to read those bytes again.
    known: tuple[int, list[str]] | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"identity": list(self.identity) if self.identity else None,
                "size": self.size, "checks": self.checks, "stamp": self.stamp}

    def continues(self, other: Any, journal: Path) -> bool:
        """Whether the journal seen as ``other`` (saved JSON) grew into this one:
        the same file, not smaller, not rewritten in place (rollup.rewritten), the
        same digest of the bytes it covered."""
        if not isinstance(other, dict):
            return False
        size = other.get("size")
        if ((list(self.identity) if self.identity else None) != other.get("identity")
                or not isinstance(size, int) or not 0 <= size <= self.size):
            return False
        if rollup.rewritten(self.stamp, other.get("stamp")):
            return False
        if size == self.size:
            return bool(other.get("checks") == self.checks)
        if self.known is not None and self.known[0] == size:
            return bool(other.get("checks") == self.known[1])
        try:
            fd = open_regular(journal, os.O_RDONLY)
        except OSError:
            return False
        try:
            st = os.fstat(fd)
            return ((st.st_dev, st.st_ino) == self.identity
                    and other.get("checks") == rollup.file_checks(fd, size))
        except OSError:
            return False
        finally:
            os.close(fd)


def state_path(journal: Path, suffix: str) -> Path:
    """Where the metrics keep a file of ``journal``'s: beside it, or in
    ``$CLAUDEWRAP_STATE_DIR`` (`serve --state-dir`) when the journal's folder is
    read-only (a container's volume); without either, nothing is kept."""
    folder = os.environ.get(STATE_DIR_ENV)
    name = journal.name + suffix
    return Path(folder) / name if folder else journal.with_name(name)


def counters_path(journal: Path) -> Path:
    return state_path(journal, ".counters")


def _counters_to_json(values: dict[str, dict[Key, float]]) -> dict[str, Any]:
    """The counters' file's JSON (format 4): ``labels``, every (model, project,
    source, host) once, sorted; ``counters``: per family a column of values in
    that order (null where the series is not there), the cost family one column
    per ``estimated`` value."""
    every: set[Key] = set()
    for name in COUNTERS:
        family = values.get(name, {})
        every.update((k[:4] for k in family) if name == "cost" else family)
    labels = sorted(every)
    index = {k: i for i, k in enumerate(labels)}
    columns: dict[str, Any] = {}
    for name in COUNTERS:
        family = values.get(name, {})
        if name == "cost":
            by_flag: dict[str, list[float | None]] = {}
            for k, v in family.items():
                column = by_flag.get(k[4])
                if column is None:
                    column = by_flag[k[4]] = [None] * len(labels)
                column[index[k[:4]]] = v
            columns[name] = by_flag
        else:
            column = [None] * len(labels)
            for k, v in family.items():
                column[index[k]] = v
            columns[name] = column
    return {"labels": [list(k) for k in labels], "counters": columns}


def _good_values(keys: list[Key], column: Any) -> dict[Key, float]:
    """One family's column of a format-4 file: the finite values >= 0 by label set.
    ValueError when it is not a column of these labels (the file is as good as none)."""
    if column.__class__ is not list or len(column) != len(keys):
        raise ValueError("not a column of the counters' labels")
    return {k: v for k, v in zip(keys, column)
            if (v.__class__ is int or v.__class__ is float) and 0 <= v < math.inf}


def _counters_from_json(raw: dict[str, Any]) -> dict[str, dict[Key, float]]:
    """The counters of a counters file's JSON (format 4, or 3's rows). Raises
    ValueError (or another error) when it is not what a writer wrote."""
    data = raw.get("counters")
    out: dict[str, dict[Key, float]] = {}
    if "labels" not in raw:  # format 3: [*labels, value] rows per family
        for name in COUNTERS:
            rows = data.get(name, []) if isinstance(data, dict) else []
            out[name] = {tuple(map(str, row[:-1])): row[-1] for row in rows
                         if row.__class__ is list and row and isinstance(row[-1], (int, float))
                         and math.isfinite(row[-1]) and row[-1] >= 0}
        return out
    keys: list[Key] = list(map(tuple, raw["labels"]))
    for k in keys:
        if len(k) != 4 or not all(part.__class__ is str for part in k):
            raise ValueError("labels are four strings")
    if not isinstance(data, dict):
        raise TypeError("no counters")
    for name in COUNTERS:
        if name != "cost":
            out[name] = _good_values(keys, data[name])
            continue
        family: dict[Key, float] = {}
        for flag, column in data[name].items():
            family.update({k + (flag,): v for k, v in _good_values(keys, column).items()})
        out[name] = family
    return out


def _merge_max(a: dict[str, dict[Key, float]], b: dict[str, dict[Key, float]]
               ) -> dict[str, dict[Key, float]]:
    out = {name: dict(a.get(name, {})) for name in COUNTERS}
    for name in COUNTERS:
        mine = out[name]
        for key, value in b.get(name, {}).items():
            if value > mine.get(key, 0):
                mine[key] = value
    return out


def _introduce(before: dict[str, dict[Key, float]], after: dict[str, dict[Key, float]]) -> None:
    """Series that were not exported before show 0 once: Prometheus's increase() and
    rate() take a series' first sample as its start, so the usage that created a
    series (a new model, project or host) would never count there."""
    for name in COUNTERS:
        zero = 0.0 if name == "cost" else 0
        family = after[name]
        for key in family.keys() - before.get(name, {}).keys():
            family[key] = zero


def _lock_counters(path: Path) -> int | None:
    """The counters' lock file, open and locked (waiting at most 2 s); None when it
    cannot be (not writable, something else than a regular file in its place, or
    held for longer: a stopped exporter must not hang the others)."""
    try:
        fd = open_regular(str(path) + ".lock", os.O_RDWR | os.O_CREAT)
    except OSError:
        return None
    deadline = time.monotonic() + _LOCK_TIMEOUT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() < deadline:
                time.sleep(0.01)
                continue
        except OSError:
            pass
        os.close(fd)
        return None


def _file_key(path: Path) -> tuple[int, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _read_counters(path: Path, memo: dict[str, Any] | None = None
                   ) -> tuple[Any, dict[str, dict[Key, float]], bool] | None:
    """The saved counters: ``(the journal it covers as saved, the counters, whether
    the file is of the current format)``, or
    None: a file that cannot be read for any reason (not there, another version, a
    CRC that does not match, deep nesting, values that are not counters, a FIFO in
    its place) is as good as none.

    ``memo`` keeps what was read (or written) with the file's identity, size and
    times: the same file is not read again (a scrape of a 100k-record journal read
    its 353 KB counters file every time, more than the new journal lines)."""
    import json

    key = _file_key(path) if memo is not None else None
    if memo is not None and key is not None and memo.get("key") == key:
        return memo["saved"]  # type: ignore[no-any-return]
    try:
        data = read_regular(path)
        if not data.startswith((_COUNTERS_MAGIC, _COUNTERS_MAGIC_3)):
            return None
        head = len(_COUNTERS_MAGIC) + 9
        if (data[head - 1:head] != b"\n"
                or int(data[len(_COUNTERS_MAGIC):head - 1], 16) != zlib.crc32(data[head:])):
            return None
        raw = json.loads(data[head:])
        if not isinstance(raw, dict):
            return None
        saved = (raw.get("journal"), _counters_from_json(raw), "labels" in raw)
    except Exception:  # noqa: BLE001 - a cache: whatever is wrong, start from the journal
        return None
    if memo is not None:  # the key from before the read: a file replaced since is read again
        memo["key"], memo["saved"] = key, saved
    return saved


def _write_counters(path: Path, mark: JournalMark, values: dict[str, dict[Key, float]],
                    memo: dict[str, Any] | None = None) -> None:
    import json

    raw = {"journal": mark.to_json(), **_counters_to_json(values)}
    body = json.dumps(raw, separators=(",", ":")).encode()
    try:
        atomic_write(path, [_COUNTERS_MAGIC, b"%08x\n" % zlib.crc32(body), body], 0o600,
                     cache=True)
    except OSError:
        return
    if memo is not None:  # under the lock: the file is the one just written
        memo["key"], memo["saved"] = _file_key(path), (raw["journal"], values, True)


def sync_counters(journal: Path, mark: JournalMark, mine: dict[str, dict[Key, float]],
                  truth: dict[str, dict[Key, float]], *, seen: bool = False,
                  use_file: bool = True, memo: dict[str, Any] | None = None
                  ) -> dict[str, dict[Key, float]]:
    """The counters to export now: ``mine`` (this process's last ones) and the saved
    ones advanced to ``truth``, saved again. Without a writable folder (or with
    ``use_file`` False: ``--no-cache``), ``mine`` only.

    Series new since the last export (``seen``: this process exported before; else
    the saved counters) start at 0; the first export of a journal shows its values.
    ``memo`` (one per process) spares reading the file again when it did not change.
    """
    path = counters_path(journal)
    lock_fd = _lock_counters(path) if use_file else None
    if lock_fd is None:
        after = advance_counters(mine, truth)
        if seen:
            _introduce(mine, after)
        return after
    try:
        saved: dict[str, dict[Key, float]] = {}
        known = seen
        found = _read_counters(path, memo)
        old = found[0] if found is not None else None
        if mark.continues(old, journal):
            assert found is not None
            saved = found[1]
            known = True
        elif isinstance(old, dict) and old.get("identity") is None:
            known = True  # there was no journal then: all of it is new usage
        before = _merge_max(saved, mine)
        after = advance_counters(before, truth)
        if known:
            _introduce(before, after)
        if after != saved or old != mark.to_json() or (found is not None and not found[2]):
            _write_counters(path, mark, after, memo)
        else:
            remove_stale_temporaries(path)  # what killed writers left (the write does it too)
        return after
    finally:
        os.close(lock_fd)


# --- following the journal -----------------------------------------------------------------


def state_cache_path(journal: Path) -> Path:
    return state_path(journal, ".metrics")


@plain
class Snapshot:
    """What one exposition shows (values, not yet prometheus_client objects)."""

    counters: dict[str, dict[Key, float]]
    tokens_per_minute: dict[Key, float]  # (*LABELS, type)
    cost_per_hour: dict[Key, float]
    sessions_active: dict[str, int]  # host -> running wrapped sessions
    skipped_lines: int
    window: float
    hosts: set[str] = field(default_factory=set)
    # The plan's rate-limit windows that have not reset (claudewrap.usage.limits.latest).
    rate_limits: tuple[limits.Snapshot, ...] = ()


class JournalMetrics:
    """Follows one journal and turns it into :class:`Snapshot` objects.

    :meth:`update` reads what was appended since the last call (the whole file
    again when it was replaced, truncated or rewritten); :meth:`snapshot` adds
    up the state. Not thread-safe: the exporter serialises calls.
    """

    def __init__(self, journal: Path, *, window: float = DEFAULT_WINDOW, use_cache: bool = True,
                 table: PriceTable | None = None,
                 live: Callable[[Path], list[dict[str, Any]]] | None = None) -> None:
        if not 60 <= window <= MAX_WINDOW:
            raise ValueError("the window must be between 1 minute and 24 hours")
        self.journal = journal
        self.window = window
        self.use_cache = use_cache
        self.table = table
        self._learned: tuple[int, PriceTable, PriceTable, float] | None = None
        self._live = live
        self.state = MinuteState()
        self.offset = 0
        self.identity: tuple[int, int] | None = None
        self.checks: list[str] = []
        self.stamp: list[int] = []  # rollup.stamp of the journal after the last read
        self.saved_offset = -1  # where the state cache on disk ends
        self.counters: dict[str, dict[Key, float]] = {}
        self.exported = False  # a snapshot was made: later series are new usage
        self._counters_memo: dict[str, Any] = {}  # the counters' file as last seen (sync_counters)
        # usage_sums' totals, kept up to date by unit (see _totals_now).
        self._sums: tuple[Any, ...] | None = None
        self._by_unit: dict[Any, dict[Key, list[float]]] | None = None
        self._totals: dict[Key, list[float]] = {}
        self.mark = JournalMark(None, 0)

    # reading

    def _reset(self, now: float | None = None) -> None:
        self.state = MinuteState(now=now)
        self.offset = 0
        self.saved_offset = -1
        self.counters = {}

    def update(self, now: float | None = None) -> None:
        """Read the lines appended since the last call. Raises JournalError."""
        now = time.time() if now is None else now
        path = self.journal
        try:
            # A FIFO in the journal's place must not hang the exporter.
            fd = open_regular(path, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            if self.identity is not None or self.offset:
                self._reset()
            self.identity = None
            self.mark = JournalMark(None, 0)
            return
        except OSError as exc:
            raise read_error(path, exc) from None
        try:
            st = os.fstat(fd)
            identity = (st.st_dev, st.st_ino)
            # A clock set back (monitor --now) asks for minutes that the state (and
            # its cache) already summed into the old bucket: read them again, uncached.
            behind = _minute(now - MAX_WINDOW) < self.state.cutoff
            if behind:
                self.use_cache = False
            known = (self.offset, self.checks) if self.offset else None
            fresh = (behind or identity != self.identity or st.st_size < self.offset
                     or (self.offset and (rollup.rewritten(rollup.stamp(st), self.stamp)
                                          or rollup.file_checks(fd, self.offset) != self.checks)))
            if fresh:
                known = None
                self._reset(now)
                self.identity = identity
                if self.use_cache:
                    self._load_cache(fd, st.st_size, now)
            self.state.compact(now, force=bool(fresh) and not self.offset)
            archived = self.state.archive is not None
            try:
                self.offset, _ = rollup.scan(fd, self.state, self.offset)
                # A settled session resumed (or a settled record taken back) put every
                # settled group back: saved now, settled again, not reloaded by each reader.
                self._after_read(fd, path, identity, known,
                                 archived and self.state.archive is None)
            except IndexBroken:  # a part of the state cache read only now was bad
                self._reset(now)
                self.identity = identity
                self.state.compact(now, force=True)
                self.offset, _ = rollup.scan(fd, self.state, 0)
                self._after_read(fd, path, identity, None)
        finally:
            os.close(fd)

    def _after_read(self, fd: int, path: Path, identity: tuple[int, int],
                    known: tuple[int, list[str]] | None, unarchived: bool = False) -> None:
        self.checks = rollup.file_checks(fd, self.offset)
        self.stamp = rollup.stamp(os.fstat(fd))
        self.mark = JournalMark(identity, self.offset, self.checks, self.stamp, known)
        if (self.use_cache and (self.offset - max(self.saved_offset, 0) > _REWRITE
                                or self.state.archive_changed or unarchived)
                and file_identity(path) == identity):
            self._save_cache(fd)
            self.state.archive_changed = False

    def _load_cache(self, fd: int, size: int, now: float) -> None:
        path = state_cache_path(self.journal)
        remove_stale_temporaries(path)  # what killed writers left
        cached = rollup.read_cache(path, _MAGIC, self.identity or (), size, fd,
                                   MinuteState.from_json)
        if cached is None:
            return
        state, offset = cached
        assert isinstance(state, MinuteState)
        state.compact(now, force=True)
        self.state = state
        self.offset = self.saved_offset = offset

    def _save_cache(self, fd: int) -> None:
        # The groups with no minute row left (all before the retention) are saved as
        # the rows they count: a warm read loads only what can still change.
        self.state.settle(max(_SETTLED, _minute(time.time() - _QUIET)))
        self.state.index_archive()
        if rollup.write_cache(state_cache_path(self.journal), _MAGIC, self.state,
                              self.identity or (), self.offset, fd):
            self.saved_offset = self.offset

    def save(self) -> None:
        """Save the state cache now if it is behind (the exporter calls this at exit)."""
        if not self.use_cache or self.identity is None or self.offset == self.saved_offset:
            return
        try:
            fd = open_regular(self.journal, os.O_RDONLY)
        except OSError:
            return
        try:
            st = os.fstat(fd)
            if ((st.st_dev, st.st_ino) == self.identity and st.st_size >= self.offset
                    and not rollup.rewritten(rollup.stamp(st), self.stamp)
                    and rollup.file_checks(fd, self.offset) == self.checks):
                try:
                    self._save_cache(fd)
                except IndexBroken:
                    pass  # the cache it was read from went bad: the next reader rebuilds it
        finally:
            os.close(fd)

    # adding up

    def _table(self) -> PriceTable:
        """The prices, with rates learned from the journal's exact records for models
        without a list price, exactly as `usage` learns them: from the rollup's state
        (one sample per session, model and day; the minute state would give one per
        minute, and a new model's first session would teach status and metrics
        rates that usage, monitor and cost do not have yet). Looked at only when
        some usage has no price; learned again when new lines were read, at most
        once a minute (rates learned a minute ago are as good)."""
        from claudewrap.usage.price_fit import learn_prices, unpriced_usage

        base = self.table or default_table()
        lines = self.state.stats.lines
        now = time.monotonic()
        cached = self._learned
        if cached is None or cached[1] is not base or (
                cached[0] != lines and now - cached[3] >= 60):
            table = base
            if any(model for model in unpriced_usage(self.state, base)):
                try:
                    table = learn_prices(rollup.load_state(self.journal, use_cache=self.use_cache),
                                         base)
                except JournalError:  # a journal that cannot be read now: list prices only
                    table = base
            cached = self._learned = (lines, base, table, now)
        return cached[2]

    def recent_usage(self, seconds: float, now: float | None = None,
                     filters: Filters | None = None) -> Window:
        """The usage of the last ``seconds`` (whole minutes; window_bounds) after
        :meth:`update`: the rows the rate gauges count."""
        now = time.time() if now is None else now
        return self.usage_between(*window_bounds(now, seconds), filters)

    def today(self, now: float | None = None, filters: Filters | None = None) -> Window:
        """Today's usage (from local midnight before ``now``) after :meth:`update`:
        the rows of its minutes, the same rows as a report's "today" (both states
        sum every record by the same rule; a minute lies in one local day). As
        there, usage dated later than today (a clock ahead) counts in today."""
        local = datetime.fromtimestamp(time.time() if now is None else now).date()
        start = datetime(local.year, local.month, local.day).astimezone()  # local midnight
        return self.usage_between(_minute(start.timestamp()), "~", filters)

    def usage_between(self, first: str, last: str, filters: Filters | None = None) -> Window:
        """The usage of the minutes ``first`` to ``last`` (journal time prefixes)."""
        # Learning prices is a pass over the whole state (35 ms at 100k records):
        # only when the window has usage of a model without a list price.
        window = window_usage(self.state, self.table or default_table(), first, last, filters)
        if window.total.unpriced_records:
            window = window_usage(self.state, self._table(), first, last, filters)
        return window

    def _totals_now(self, table: PriceTable) -> dict[Key, list[float]]:
        """usage_sums' totals of the state: summed again only for the units linked to
        what was read since the last call (a scrape after 100 new records of a 1M-record
        journal went over every row: ~0.5 s); all of them again for a new state,
        other prices, or after a compaction (which also bounds the float error of
        taking shares out and in)."""
        state = self.state
        # Settled history is summed as one unit per source (its cells): a new or changed
        # archive (groups settled, or put back) means summing all again.
        archive = state.archive
        valid_for = (state, table, state.cutoff, archive, archive.version if archive else 0)
        if self._sums != valid_for or (state.touched and self._by_unit is None):
            # The shares by unit only from a second call on (`serve`): a one-shot
            # `metrics` sums the rows once, as plainly as it can.
            if self._sums is None:
                self._totals, _ = usage_sums(state, table)
                self._by_unit = None
            else:
                self._by_unit = unit_sums(state, table)
                self._totals = {}
                for part in self._by_unit.values():
                    _add_sums(self._totals, part, 1)
            self._sums = valid_for
        elif state.touched and self._by_unit is not None:
            view = linked(state, set(state.touched))
            view.archive = None  # unchanged (else summed all again above): in the cells' share
            for ukey in view.units:
                old = self._by_unit.pop(ukey, None)
                if old is not None:
                    _add_sums(self._totals, old, -1)
            for ukey, part in unit_sums(view, table).items():
                self._by_unit[ukey] = part
                _add_sums(self._totals, part, 1)
        state.touched.clear()
        return self._totals

    def snapshot(self, now: float | None = None) -> Snapshot:
        """The metrics as of ``now`` (default: the clock), after :meth:`update`."""
        now = time.time() if now is None else now
        self.state.compact(now)
        # The window: the last window/60 minute buckets, this one included, the rows
        # `status` and `monitor` show too (window_usage); the series used in the last
        # day are all listed (idle ones drop out).
        span = self.window
        table = self._table()
        totals = self._totals_now(table)
        # The series used in the last day are those of the sessions with records in it.
        # Settled ones have no usage since the index's newest minute: a window after
        # it sums the live units, the index names the settled series (a `metrics`
        # of a heavy day decoded and walked its 36k settled rows: ~100 ms).
        state = self.state
        first, last = window_bounds(now, span)
        index = state.window_index
        if index is not None and index.valid(state) and first > index.newest:
            _, window = usage_sums(state.live_around(state.cutoff), table, first, last)
            for series in index.series:
                key = tuple(series)
                if key not in window:
                    window[key] = [0, 0, 0, 0, 0.0]
        else:
            _, window = usage_sums(state.around(state.cutoff), table, first, last)
        truth = counter_values(totals)
        self.counters = sync_counters(self.journal, self.mark, self.counters, truth,
                                      seen=self.exported, use_file=self.use_cache,
                                      memo=self._counters_memo)
        self.exported = True
        per_minute: dict[Key, float] = {}
        per_hour: dict[Key, float] = {}
        for key, acc in window.items():
            for j, t in enumerate(TOKEN_TYPES):
                per_minute[key + (t,)] = acc[j] * 60.0 / span
            per_hour[key] = acc[4] * 3600.0 / span
        this_host = _hostname()
        active: dict[str, int] = {this_host: 0}
        for marker in (self._live or _live_markers)(self.journal):
            host = str(marker.get("host") or this_host)
            active[host] = active.get(host, 0) + 1
        hosts = {key[3] for family in self.counters.values() for key in family}
        fresh = limits.latest(self.journal, now=now)
        windows = tuple(fresh[w] for w in limits.WINDOWS if w in fresh)
        hosts |= {lim.host or UNKNOWN for lim in windows}
        return Snapshot(counters=self.counters, tokens_per_minute=per_minute,
                        cost_per_hour=per_hour, sessions_active=active,
                        skipped_lines=self.state.stats.skipped, window=self.window,
                        hosts=hosts | set(active), rate_limits=windows)


def _hostname() -> str:
    return os.uname().nodename  # what socket.gethostname() says; context.py's host label


def _live_markers(journal: Path) -> list[dict[str, Any]]:
    from claudewrap.wrap import live

    return live.active(journal)


# --- exposition ---------------------------------------------------------------------------


_HELP = {
    "tokens_input": "Input tokens used through the claude CLI",
    "tokens_output": "Output tokens used through the claude CLI",
    "tokens_cache_read": "Cache read tokens used through the claude CLI",
    "tokens_cache_write": "Cache write (creation) tokens used through the claude CLI",
    "cost": "Cost in USD; estimated=\"true\" is what claudewrap priced from list prices"
            " where Claude Code printed no cost",
    "records": "Journal records that count under the summing rules",
}


def _window_text(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


Series = tuple[str, str, str, tuple[str, ...], list[tuple[tuple[Any, ...], float]]]


def _series(snap: Snapshot, host: str | None = None) -> Iterator[Series]:
    """``(name, type, help, label names, [(label values, value)])`` of each metric family
    of ``snap`` (only host ``host``'s series if given): what :func:`families` and
    :func:`exposition` write."""

    # The four token counters and the records count have the same label sets:
    # sorted once (sorting was ~half of the exposition's time at 1M records).
    orders: dict[int, tuple[list[Key], set[Key]]] = {}

    def mine(family: dict[Key, float]) -> list[tuple[Key, float]]:
        known = orders.get(len(family))
        if known is not None and family.keys() == known[1]:
            items = [(k, family[k]) for k in known[0]]
        else:
            order = sorted(family)
            orders[len(family)] = (order, set(order))
            items = [(k, family[k]) for k in order]
        return items if host is None else [kv for kv in items if kv[0][3] == host]

    for name in COUNTERS:
        labels = (*LABELS, "estimated") if name == "cost" else LABELS
        metric = "claude_api_cost_dollars" if name == "cost" else f"claude_api_{name}"
        yield (metric, "counter", _HELP[name], labels, mine(snap.counters.get(name, {})))
    window = _window_text(snap.window)
    yield ("claude_tokens_per_minute", "gauge", f"Tokens per minute over the last {window}",
           (*LABELS, "type"), mine(snap.tokens_per_minute))
    yield ("claude_cost_per_hour_dollars", "gauge",
           f"Cost in USD per hour over the last {window} (printed and estimated)", LABELS,
           mine(snap.cost_per_hour))
    yield ("claude_sessions_active", "gauge", "Wrapped claude sessions running now", ("host",),
           [((h,), count) for h, count in sorted(snap.sessions_active.items())
            if host is None or h == host])
    limits_of = [lim for lim in snap.rate_limits
                 if host is None or (lim.host or UNKNOWN) == host]
    yield ("claude_rate_limit_used_ratio", "gauge",
           ("Share (0-1) of the Claude.ai plan's rate-limit window used, as Claude Code's"
            " status line last reported it; absent once the window has reset"),
           ("window", "host"), [((lim.window, lim.host or UNKNOWN), lim.used)
                                for lim in limits_of])
    yield ("claude_rate_limit_resets_timestamp_seconds", "gauge",
           "When the Claude.ai plan's rate-limit window resets (Unix seconds)",
           ("window", "host"), [((lim.window, lim.host or UNKNOWN), lim.resets_at)
                                for lim in limits_of])
    if host is None or host == _hostname():
        yield ("claude_journal_skipped_lines", "gauge",
               "Journal lines that could not be read (see `claudewrap journal check`)", (),
               [((), snap.skipped_lines)])


def families(snap: Snapshot, host: str | None = None) -> Iterator[Metric]:
    """prometheus_client metric families for ``snap`` (only host ``host``'s series if given)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    for name, kind, help_text, labels, items in _series(snap, host):
        family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(
            name, help_text, labels=labels)
        for key, value in items:
            family.add_metric(key, value)
        yield family


def registry(snap: Snapshot, host: str | None = None) -> CollectorRegistry:
    """A registry whose only collector yields ``snap``."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.registry import Collector

    class _SnapshotCollector(Collector):
        def collect(self) -> Iterable[Metric]:
            return list(families(snap, host))

    reg = CollectorRegistry(auto_describe=False)
    reg.register(_SnapshotCollector())
    return reg


_LABEL_ORDER = sorted(range(len(LABELS)), key=LABELS.__getitem__)
_EXACT = 2**53  # integers below this are floats exactly: repr(float(n)) is str(n) + ".0"


def go_float(d: float) -> str:
    """A sample's value as the Prometheus text format spells it: prometheus_client's
    ``utils.floatToGoString``, here so that `metrics` need not import the library
    (its package brings http.server, ssl and more: ~60 ms of a one-shot `metrics`,
    ``-X importtime``); tests hold the two equal."""
    if d.__class__ is int and 0 <= d < _EXACT:  # token counts: their digits are repr's
        if d < 1_000_000:
            return f"{d}.0"
        digits = str(d)
        return f"{(digits[0] + '.' + digits[1:]).rstrip('0.')}e+{len(digits) - 1:02d}"
    d = float(d)
    if d == math.inf:
        return "+Inf"
    if d == -math.inf:
        return "-Inf"
    if math.isnan(d):
        return "NaN"
    s = repr(d)
    dot = s.find(".")
    # Go switches to exponents sooner than Python.
    if d > 0 and dot > 6:
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1:]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def exposition(snap: Snapshot) -> bytes:
    """The Prometheus text format of ``snap``: what prometheus_client's
    ``generate_latest(registry(snap))`` writes, byte for byte (tests hold them
    equal), written here from the same series, without importing the library. The
    library builds a sample per series and checks each label name of each again
    (8k series of a 1M-record journal: 200 ms of its `metrics`); here each label
    set is written once for the counters that share it."""
    number = go_float
    out: list[str] = []
    texts: dict[tuple[str, ...], dict[tuple[Any, ...], str]] = {}
    for name, kind, help_text, labels, items in _series(snap):
        if kind == "counter":
            name += "_total"
        help_text = help_text.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
        if not labels:
            out.extend(f"{name} {number(value)}\n" for _key, value in items)
            continue
        order = sorted(range(len(labels)), key=labels.__getitem__)
        # Label sets are written once: the counters share theirs, and the cost's
        # (estimated) and the rates' (type) add a label before or after theirs.
        mine = texts.setdefault(labels, {})
        base = texts.setdefault(LABELS, {})
        extra = len(labels) == 5 and labels[:4] == LABELS and labels[4] not in LABELS and (
            -1 if labels[4] < min(LABELS) else 1 if labels[4] > max(LABELS) else 0)
        start = name + "{"
        for key, value in items:
            text = mine.get(key)
            if text is None:
                if extra:
                    text = base.get(key[:4])
                    if text is None:
                        text = base[key[:4]] = ",".join(
                            f'{LABELS[k]}="{_label_value(key[k])}"' for k in _LABEL_ORDER)
                    last = f'{labels[4]}="{_label_value(key[4])}"'
                    text = f"{last},{text}" if extra < 0 else f"{text},{last}"
                else:
                    text = ",".join(f'{labels[k]}="{_label_value(key[k])}"' for k in order)
                mine[key] = text
            out.append(f"{start}{text}}} {number(value)}\n")
    return "".join(out).encode("utf-8")


def _label_value(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')
    return value


def collect(journal: Path, *, window: float = DEFAULT_WINDOW, use_cache: bool = True,
            now: float | None = None) -> Snapshot:
    """One snapshot of ``journal`` (reads only new lines when its caches are good)."""
    metrics = JournalMetrics(journal, window=window, use_cache=use_cache)
    metrics.update(now)
    return metrics.snapshot(now)


def render_prometheus(journal_path: Path, *, use_cache: bool = True,
                      window: float = DEFAULT_WINDOW) -> bytes:
    """The Prometheus text exposition of the journal at ``journal_path``."""
    return exposition(collect(journal_path, window=window, use_cache=use_cache))


def write_textfile(snap: Snapshot, path: Path) -> None:
    """Write the exposition for node_exporter's textfile collector, atomically.

    The temp file is in the same folder (so the rename is atomic) and does not
    end in ``.prom`` (so the collector never reads it). Mode 0644: node_exporter
    usually runs as another user. Raises OSError.
    """
    atomic_write(path, [exposition(snap)], 0o644)


def push(snap: Snapshot, url: str, job: str = "claudewrap", timeout: float = 10.0) -> list[str]:
    """Push to a Pushgateway, one group per host (``/job/JOB/host/HOST``). Raises OSError.

    Each host's series go to that host's group, so machines land side by side and
    a push replaces only its own group. Returns the hosts pushed.
    """
    from prometheus_client import push_to_gateway

    hosts = sorted(snap.hosts) or [_hostname()]
    for host in hosts:
        push_to_gateway(url, job=job, registry=registry(snap, host),
                        grouping_key={"host": host}, timeout=timeout)
    return hosts


def parse_window(text: str) -> float:
    """``15m``, ``1h``, ``90s`` (whole minutes); a bare number is minutes. Raises ValueError."""
    value = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600}
    scale = 60.0
    if value and value[-1] in units:
        scale = units[value[-1]]
        value = value[:-1].strip()
    try:
        seconds = float(value) * scale
    except ValueError:
        raise ValueError(f"cannot read the window {text!r}: use e.g. 15m, 1h or 90s") from None
    if not 60 <= seconds <= MAX_WINDOW:
        raise ValueError(f"window {text!r}: use between 1m and 24h")
    return float(round(seconds / 60) * 60)  # usage is kept by the minute


__all__ = ["COUNTERS", "DEFAULT_WINDOW", "LABELS", "TOKEN_TYPES", "JournalMetrics",
           "MinuteState", "Snapshot", "advance_counters", "collect", "counter_values",
           "exposition", "families", "parse_window", "push", "registry",
           "render_prometheus", "usage_sums", "write_textfile"]
