"""Aggregation: what the journal adds up to, by model, day, project, session, pane, tag.

How records add up (the one place that decides it; the README quotes this):

1. **The same request counts once.** Delta records that carry the same
   ``request_id`` describe one API request seen by several sources; only one
   counts: the most exact source (``otel`` and ``transcript`` before ``pty``
   before ``scan`` and ``manual``; an exact record before an approximate one;
   among equals the first in the journal).
2. **Exact sources win over what the screen showed.** When a session (the
   wrapper's ``session`` or the Claude session) has per-request records from
   ``otel`` or ``transcript``, the ``pty`` and ``scan`` records of that session
   do not count: those sources saw every request, the screen only a summary of
   them. Otherwise a ``total`` printed rounded (``approximate``, e.g. the
   ``/cost`` screen block) is dropped when the same Claude session
   (``claude_session``, else the wrapper ``session``) has an exact ``total``
   from any source (a ``-p`` JSON result).
3. **Within one session and source, totals replace deltas.** If the session has
   any (remaining) ``total`` records, its totals count and its deltas do not;
   otherwise its deltas add up. For each model, the totals count as a running
   total: what counts is the largest value each counter reached, so a redrawn or
   re-printed block never counts twice. Each rise is dated at the record that
   shows it, so a session that crosses midnight is split between the two days,
   and ``--since`` counts only what the session used after that time.

Costs: the cost a record printed counts as exact; records without one are priced
from the price table (:mod:`claudewrap.usage.pricing`) when the report is made, and
that amount is reported separately as estimated. Tokens of a model without a
price have no cost: they are counted in ``unpriced_records``, never as $0.

4. **Never less than Claude Code displayed** (a screen total that rule 2 set
   aside is a floor for its session, per model, beyond its rounding); see
   :mod:`claudewrap.usage.rule`, the plain reference of all four rules, which tests
   compare this module's fast path with.

The state (:class:`UsageState`) is kept per session and source, compact enough to
be saved by :mod:`claudewrap.usage.rollup` and continued with new journal lines.
"""

from __future__ import annotations

import gc
import os
import time
import zlib
from array import array
from bisect import bisect_right
from datetime import date, datetime, timedelta, timezone, tzinfo
from itertools import chain, repeat
from operator import add, attrgetter

from claudewrap.plain import field, fields, plain, replace
from claudewrap.store.journal import MAX_BAD_LINES, parse_line
from claudewrap.store.records import UsageRecord, iso_utc
from claudewrap.usage.filters import Filters, matches
from claudewrap.usage.lines import decode_lines, dumps, loads
from claudewrap.usage.ridindex import RidIndex, id_bytes
from claudewrap.usage.rule import (
    PER_REQUEST,
    PRIORITY,
    SUMMARY,
    attribution_tags,
    beyond,
    cost_alone,
    undated,
    unit_key,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms a reader)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from typing import Any

    # A bucket's numbers: records, input, output, cache read, cache write, printed cost.
    Vec = list[Any]
    BucketKey = tuple[Any, str, int, bool]  # (model, local day, attribution id, cost printed?)

_KINDS = ("delta", "total")


_PIECE = 64 << 10  # a block that fails to decode is retried in pieces of this size
_MARK_EVERY = 64 << 10  # bytes between two marks (where a line starts)
_IN, _OUT, _CR, _CW, _COST = (attrgetter(f) for f in (
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd"))

UnitKey = tuple[str, str, str, bool]  # (session, source, Claude session, approximate)


def _root(parent: dict[str, str], x: str) -> str:
    """The root of ``x``'s set in the union-find forest ``parent`` (a new ``x`` is its
    own), the path to it shortened: how sessions linked by their ids are grouped
    (rule 4's floor, settled history)."""
    root = x
    while parent.setdefault(root, root) != root:
        root = parent[root]
    while parent[x] != root:
        parent[x], x = root, parent[x]
    return root


class no_cyclic_gc:  # used as a function: `with no_cyclic_gc():`
    """Leave the cyclic garbage collector off inside (as it was after).

    A state is hundreds of thousands of small lists that all live on: the
    collector would only walk them again and again (30-50 ms a report).
    Reference counting still frees everything. (A class, not contextlib's
    decorator: contextlib with collections and functools was ~1.5 ms of a
    status-line call's imports.)
    """

    def __enter__(self) -> None:
        self.collecting = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self.collecting:
            gc.enable()


def _normalize_ts(ts: str) -> str | None:
    """Any ISO-8601 time -> the journal's UTC form; None if unreadable."""
    try:
        when = datetime.fromisoformat(ts.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return iso_utc(when)


def tz_signature(tz: tzinfo | None) -> str:
    """Names the zone that decides where days begin (a cached state is only valid for it)."""
    if tz is None:
        try:
            localtime = os.path.realpath("/etc/localtime")
        except OSError:
            localtime = ""
        name = f"local:{os.environ.get('TZ', '')}:{time.tzname}:{localtime}"
    else:
        name = getattr(tz, "key", None) or str(tz)
    offsets = []
    for year in range(2024, 2029):
        for month in (1, 4, 7, 10):
            when = datetime(year, month, 15, tzinfo=timezone.utc)
            local = when.astimezone(tz) if tz is not None else when.astimezone()
            offsets.append(int((local.utcoffset() or timedelta(0)).total_seconds()) // 60)
    return f"{name}|{','.join(map(str, offsets))}"


class Unit:
    """The state of one (session, source, Claude session, approximate) group of records.

    A unit loaded from the rollup stays in its saved form (the plain list of
    :meth:`to_json`) in :attr:`UsageState.units` until a new record changes
    it; most never do again, and a list costs nothing to load.
    """

    __slots__ = ("dlt", "has_total", "last", "tot", "tot_max")

    def __init__(self) -> None:
        self.last: tuple[Any, ...] | None = None  # last attribution seen, with its id
        self.has_total = False
        self.tot_max: dict[Any, list[Any]] = {}  # model -> [in, out, cr, cw, cost]
        self.tot: dict[BucketKey, Vec] = {}  # rises of the running totals
        self.dlt: dict[BucketKey, Vec] = {}  # deltas

    def to_json(self) -> list[Any]:
        return [self.has_total, [[m, *v] for m, v in self.tot_max.items()],
                [[*k, *v] for k, v in self.tot.items()], [[*k, *v] for k, v in self.dlt.items()]]

    @classmethod
    def from_saved(cls, data: list[Any]) -> Unit:
        """The working form of a unit saved by :meth:`to_json`."""
        unit = cls()
        unit.has_total = data[0]
        unit.tot_max = {row[0]: list(row[1:]) for row in data[1]}
        unit.tot = {(r[0], r[1], r[2], r[3]): list(r[4:]) for r in data[2]}
        unit.dlt = {(r[0], r[1], r[2], r[3]): list(r[4:]) for r in data[3]}
        return unit


def _has_total(unit: Unit | list[Any]) -> bool:
    return bool(unit[0]) if isinstance(unit, list) else unit.has_total


def _highest(unit: Unit | list[Any]) -> dict[Any, list[Any]]:
    """Each model's highest running totals: ``{model: [in, out, cr, cw, cost]}``."""
    return {row[0]: row[1:] for row in unit[1]} if isinstance(unit, list) else unit.tot_max


def _unit_rows(unit: Unit | list[Any], totals: bool) -> Iterable[Sequence[Any]]:
    """``[model, day, attribution id, printed, n, in, out, cr, cw, cost]`` per bucket."""
    if isinstance(unit, list):
        return unit[2 if totals else 3]  # type: ignore[no-any-return]
    return [(*k, *v) for k, v in (unit.tot if totals else unit.dlt).items()]


def _spelled_out(rec: UsageRecord) -> UsageRecord:
    """``rec`` with each lone surrogate of its names spelled out (``caf\\udce9``).

    The writer escapes them (a folder name that is not UTF-8 reaches a record as
    ``\\udce9``): read back, they are strings no UTF-8 encoder takes, and the
    rollup's (msgspec) refused the whole state: every reader failed on a journal
    that held one such project name. Spelled out, they are text like any other.
    (The journal's own reader keeps them: a record reads back as written.)
    """
    def spell(value: Any) -> Any:
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value

    changes = {name: spell(getattr(rec, name)) for name in fields(rec) if name != "tags"}
    changes["tags"] = {spell(k): spell(v) for k, v in rec.tags.items()}
    return replace(rec, **changes)


@plain
class ScanStats:
    """Line counts of what was fed (the meaning of journal.ReadStats)."""

    lines: int = 0
    good: int = 0
    skipped: int = 0
    first_bad_lines: list[int] = field(default_factory=list)

    def bad(self, lineno: int) -> None:
        self.skipped += 1
        if len(self.first_bad_lines) < MAX_BAD_LINES:
            self.first_bad_lines.append(lineno)


if TYPE_CHECKING:
    Part = bytes | Callable[[], bytes]  # a part's bytes, or what reads them from the cache


class Archive:
    """Settled history: the link groups of units (the rule links units only through
    their session and Claude session ids) with no row on or after a horizon day,
    kept as what they count (the rule already applied), not as units.

    ``rows``: ``[session, source, Claude session, approximate, model, day,
    attribution id, cost printed?, records, input, output, cache read, cache
    write, printed cost]``, what :meth:`UsageState.buckets` yields for them;
    ``cells``: the same summed by source, model, project, host, printed cost
    and which token counts are not 0 (what the default table, the metrics'
    counters and the unpriced count need; a row's estimated cost depends on
    no more than that); ``keys``: every session and Claude session id of the
    archived units, so that a new record of one of them (a session resumed
    weeks later) or a take-back of an archived record puts the units back
    first (:meth:`UsageState.unarchive`); ``bodies``: the units themselves, in
    chunks of JSON ``[[unit key, saved unit], ...]``.

    Rows, keys and bodies are parts of the cache read when first needed (a
    status bar reads none of them); cells are small and always there.

    Why (issue 16, bench/readers.py at 1M records): every warm reader loaded
    and re-summed every unit the journal ever made; history now costs ~1,700
    cells (14,700 rows, 13,500 units before).
    """

    __slots__ = ("_keys", "_rows", "bodies", "cells", "newest", "raw", "version")

    def __init__(self, keys: Iterable[str] | None = (), rows: Iterable[list[Any]] | None = (),
                 cells: Iterable[list[Any]] | None = (), raw: dict[str, Part] | None = None,
                 bodies: Iterable[Part] = ()) -> None:
        self._keys: set[str] | None = None if keys is None else set(keys)
        self._rows: list[list[Any]] | None = None if rows is None else list(rows)
        # None: a part of the rows, not summed (metrics.linked's view): readers read rows.
        self.cells: list[list[Any]] | None = None if cells is None else list(cells)
        self.newest = ""  # the newest day of the rows (cells are dated before any)
        self.version = 0  # raised by each change (what a reader's sums of it are valid for)
        self.raw: dict[str, Part] = dict(raw or {})  # "rows"/"keys" as last saved
        self.bodies: list[Part] = list(bodies)

    def _part(self, name: str) -> Any:
        raw = self.raw[name]
        data = raw if isinstance(raw, bytes) else raw()
        self.raw[name] = data
        return loads(data)

    @property
    def rows(self) -> list[list[Any]]:
        if self._rows is None:
            self._rows = self._part("rows")
        return self._rows

    @property
    def keys(self) -> set[str]:
        if self._keys is None:
            self._keys = set(self._part("keys"))
        return self._keys

    def changed(self) -> None:
        """Rows or keys are about to change: their saved bytes are no more."""
        self.rows  # noqa: B018 - read before the saved bytes go
        self.keys  # noqa: B018
        self.raw.clear()
        self.version += 1

    def parts(self) -> list[tuple[str, bytes]]:
        """The parts to save: rows, keys and the bodies (read now where they were left)."""
        if "rows" not in self.raw:
            self.raw["rows"] = dumps(self.rows)
        if "keys" not in self.raw:
            self.raw["keys"] = dumps(sorted(self.keys))
        for name in ("rows", "keys"):
            raw = self.raw[name]
            if not isinstance(raw, bytes):
                self.raw[name] = raw()
        return [(name, self.raw[name]) for name in ("rows", "keys")] + [  # type: ignore[return-value]
            ("body", b) for b in self.loaded_bodies()]

    def loaded_bodies(self) -> list[bytes]:
        """The bodies' bytes (read now from the cache where they were left)."""
        self.bodies = [b if isinstance(b, bytes) else b() for b in self.bodies]
        return self.bodies  # type: ignore[return-value]

    def holds(self, ukey: UnitKey) -> bool:
        """Whether ``ukey`` shares a session or Claude session id with an archived unit."""
        keys = self.keys
        return ukey[0] in keys or ukey[2] in keys


class UsageState:
    """Everything the journal says, reduced to what reports need.

    Feed it journal lines (:meth:`feed_block`) or records (:meth:`add_records`)
    in journal order; :meth:`buckets` yields what counts under the rules of this
    module, per model, local day (in ``tz``, default: the local zone), session
    and attribution. ``since``/``until`` (UTC strings as in the journal) restrict
    the state to that window, at record precision.
    """

    def __init__(self, tz: tzinfo | None = None, since: str | None = None,
                 until: str | None = None) -> None:
        self.tz = tz
        self.tz_key = tz_signature(tz)
        self.since = since
        self.until = until
        # Units loaded from the rollup stay saved lists until changed (see Unit).
        self.units: dict[UnitKey, Unit | list[Any]] = {}
        self.attrs: list[tuple[Any, ...]] = []  # (project, host, pane, tags-tuple)
        self._attr_ids: dict[tuple[Any, ...], int] = {}
        # Request ids fed since the last seal() -> position << 3 | priority.
        self.rids: dict[str, int] = {}
        self.rid_index = RidIndex()  # the request ids before: sealed, or from the rollup
        # The newest time of the records in rids of the last days, and of the others;
        # the ids of the last days (seal() keeps them apart: ridindex.RidIndex.get).
        self._rid_newest = ""
        self._rid_old_newest = ""
        self._rids_recent: set[str] = set()
        self._recent_cut = (datetime.now(timezone.utc) - timedelta(days=3)).strftime(
            "%Y-%m-%d")
        self.replaced: list[int] = []  # positions of records that a better source replaced
        # The same, of records from before the first line fed (found in rid_index):
        # in a part read by a second process (rollup.scan_parallel) their positions
        # are already the whole journal's, not the part's, so merge() must not shift them.
        self.replaced_before: list[int] = []
        # Line numbers and the byte offsets where they start, one at least every
        # _MARK_EVERY bytes fed (see feed_block).
        self.marks: tuple[list[int], list[int]] = ([], [])
        self._fed_end = -1
        self.stats = ScanStats()
        self.archive: Archive | None = None  # settled history (see Archive)
        # Where each session and Claude session id first appears (a line number): of the
        # lines fed since the state was read; those before, in saved_first (JSON bytes,
        # read by first_line only: `cost --session` reads the journal from there).
        self.first_seen: dict[str, int] = {}
        self.saved_first: bytes | None = None
        self._first_before: dict[str, int] | None = None
        self._kept: dict[int, UsageRecord] = {}  # rid records when there is no file
        # Positions of total records per (unit, model), kept by a parallel reader (rollup.py).
        self.tot_log: dict[tuple[UnitKey, Any], list[int]] | None = None
        # Local day of a UTC timestamp, memoised by hour (by minute in zones whose
        # offset is not whole hours).
        self._prefix = 13 if all(int(x) % 60 == 0 for x in
                                 self.tz_key.rsplit("|", 1)[1].split(",")) else 16
        self._days: dict[str, str] = {}

    def day(self, ts: str) -> str:
        """The local date (YYYY-MM-DD) of a journal timestamp."""
        key = ts[:self._prefix]
        day = self._days.get(key)
        if day is None:
            if self._prefix == 13:  # whole-hour zones: the 24 hours of that UTC date at once
                self._fill_date(ts[:10])
                day = self._days.get(key)
            if day is None:
                day = self._days[key] = self._local(
                    datetime.fromisoformat(ts[:19] + "+00:00")).strftime("%Y-%m-%d")
        return day

    def _local(self, when: datetime) -> datetime:
        return when.astimezone(self.tz) if self.tz is not None else when.astimezone()

    def _fill_date(self, utc_date: str) -> None:
        """Memoise the local date of each hour of a UTC date, when the zone's offset
        is the same all that day (two conversions, not 24; else each hour on its own)."""
        try:
            midnight = datetime.fromisoformat(utc_date + "T00:00:00+00:00")
        except ValueError:
            return
        offset = self._local(midnight).utcoffset()
        if offset is None or self._local(midnight + timedelta(hours=23)).utcoffset() != offset:
            return
        names: dict[date, str] = {}
        for hour in range(24):
            local = (midnight + timedelta(hours=hour) + offset).date()
            name = names.get(local)
            if name is None:
                name = names[local] = local.isoformat()
            self._days[f"{utc_date}T{hour:02d}"] = name

    # --- feeding ----------------------------------------------------------------

    def add_records(self, records: Iterable[UsageRecord]) -> None:
        """Feed records (in journal order) that do not come from a file."""
        first = self.stats.lines
        recs = list(records)
        self.stats.lines += len(recs)
        numbers = list(range(first + 1, first + len(recs) + 1))
        for n, rec in zip(numbers, recs):
            if rec.request_id:
                self._kept[n] = rec
        self._feed(recs, first, numbers)
        self.resolve(self._kept.get)

    def feed_block(self, block: bytes, base: int) -> None:
        """Feed complete journal lines (``block`` ends with a newline) starting at byte ``base``.

        A record's position (:attr:`rids`, :attr:`replaced`, :attr:`tot_log`) is
        its line number; :attr:`marks` say where some lines start, so that
        :func:`claudewrap.usage.rollup.fetcher` can find a line again. Records that a
        better source replaced are taken back by :meth:`resolve`, which the
        caller runs with a way to re-read a line.
        """
        count = block.count(b"\n")
        first = self.stats.lines
        self.stats.lines += count
        lines, offsets = self.marks
        if not offsets or base != self._fed_end or base - offsets[-1] >= _MARK_EVERY:
            lines.append(first + 1)
            offsets.append(base)
        self._fed_end = base + len(block)
        self._feed(self._decode_block(block, count, first), first,
                   range(first + 1, first + count + 1))

    def _decode_block(self, block: bytes, count: int, first: int) -> list[Any]:
        """The records of ``count`` lines (None for a bad or blank line, counted)."""
        try:
            objs = decode_lines(block)
        except ValueError:
            objs = None
        if objs is not None and len(objs) == count:
            return objs
        if len(block) > _PIECE and count > 1:
            # One bad line in a big block: decode it in pieces, so that only
            # the piece with that line goes line by line (a single line longer
            # than a piece, e.g. megabytes of garbage, is already one piece).
            out: list[Any] = []
            start = 0
            while start < len(block):
                end = block.rfind(b"\n", start, start + _PIECE) + 1 or (
                    block.index(b"\n", start) + 1)
                piece = block[start:end]
                n = piece.count(b"\n")
                out += self._decode_block(piece, n, first + len(out))
                start = end
            return out
        objs = []
        lines = block.split(b"\n")
        lines.pop()
        for n, line in enumerate(lines, first + 1):
            rec = None
            if line.strip():
                rec = self._try_fast(line)
                if rec is None:
                    rec = parse_line(line)
                    if rec is not None and (b"\\ud" in line or b"\\uD" in line):
                        rec = _spelled_out(rec)
                if rec is None:
                    self.stats.bad(n)
            objs.append(rec)
        return objs

    @staticmethod
    def _try_fast(line: bytes) -> Any:
        try:
            objs = decode_lines(line + b"\n")
        except ValueError:
            return None
        return objs[0] if len(objs) == 1 else None

    def _context(self, session: str, source: str, cs: str | None, approx: bool) -> list[Any]:
        """``[session, source, Claude session, approximate, unit, unit key, priority]``.

        The priority is rule 1's rank of the source.
        """
        ukey = unit_key(session, source, cs, approx)
        unit = self.units.get(ukey)
        if unit is None and self.archive is not None and self.archive.holds(ukey):
            self.unarchive()
            unit = self.units.get(ukey)
        if unit is None:
            unit = self.units[ukey] = Unit()
        elif unit.__class__ is list:
            unit = self.units[ukey] = Unit.from_saved(unit)
        return [session, source, cs, approx, unit, ukey, 1 if approx else PRIORITY.get(source, 2)]

    def _feed(self, objs: list[Any], first: int, positions: Sequence[int]) -> None:
        """The hot loop: one pass over parsed lines; ``positions[n]``: line ``n``'s position.

        Consecutive records mostly belong to the same unit, attribution and
        bucket, so the last ones are kept at hand: comparing a few fields is
        cheaper than building and hashing the keys again. Two units, because
        an OTel record and the transcript record of the same request often
        alternate. Deltas are collected per bucket and summed at C speed at the end.
        """
        since, until = self.since, self.until
        rids = self.rids
        rid_index = self.rid_index if self.rid_index else None
        replaced = self.replaced
        replaced_before = self.replaced_before
        attr_ids = self._attr_ids
        attrs = self.attrs
        days = self._days
        prefix = self._prefix
        day_of = self.day
        tot_log = self.tot_log
        context = self._context
        first_seen = self.first_seen
        bad = self.stats.skipped
        rid_newest = self._rid_newest
        old_newest = self._rid_old_newest
        recent_cut = self._recent_cut
        recent_add = self._rids_recent.add
        # The last unit (its context from _context, unpacked) and the one before.
        u_session: Any = None
        u_source: Any = None
        u_cs: Any = None
        u_approx: Any = None
        unit: Any = None
        ukey: Any = None
        prio: Any = None
        other: Any = [None, None, None, None, None, None, None]
        # The last delta bucket: its unit, model, day, attribution and printed flag; its list.
        b_unit: Any = None
        b_model: Any = None
        b_day: Any = None
        b_aid: Any = None
        b_printed: Any = None
        b_add: Any = None  # its list's append
        pending: dict[int, tuple[Vec, list[Any], bool]] = {}
        for n, r in enumerate(objs):
            if r is None:
                continue
            ts = r.ts
            kind = r.kind
            if len(ts) != 24 or ts[23] != "Z" or kind not in _KINDS:
                r = self._odd(r)
                if r is None:
                    self.stats.bad(first + n + 1)
                    continue
                ts = r.ts
                kind = r.kind
            session = r.session
            source = r.source
            cs = r.claude_session
            approx = r.approximate
            if not (session == u_session and source == u_source and cs == u_cs
                    and approx is u_approx):
                if (session == other[0] and source == other[1] and cs == other[2]
                        and approx is other[3]):
                    ctx = other
                else:
                    ctx = context(session, source, cs, approx)
                    if session not in first_seen:  # a new id comes with a new unit
                        first_seen[session] = positions[n]
                    if cs and cs not in first_seen:
                        first_seen[cs] = positions[n]
                other = [u_session, u_source, u_cs, u_approx, unit, ukey, prio]
                u_session, u_source, u_cs, u_approx, unit, ukey, prio = ctx
            project = r.project
            host = r.host
            pane = r.tmux_pane or r.screen_session
            tags = r.tags
            agent = r.agent
            command = r.command
            last = unit.last
            if (last is not None and last[0] == project and last[1] == host
                    and last[2] == pane and last[3] == tags and last[5] == agent
                    and last[6] == command):
                aid = last[4]
            else:
                akey = (project, host, pane, attribution_tags(tags, agent, command))
                aid = attr_ids.get(akey)
                if aid is None:
                    aid = attr_ids[akey] = len(attrs)
                    attrs.append(akey)
                unit.last = (project, host, pane, tags, aid, agent, command)
            if until is not None and ts >= until:
                continue
            cost = r.cost_usd
            printed = cost is not None and not r.cost_estimated
            model = r.model
            day = days.get(ts[:prefix]) or day_of(ts)
            if kind == "total":
                if not printed:
                    cost = 0.0
                unit.has_total = True
                if tot_log is not None:
                    tot_log.setdefault((ukey, model), []).append(positions[n])
                mx = unit.tot_max.get(model)
                if mx is None:
                    mx = unit.tot_max[model] = [0, 0, 0, 0, 0.0]
                i = r.input_tokens
                o = r.output_tokens
                cr = r.cache_read_tokens
                cw = r.cache_write_tokens
                di = i - mx[0] if i > mx[0] else 0
                do = o - mx[1] if o > mx[1] else 0
                dr = cr - mx[2] if cr > mx[2] else 0
                dw = cw - mx[3] if cw > mx[3] else 0
                dc = cost - mx[4] if printed and cost > mx[4] else 0.0
                if not (di or do or dr or dw or dc):
                    continue
                mx[0] += di
                mx[1] += do
                mx[2] += dr
                mx[3] += dw
                mx[4] += dc
                if since is not None and ts < since:
                    continue  # before the window: it only raises the baseline
                bkey = (model, day, aid, printed)
                vec = unit.tot.get(bkey)
                if vec is None:
                    unit.tot[bkey] = [1, di, do, dr, dw, dc]
                else:
                    vec[0] += 1
                    vec[1] += di
                    vec[2] += do
                    vec[3] += dr
                    vec[4] += dw
                    vec[5] += dc
                continue
            if since is not None and ts < since:
                continue
            rid = r.request_id
            if rid:
                prev = rids.get(rid)
                if prev is not None:
                    if prio <= prev & 7:
                        continue  # the same request, already counted from a source as good
                    replaced.append(prev >> 3)
                elif rid_index is not None:
                    prev = rid_index.get(rid, ts)
                    if prev is not None:
                        if prio <= prev & 7:
                            continue
                        replaced_before.append(prev >> 3)  # numbered as before this part
                rids[rid] = (positions[n] << 3) | prio
                if ts >= recent_cut:
                    recent_add(rid)
                    if ts > rid_newest:  # noqa: PLR1730 - no call in the hot loop
                        rid_newest = ts
                elif ts > old_newest:
                    old_newest = ts
            if not (unit is b_unit and day is b_day and aid == b_aid and printed is b_printed
                    and model == b_model):
                bkey = (model, day, aid, printed)
                dlt = unit.dlt
                vec = dlt.get(bkey)
                if vec is None:
                    vec = dlt[bkey] = [0, 0, 0, 0, 0, 0.0]
                entry = pending.get(id(vec))
                if entry is None:
                    entry = pending[id(vec)] = (vec, [], printed)
                b_unit, b_model, b_day, b_aid, b_printed = unit, model, day, aid, printed
                b_add = entry[1].append
            b_add(r)
        for vec, recs, printed in pending.values():
            vec[0] += len(recs)
            vec[1] += sum(map(_IN, recs))
            vec[2] += sum(map(_OUT, recs))
            vec[3] += sum(map(_CR, recs))
            vec[4] += sum(map(_CW, recs))
            if printed:
                vec[5] += sum(map(_COST, recs))
        self._rid_newest = rid_newest
        self._rid_old_newest = old_newest
        # Good: every record, less those that were not (None, or counted bad above).
        self.stats.good += len(objs) - objs.count(None) - (self.stats.skipped - bad)

    def mark_before(self, line: int) -> tuple[int, int] | None:
        """The nearest of :attr:`marks` at or before ``line``: ``(its line, where that
        line starts)``; None if there is none."""
        lines, offsets = self.marks
        i = bisect_right(lines, line) - 1
        return (lines[i], offsets[i]) if i >= 0 else None

    def _saved_first(self) -> dict[str, int]:
        if self._first_before is None:
            self._first_before = dict(loads(self.saved_first)) if self.saved_first else {}
        return self._first_before

    def first_line(self, sid: str) -> int | None:
        """The line where ``sid`` (a session or Claude session id) first appears; None
        if it never does (or the state was not read from line 1 with this index)."""
        if self._first_before is None and self.saved_first:
            # One id of a big index (`cost --session`): find its pair in the saved
            # bytes, [["id",line],...], sorted, as written by msgspec or json (a raw
            # `["` cannot be inside a JSON string), rather than decode all of it
            # (~8 ms at 1M records). An id that JSON escapes: decode it all.
            import json

            quoted = json.dumps(sid, ensure_ascii=False)
            if "\\" not in quoted and not any("\ud800" <= c <= "\udfff" for c in sid):
                needle = b"[" + quoted.encode("utf-8") + b","
                at = self.saved_first.find(needle)
                if at < 0:
                    return self.first_seen.get(sid)
                end = self.saved_first.find(b"]", at + len(needle))
                return int(self.saved_first[at + len(needle):end])
        line = self._saved_first().get(sid)
        return line if line is not None else self.first_seen.get(sid)

    def first_part(self) -> bytes:
        """:meth:`first_line`'s index as the cache saves it."""
        if not self.first_seen and self.saved_first is not None:
            return self.saved_first
        merged = dict(self.first_seen)
        merged.update(self._saved_first())  # the earlier line wins
        return dumps(sorted(merged.items()))

    def seal(self) -> None:
        """Move the request ids fed so far into :attr:`rid_index`, as a new segment.

        A segment is sorted once here, where the rollup needs it.
        """
        rids, recent = self.rids, self._rids_recent
        if rids:
            if recent and len(recent) < len(rids):
                # Two segments: one that records of the last days never look into.
                self.rid_index.add({k: v for k, v in rids.items() if k not in recent},
                                   self._rid_old_newest)
                self.rid_index.add({k: rids[k] for k in recent}, self._rid_newest)
            else:
                self.rid_index.add(rids, max(self._rid_newest, self._rid_old_newest))
            self.rids = {}
        self._rid_newest = self._rid_old_newest = ""
        recent.clear()

    @staticmethod
    def _odd(line: Any) -> UsageRecord | None:
        """A record whose time is not in the journal's UTC form, or with an unknown kind."""
        if isinstance(line, UsageRecord):
            r = line
        else:
            r = UsageRecord(**{f: getattr(line, f) for f in line.__struct_fields__
                               if getattr(line, f) is not None or f in ("model", "cost_usd")})
        ts = _normalize_ts(r.ts)
        if ts is None:
            return None
        kind = r.kind if r.kind in _KINDS else "delta"
        if ts == r.ts and kind == r.kind:
            return r
        return UsageRecord(**{**r.__dict__, "ts": ts, "kind": kind})

    def resolve(self, fetch: Callable[[int], UsageRecord | None]) -> None:
        """Take back the records that a better source replaced.

        ``fetch(position)`` returns the record at that position (a line number),
        called in increasing order.
        """
        replaced = self.replaced + self.replaced_before
        self.replaced, self.replaced_before = [], []
        for position in sorted(replaced):
            self._take_back(fetch(position))

    def _take_back(self, r: UsageRecord | None) -> None:
        if r is not None:
            r = self._odd(r)
        if r is not None:
            self._subtract(r)

    def merge(self, other: UsageState, fetch: Callable[[int], UsageRecord | None]) -> None:
        """Add ``other``, the state of the journal lines that follow ours (rollup.py).

        ``other`` must have been fed with :attr:`tot_log` on (a running total
        whose session is in both parts is fed again from our running maximum),
        seeing our request ids from before this read, and then be given an
        :attr:`rid_index` of its own ids only; its :attr:`replaced` are resolved
        here. Its positions (line numbers) follow ours; ``fetch(position)``
        re-reads a line, once our marks include ``other``'s.
        """
        if self.archive is not None and any(map(self.archive.holds, other.units)):
            self.unarchive()
        shift = self.stats.lines  # other's line 1 is our line shift + 1
        for seg in other.rid_index.segments:
            seg.values = array("Q", map(add, seg.values, repeat(shift << 3)))
        other.replaced = [p + shift for p in other.replaced] + other.replaced_before
        other.replaced_before = []
        self.marks[0].extend(line + shift for line in other.marks[0])
        for sid, line in other.first_seen.items():
            self.first_seen.setdefault(sid, line + shift)
        self.marks[1].extend(other.marks[1])
        self._fed_end = -1
        remap = []
        for akey in other.attrs:
            aid = self._attr_ids.get(akey)
            if aid is None:
                aid = self._attr_ids[akey] = len(self.attrs)
                self.attrs.append(akey)
            remap.append(aid)
        same_ids = remap == list(range(len(remap)))
        straddling: list[tuple[UnitKey, Any]] = []
        for ukey, unit in other.units.items():
            if ukey not in self.units and unit.__class__ is list:
                if not same_ids:  # saved rows: [model, day, attribution id, ...]
                    for row in (*unit[2], *unit[3]):
                        row[2] = remap[row[2]]
                self.units[ukey] = unit
                continue
            theirs = other.working_unit(ukey)
            ours = self.working_unit(ukey)
            if ours is None:
                ours = self.units[ukey] = Unit()
            assert theirs is not None
            ours.has_total = ours.has_total or theirs.has_total
            again = set()
            for model, mx in theirs.tot_max.items():
                if model in ours.tot_max:
                    again.add(model)
                    straddling.append((ukey, model))
                else:
                    ours.tot_max[model] = mx
            for mine, bucket_dict in ((ours.dlt, theirs.dlt), (ours.tot, theirs.tot)):
                for (model, day, aid, printed), vec in bucket_dict.items():
                    if bucket_dict is theirs.tot and model in again:
                        continue
                    key = (model, day, remap[aid], printed)
                    have = mine.get(key)
                    if have is None:
                        mine[key] = vec
                    else:
                        for j in range(6):
                            have[j] += vec[j]
        our_ids = self._merge_rids(other, fetch)
        for position in sorted(other.replaced):
            r = fetch(position)
            if (position <= shift and r is not None and r.request_id
                    and id_bytes(r.request_id) in our_ids):
                # A record from before this read that a request of our part had
                # already met (and replaced, or lost to): rule 1 between our part
                # and theirs was settled above.
                continue
            self._take_back(r)
        other.replaced = []
        base = shift
        self.stats.lines += other.stats.lines
        self.stats.good += other.stats.good
        self.stats.skipped += other.stats.skipped
        self.stats.first_bad_lines = (self.stats.first_bad_lines + [
            base + n for n in other.stats.first_bad_lines])[:MAX_BAD_LINES]
        if straddling:
            assert other.tot_log is not None
            positions = sorted(p + shift for key in straddling for p in other.tot_log[key])
            recs = [fetch(p) for p in positions]
            kept = (self.stats.good, self.stats.skipped, list(self.stats.first_bad_lines))
            self._feed([r for r in recs if r is not None],
                       0, [p for p, r in zip(positions, recs) if r is not None])
            self.stats.good, self.stats.skipped, self.stats.first_bad_lines = kept

    def _merge_rids(self, other: UsageState, fetch: Callable[[int], UsageRecord | None]
                    ) -> set[bytes]:
        """Rule 1 between our new request ids and ``other``'s; theirs become our newest.

        Returns our new request ids (as the index keeps them).
        """
        self.seal()
        other.seal()
        theirs = other.rid_index.segments  # other's own: none from before this read
        index = self.rid_index
        ours = index.new_ids()
        if ours and theirs:
            for seg in theirs:
                for key in ours.intersection(seg.keys):
                    prev = index.get_key(key)
                    assert prev is not None
                    i = seg.find(key)
                    value = seg.values[i]
                    if value & 7 > prev & 7:
                        self._take_back(fetch(prev >> 3))
                    else:
                        self._take_back(fetch(value >> 3))
                        seg.values[i] = prev  # the newest segment holds the value that counts
        index.segments.extend(theirs)
        return ours

    def freeze(self) -> None:
        """Put every unit in its saved form (what :meth:`to_json` and reports read fastest),
        and list the request ids added since the rollup (what :meth:`merge` compares)."""
        self.seal()
        self.rid_index.new_ids()
        units = self.units
        for key, unit in units.items():
            if isinstance(unit, Unit):
                units[key] = unit.to_json()

    def working_unit(self, key: UnitKey) -> Unit | None:
        """The unit ``key`` in its working form (a saved one is converted), or None."""
        unit = self.units.get(key)
        if unit is None and self.archive is not None and self.archive.holds(key):
            self.unarchive()
            unit = self.units.get(key)
        if isinstance(unit, list):
            unit = self.units[key] = Unit.from_saved(unit)
        return unit

    def _subtract(self, r: UsageRecord) -> None:
        unit = self.working_unit(unit_key(r.session, r.source, r.claude_session,
                                          r.approximate))
        aid = self._attr_ids.get((r.project, r.host, r.tmux_pane or r.screen_session,
                                  attribution_tags(r.tags, r.agent, r.command)))
        if unit is None or aid is None:
            return
        printed = r.cost_usd is not None and not r.cost_estimated
        vec = unit.dlt.get((r.model, self.day(r.ts), aid, printed))
        if vec is None:
            return
        vec[0] -= 1
        vec[1] -= r.input_tokens
        vec[2] -= r.output_tokens
        vec[3] -= r.cache_read_tokens
        vec[4] -= r.cache_write_tokens
        vec[5] -= r.cost_usd if printed and r.cost_usd is not None else 0.0

    # --- what counts --------------------------------------------------------------

    def buckets(self, filters: Filters | None = None) -> Iterator[tuple[UnitKey, Sequence[Any]]]:
        """What counts under rules 2 to 4 (rule 1 is applied while feeding).

        Yields ``(unit key, [model, day, attribution id, cost printed?, records,
        input, output, cache read, cache write, printed cost])``; with
        ``filters``, only the rows within its days that it matches.
        """
        filters = filters or Filters()
        since, until = filters.since_day, filters.until_day
        check = filters.active()
        attrs = self.attrs
        sessions = set(filters.sessions)
        rows: Iterable[tuple[UnitKey, Sequence[Any]]] = self._rule_rows(self.units.items())
        if self.archive is not None and self.archive.rows:
            rows = chain(rows, ((tuple(r[:4]), r[4:]) for r in self.archive.rows))
        for k, row in rows:
            day = row[1]
            if (since is not None and day < since) or (until is not None and day >= until):
                continue
            if sessions and k[0] not in sessions and k[2] not in sessions:
                continue
            if check and not matches(filters, row[0], attrs[row[2]]):
                continue
            yield k, row

    def counted_rows(self, filters: Filters | None = None) -> list[Sequence[Any]]:
        """:meth:`buckets` as one list of whole rows, ``[*unit key, *row]`` (what
        the archive keeps): for a reader that goes through every bucket once
        (reports by session, day, ...). Without filters the archive's rows are
        not copied one by one; the caller must not change them."""
        filters = filters or Filters()
        rows: list[Sequence[Any]] = [(*k, *row) for k, row in self._rule_rows(self.units.items())]
        if self.archive is not None:
            rows += self.archive.rows
        since, until = filters.since_day, filters.until_day
        check = filters.active()
        sessions = set(filters.sessions)
        if not (check or sessions or since is not None or until is not None):
            return rows
        attrs = self.attrs
        return [r for r in rows
                if not ((since is not None and r[5] < since) or (until is not None and r[5] >= until)
                        or (sessions and r[0] not in sessions and r[2] not in sessions)
                        or (check and not matches(filters, r[4], attrs[r[6]])))]

    def summary_rows(self, filters: Filters | None = None, after: str = ""
                     ) -> Iterable[tuple[UnitKey, Sequence[Any]]]:
        """:meth:`buckets`, for a reader that needs of each row no more than its model,
        project, host, source, whether its cost was printed, its numbers and whether
        its day is on or after ``after``: settled history comes as the archive's cells,
        dated ``-`` (before any day), with the unit key ``("", source, "", False)``.
        With a filter, or an ``after`` that settled rows reach, :meth:`buckets` itself."""
        archive = self.archive
        if archive is None or (filters is not None and (
                filters.active() or filters.sessions or filters.since_day is not None
                or filters.until_day is not None)) or archive.cells is None or (
                after and archive.newest >= after):
            return self.buckets(filters)
        return chain(self._rule_rows(self.units.items()),
                     ((("", c[0], "", False), [c[1], "-", *c[2:4], *c[5:]])
                      for c in archive.cells))

    def _rule_rows(self, all_units: Iterable[tuple[UnitKey, Unit | list[Any]]]
                   ) -> Iterable[tuple[UnitKey, Sequence[Any]]]:
        """Rules 2 to 4 over ``all_units`` (whole link groups: every unit that shares
        a session or Claude session id with one of them is among them)."""
        # Rule 2: sessions seen request by request by an exact source.
        all_units = list(all_units)
        per_request = {key for k, _u in all_units if k[1] in PER_REQUEST and not k[3]
                       for key in (k[0], k[2])}
        units = []
        set_aside = []
        summaries = []  # exact summaries kept (status line, ~/.claude.json, -p results)
        for k, u in all_units:
            if k[1] in SUMMARY:
                if k[0] in per_request or k[2] in per_request:
                    if _has_total(u):
                        set_aside.append((k, u))
                    continue
                if not k[3] and _has_total(u):
                    summaries.append((k, u))
            units.append((k, u))
        itemised: set[UnitKey] = set()
        if summaries:
            # A session's cost alone beside an exact summary of it with its models:
            # the latter counts, the cost alone is its floor (claudewrap.usage.rule). Only
            # a Claude session with two summaries can have both: looking at those
            # alone keeps this off the warm report's time (a -p run is a summary).
            seen: dict[str, int] = {}
            for k, _u in summaries:
                seen[k[2]] = seen.get(k[2], 0) + 1
            pairs = [(k, u) for k, u in summaries if seen[k[2]] > 1]
            itemised = {k for k, u in pairs if not cost_alone(_highest(u))}
            with_models = {k[2] for k in itemised}
            alone = {k for k, u in pairs if k[2] in with_models and k not in itemised}
            if alone:
                set_aside += [(k, u) for k, u in units if k in alone]
                units = [(k, u) for k, u in units if k not in alone]
        rows: Iterable[tuple[UnitKey, Sequence[Any]]] = self._counted(units)
        if set_aside and self.since is None and self.until is None:
            counted = list(rows)
            rows = counted + self._floor(counted, set_aside, itemised)
        return rows

    # --- settled history (Archive) ------------------------------------------------

    def settle(self, horizon: str) -> int:
        """Archive the link groups whose every row is dated before ``horizon`` (a
        :meth:`day` string); returns how many units went. Only a whole state
        (no since/until) settles: its rows are what every reader needs."""
        if self.since is not None or self.until is not None or not self.units:
            return 0
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            return _root(parent, x)

        for k in self.units:
            a, b = find(k[0]), find(k[2])
            if a != b:
                parent[a] = b
        newest: dict[str, str] = {}
        for k, u in self.units.items():
            root = find(k[0])
            day = newest.get(root, "")
            for totals in (True, False):
                for row in _unit_rows(u, totals):
                    day = max(day, row[1])
            newest[root] = day
        going = [(k, u) for k, u in self.units.items() if newest[find(k[0])] < horizon]
        if not going:
            return 0
        archive = self.archive
        if archive is None:
            archive = self.archive = Archive()
        archive.changed()
        new_rows = [[*k, *row] for k, row in self._rule_rows(going)]
        archive.rows.extend(new_rows)
        archive.newest = max([archive.newest, *(r[5] for r in new_rows)])
        self._add_cells(archive.cells, new_rows)
        body = []
        for k, u in going:
            archive.keys.update((k[0], k[2]))
            body.append([k, u if isinstance(u, list) else u.to_json()])
            del self.units[k]
        archive.bodies.append(dumps(body))
        return len(going)

    def _add_cells(self, cells: list[list[Any]] | None, rows: list[list[Any]]) -> None:
        """Sum ``rows`` into the archive's cells (see Archive): each cell is a row
        ``[source, model, attribution id, printed, mask, records, input, output,
        cache read, cache write, cost]`` whose attribution is only its project and host."""
        assert cells is not None  # a whole archive (settle's): it has its cells
        index = {(c[0], c[1], c[2], c[3], c[4]): c for c in cells}
        for r in rows:
            a = self.attrs[r[6]]
            akey = (a[0], a[1], None, ())
            aid = self._attr_ids.get(akey)
            if aid is None:
                aid = self._attr_ids[akey] = len(self.attrs)
                self.attrs.append(akey)
            mask = (1 if r[9] else 0) | (2 if r[10] else 0) | (4 if r[11] else 0) | (
                8 if r[12] else 0)
            key = (r[1], r[4], aid, r[7], mask)
            cell = index.get(key)
            if cell is None:
                cell = index[key] = [*key, 0, 0, 0, 0, 0, 0.0]
                cells.append(cell)
            for j in range(6):
                cell[5 + j] += r[8 + j]

    def unarchive(self) -> None:
        """Put the archived units back (a new record or a take-back reached one)."""
        archive, self.archive = self.archive, None
        if archive is None:
            return
        for chunk in archive.loaded_bodies():
            for key, body in loads(chunk):
                self.units[tuple(key)] = body

    @staticmethod
    def _counted(units: list[tuple[UnitKey, Unit | list[Any]]]
                 ) -> Iterator[tuple[UnitKey, Sequence[Any]]]:
        """Rules 2 (its second half) and 3 over the units rule 2 kept."""
        with_total = [(k, u) for k, u in units if _has_total(u)]
        exact_totals = {k[2] for k, u in with_total if not k[3]}
        has_total: set[tuple[str, str]] = set()
        for k, u in with_total:
            if not (k[3] and k[2] in exact_totals):
                has_total.add((k[0], k[1]))
        for k, u in units:
            totals = (k[0], k[1]) in has_total
            if totals and k[3] and k[2] in exact_totals:
                continue
            for row in _unit_rows(u, totals):
                if row[4] > 0:
                    yield k, row

    def _floor(self, counted: list[tuple[UnitKey, Sequence[Any]]],
               screens: list[tuple[UnitKey, Unit | list[Any]]], itemised: set[UnitKey]
               ) -> list[tuple[UnitKey, Sequence[Any]]]:
        """Rule 4 (claudewrap.usage.rule.floor_rows, which tests compare this with): what
        the screen totals that rule 2 set aside showed beyond the exact rows."""
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            return _root(parent, x)

        def exact_unit(k: UnitKey) -> bool:
            return (k[1] in PER_REQUEST and not k[3]) or k in itemised

        for k, _row in counted:
            if exact_unit(k):
                parent[find(k[0])] = find(k[2])
        for k, _u in screens:
            parent[find(k[0])] = find(k[2])
        exact: dict[tuple[str, Any], list[Any]] = {}
        every: dict[str, list[Any]] = {}  # the same over all models: for a cost alone
        for k, row in counted:
            if exact_unit(k):
                group = find(k[0])
                e = exact.get((group, undated(row[0])))
                if e is None:
                    e = exact[(group, undated(row[0]))] = [0, 0, 0, 0, 0.0, True]
                a = every.get(group)
                if a is None:
                    a = every[group] = [0, 0, 0, 0, 0.0, True]
                for j in range(5):
                    e[j] += row[j + 5]
                    a[j] += row[j + 5]
                e[5] = e[5] and row[3]
                a[5] = a[5] and row[3]
        shown: dict[tuple[str, Any], list[tuple[list[Any], bool]]] = {}
        where: dict[tuple[str, Any], tuple[Any, ...]] = {}
        for k, u in screens:
            group = find(k[0])
            for model, mx in _highest(u).items():
                shown.setdefault((group, model), []).append((mx, k[3]))
            for row in _unit_rows(u, True):  # where each model showed it last
                gm = (group, row[0])
                rank = (row[1], k, repr(self.attrs[row[2]]))
                if gm not in where or rank > where[gm][0]:
                    where[gm] = (rank, k, row[1], row[2])
        out: list[tuple[UnitKey, Sequence[Any]]] = []
        for gm, showings in sorted(shown.items(), key=lambda kv: repr(kv[0])):
            e = exact.get((gm[0], undated(gm[1])), [0, 0, 0, 0, 0.0, True])
            if gm[1] is None and not any(any(mx[:4]) for mx, _ in showings):
                e = every.get(gm[0], [0, 0, 0, 0, 0.0, True])  # a cost alone: every model
            more, cost, cost_printed = beyond(showings, e)
            if not (any(more) or cost) or gm not in where:
                continue
            _rank, k, day, aid = where[gm]
            out.append((k, [gm[1], day, aid, cost_printed, 1, *more, cost]))
        return out

    # --- persistence (rollup.py) --------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "tz": self.tz_key,
            "attrs": [[*a[:3], [list(t) for t in a[3]]] for a in self.attrs],
            # Keys and bodies apart: from_json rebuilds the dict without a Python
            # call per unit.
            "unit_keys": [list(k) for k in self.units],
            "unit_bodies": [u if isinstance(u, list) else u.to_json()
                            for u in self.units.values()],
            "stats": [self.stats.lines, self.stats.good, self.stats.skipped,
                      self.stats.first_bad_lines],
            "marks": self.marks,
            # The archive's rows, keys and bodies are parts the cache stores after
            # its JSON part (rollup.write_cache): here only their sizes and CRCs.
            "archive": None if self.archive is None else {
                "cells": self.archive.cells, "newest": self.archive.newest,
                "parts": [[name, len(b), zlib.crc32(b)] for name, b in self.archive.parts()]},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], tz: tzinfo | None = None) -> UsageState:
        """The state saved by :meth:`to_json`; ValueError if it was made for another zone."""
        state = cls(tz)
        if data["tz"] != state.tz_key:
            raise ValueError("saved for another time zone")
        # (No Python call per attribution or unit: 5,700 of them at 1M records.)
        state.attrs = [(a[0], a[1], a[2], tuple(map(tuple, a[3]))) for a in data["attrs"]]
        state._attr_ids = dict(zip(state.attrs, range(len(state.attrs))))
        state.units = dict(zip(map(tuple, data["unit_keys"]), data["unit_bodies"]))
        lines, good, skipped, first_bad = data["stats"]
        state.stats = ScanStats(lines, good, skipped, list(first_bad))
        mark_lines, mark_offsets = data["marks"]
        state.marks = (list(mark_lines), list(mark_offsets))
        archive = data.get("archive")
        if archive is not None:  # its parts: rollup.read_cache sets how to read them
            state.archive = Archive(None, None, archive["cells"])
            state.archive.newest = archive["newest"]
        return state


# --- reports -------------------------------------------------------------------------


