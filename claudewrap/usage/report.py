"""Reports from the state: rows, filters, groupings, periods and prices."""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta, timezone, tzinfo

from claudewrap.plain import field, plain
from claudewrap.store.records import MAIN_AGENT, UsageRecord, iso_utc
from claudewrap.usage.filters import (
    DIMENSIONS,
    NO_COMMAND,
    NONE,
    UNKNOWN_MODEL,
    Filters,
    attribution,
)
from claudewrap.usage.pricing import Price, PriceTable, default_table
from claudewrap.usage.rule import AGENT_TAG, COMMAND_TAG
from claudewrap.usage.state import UnitKey, UsageState

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms a reader)
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

    from claudewrap.store.journal import StrPath

    # (total, periods, groups) of a report, before they are rows: see _bucket_sums
    Sums = tuple[list[Any], dict[str, list[Any]], dict[tuple[str, ...], dict[Any, list[Any]]]]


@plain
class Row:
    """One line of a report."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0  # printed + estimated; tokens of unpriced models add nothing
    cost_estimated_usd: float = 0.0  # the part of cost_usd that claudewrap priced
    unpriced_records: int = 0  # records of models without a price: their cost is unknown
    records: int = 0
    sessions: int = 0

    @property
    def tokens(self) -> int:
        return (self.input_tokens + self.output_tokens + self.cache_read_tokens
                + self.cache_write_tokens)

    def add(self, other: Row) -> None:
        """Add ``other``'s numbers (not its sessions: they may be the same ones)."""
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.cost_usd += other.cost_usd
        self.cost_estimated_usd += other.cost_estimated_usd
        self.unpriced_records += other.unpriced_records
        self.records += other.records

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form (keys documented in the README)."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "cost_estimated_usd": round(self.cost_estimated_usd, 6),
            "unpriced_records": self.unpriced_records,
            "records": self.records,
            "sessions": self.sessions,
        }




def parse_dimension(name: str) -> str:
    """Validate a ``--by`` value: one of DIMENSIONS or ``tag:KEY``. Raises ValueError."""
    name = name.strip()
    if name.startswith("tag:") and len(name) > 4:
        return name
    if name.lower() in DIMENSIONS:
        return name.lower()
    raise ValueError(f"cannot group by {name!r}: use one of {', '.join(DIMENSIONS)} or tag:KEY")


def week_of(day: str) -> str:
    year, week, _ = date.fromisoformat(day).isocalendar()
    return f"{year}-W{week:02d}"


def _label(dim: str, unit: UnitKey, row: Sequence[Any], attrs: tuple[Any, ...],
           weeks: dict[str, str]) -> str:
    if dim == "model":
        return str(row[0]) if row[0] else UNKNOWN_MODEL
    if dim == "day":
        return str(row[1])
    if dim == "week":
        week = weeks.get(row[1])
        if week is None:
            week = weeks[row[1]] = week_of(row[1])
        return week
    if dim == "month":
        return str(row[1][:7])
    if dim == "session":
        return unit[0]
    if dim == "source":
        return unit[1]
    if dim == "project":
        return str(attrs[0]) if attrs[0] else NONE
    if dim == "host":
        return str(attrs[1]) if attrs[1] else NONE
    if dim == "pane":
        return str(attrs[2]) if attrs[2] else NONE
    if dim == "agent":
        return attribution(attrs, AGENT_TAG) or MAIN_AGENT
    if dim == "command":
        return attribution(attrs, COMMAND_TAG) or NO_COMMAND
    for key, value in attrs[3]:  # tag:KEY
        if key == dim[4:]:
            return str(value)
    return NONE


@plain
class Report:
    """Totals and breakdowns. ``groups[dims]`` maps a tuple of labels to its row."""

    total: Row
    groups: dict[tuple[str, ...], dict[tuple[str, ...], Row]]
    periods: dict[str, Row]  # "today", "this week", "this month", "all time"
    skipped_lines: int = 0
    first_bad_lines: list[int] = field(default_factory=list)
    records_read: int = 0  # good journal records, whether or not the filters kept them
    table: PriceTable | None = None  # the prices used, with any learned from the journal


def period_days(today: date) -> dict[str, str]:
    """First day of today, this week (Monday) and this month."""
    return {"today": today.isoformat(),
            "this week": (today - timedelta(days=today.weekday())).isoformat(),
            "this month": today.replace(day=1).isoformat()}






class _Acc:
    """Sums for one report row (a list is cheaper than a dataclass in the hot loop)."""

    __slots__ = ("sessions", "v")

    def __init__(self) -> None:
        self.v: list[Any] = [0, 0, 0, 0, 0.0, 0.0, 0, 0]
        self.sessions: set[str] = set()

    def row(self) -> Row:
        v = self.v
        return Row(int(v[0]), int(v[1]), int(v[2]), int(v[3]), v[4], v[5], int(v[6]),
                   int(v[7]), len(self.sessions))


def estimated_cost(prices: dict[Any, Price | None], table: PriceTable, model: Any, n: int,
                   i: int, o: int, cr: int, cw: int) -> tuple[float, int]:
    """A bucket's cost priced from the table (``prices`` memoises lookups), and
    its records when the model has no price: then the cost is unknown, not 0."""
    if model in prices:
        price = prices[model]
    else:
        price = prices[model] = table.lookup(model)
    cost = price.cost(i, o, cr, cw) if price is not None else (
        0.0 if not (i or o or cr or cw) else None)
    if cost is None:
        return 0.0, n
    return cost, 0


def _full_price(prices: dict[Any, Price | None], table: PriceTable, model: Any) -> bool:
    """Whether ``model`` has every rate (its cost is then linear in the tokens)."""
    if model in prices:
        price = prices[model]
    else:
        price = prices[model] = table.lookup(model)
    return price is not None and None not in (price.input, price.output, price.cache_read,
                                              price.cache_write_5m)


_BY_MODEL = ("model",)
_BY_PROJECT = ("project",)


def make_report(state: UsageState, *, dims: Iterable[tuple[str, ...]] = (),
                filters: Filters | None = None, today: date | None = None,
                table: PriceTable | None = None, count_sessions: bool = True) -> Report:
    """Totals, the requested groupings (tuples of DIMENSIONS) and the periods.

    ``today`` (default: today in the state's zone) anchors today/this week/this
    month. Without ``count_sessions`` the rows' ``sessions`` stay 0 (faster).
    Usage of a model without a list price is priced with rates learned from the
    state's exact records of it (:func:`claudewrap.usage.price_fit.learn_prices`).
    """
    table = table or default_table()
    dims = tuple(dims)  # used twice below
    report = _priced_report(state, dims=dims, filters=filters, today=today, table=table,
                            count_sessions=count_sessions)
    # Only a report with unpriced usage can change: no second pass otherwise.
    if report.total.unpriced_records:
        from claudewrap.usage.price_fit import learn_prices

        learned = learn_prices(state, table)
        if learned is not table:
            report = _priced_report(state, dims=dims, filters=filters, today=today,
                                    table=learned, count_sessions=count_sessions)
            table = learned
    report.table = table
    return report


def _priced_report(state: UsageState, *, dims: Iterable[tuple[str, ...]],
                   filters: Filters | None, today: date | None, table: PriceTable,
                   count_sessions: bool) -> Report:
    """make_report with ``table`` as it is."""
    filters = filters or Filters()
    if today is None:
        now = datetime.now(timezone.utc)
        today = (now.astimezone(state.tz) if state.tz is not None else now.astimezone()).date()
    starts = period_days(today)
    p_today, p_week, p_month = starts["today"], starts["this week"], starts["this month"]
    dims = tuple(dict.fromkeys(dims))
    if count_sessions or not all(d in (_BY_MODEL, _BY_PROJECT) for d in dims):
        return _report_of(_bucket_sums(state, dims, filters, table, starts, count_sessions),
                          state)
    groups: dict[tuple[str, ...], dict[tuple[str, ...], _Acc]] = {d: {} for d in dims}
    periods = {name: _Acc() for name in ("today", "this week", "this month", "all time")}
    a_total, a_today, a_week, a_month = (periods["all time"], periods["today"],
                                         periods["this week"], periods["this month"])
    prices: dict[Any, Price | None] = {}
    attrs_list = state.attrs
    # The common reports (the default table, budgets, status): sum rows into
    # a few cells (model, project, which periods) first, then the cells into
    # the report; far fewer additions than every row into every target.
    # Cell: [in, out, cr, cw, cost, estimated, unpriced, records, and the tokens
    # of rows to price: in, out, cr, cw]. A model with every rate is priced once
    # a cell (the price is linear); others row by row (a missing rate makes a
    # row's cost unknown only if it has such tokens).
    cells: dict[tuple[Any, Any, int], list[Any]] = {}
    for _unit, row in state.summary_rows(filters, after=min(p_week, p_month)):
        model, day, aid, printed, n, i, o, cr, cw, cost = row
        attrs = attrs_list[aid]
        when = (4 if day >= p_month else 0) | (2 if day >= p_week else 0) | (
            1 if day >= p_today else 0)
        ckey = (model, attrs[0], when)
        v = cells.get(ckey)
        if v is None:
            v = cells[ckey] = [0, 0, 0, 0, 0.0, 0.0, 0, 0, 0, 0, 0, 0]
        v[0] += i
        v[1] += o
        v[2] += cr
        v[3] += cw
        v[7] += n
        if printed:
            v[4] += cost
        elif _full_price(prices, table, model):
            v[8] += i
            v[9] += o
            v[10] += cr
            v[11] += cw
        else:
            cost, unpriced = estimated_cost(prices, table, model, n, i, o, cr, cw)
            v[4] += cost
            v[5] += cost
            v[6] += unpriced
    for (model, _project, _when), v in cells.items():
        if v[8] or v[9] or v[10] or v[11]:
            cost, _ = estimated_cost(prices, table, model, 0, v[8], v[9], v[10], v[11])
            v[4] += cost
            v[5] += cost
        del v[8:]
    for (model, project, when), cv in cells.items():
        targets = [a_total]
        if when & 4:
            targets.append(a_month)
        if when & 2:
            targets.append(a_week)
        if when & 1:
            targets.append(a_today)
        for d, rows in groups.items():
            label = (model or UNKNOWN_MODEL) if d == _BY_MODEL else (project or NONE)
            acc = rows.get((label,))
            if acc is None:
                acc = rows[(label,)] = _Acc()
            targets.append(acc)
        for acc in targets:
            v = acc.v
            for j in range(8):
                v[j] += cv[j]
    return _finish_report(a_total, groups, periods, state)


_NO_RATES = (None, None, None, None)
_ZERO = (0, 0, 0, 0, 0.0, 0.0, 0, 0)


def _added(values: Iterable[float], total: float) -> float:
    """``total`` plus each of ``values`` in turn, with ``+`` (functools.reduce(add)
    without importing functools and collections on the status line's path)."""
    for v in values:
        total += v
    return total


def _summed(vecs: list[tuple[Any, ...]], idx: list[int], sessions: int) -> list[Any]:
    """The sums of ``vecs[k]`` for k in ``idx`` (each ``(in, out, cr, cw, cost,
    estimated, unpriced, records)``) and ``sessions``: added in order from 0 as
    _Acc adds them, the costs with ``+`` one by one (sum() of floats compensates
    from Python 3.12 on: another last digit now and then), the counts with sum()."""
    if len(idx) == 1:
        i, o, cr, cw, c, e, u, n = vecs[idx[0]]
        return [i, o, cr, cw, 0.0 + c, 0.0 + e, u, n, sessions]
    i, o, cr, cw, c, e, u, n = zip(*[vecs[k] for k in idx]) if idx else _ZERO_COLUMNS
    return [sum(i), sum(o), sum(cr), sum(cw), _added(c, 0.0), _added(e, 0.0),
            sum(u), sum(n), sessions]


_ZERO_COLUMNS = ((),) * 8


def _indexed(labels: list[Any]) -> dict[Any, list[int]]:
    """The positions of each label in ``labels``, in order."""
    groups: dict[Any, list[int]] = {}
    get = groups.get
    for k, label in enumerate(labels):
        g = get(label)
        if g is None:
            groups[label] = [k]
        else:
            g.append(k)
    return groups


def _price_of(price: Price | None) -> tuple[Any, ...] | None:
    """A price's four rates, or None."""
    if price is None:
        return None
    return (price.input, price.output, price.cache_read, price.cache_write_5m)


def _priced(rows: Sequence[Sequence[Any]], table: PriceTable) -> list[tuple[Any, ...]]:
    """``(in, out, cr, cw, cost, estimated, unpriced, records)`` of each whole row
    (``[*unit key, model, day, aid, printed, n, in, out, cr, cw, cost]``), priced
    as :func:`estimated_cost` prices it."""
    prices: dict[Any, Price | None] = {}
    rates: dict[Any, tuple[Any, ...] | None] = {}
    vecs: list[tuple[Any, ...]] = []
    append = vecs.append
    for r in rows:
        model, printed, n, i, o, cr, cw, cost = r[4], r[7], r[8], r[9], r[10], r[11], r[12], r[13]
        if printed:
            append((i, o, cr, cw, cost, 0.0, 0, n))
            continue
        rate = rates.get(model, _NO_RATES)
        if rate is _NO_RATES:
            rate = _price_of(table.lookup(model))
            rate = rates[model] = None if rate is None or None in rate else rate
        if rate is None:
            cost, unpriced = estimated_cost(prices, table, model, n, i, o, cr, cw)
            append((i, o, cr, cw, cost, cost, unpriced, n))
            continue
        # Price.cost, inline: the same additions (a call a bucket is a fifth of this loop).
        t = 0.0
        if i:
            t += i * rate[0]
        if o:
            t += o * rate[1]
        if cr:
            t += cr * rate[2]
        if cw:
            t += cw * rate[3]
        t /= 1_000_000
        append((i, o, cr, cw, t, t, 0, n))
    return vecs


def _bucket_sums(state: UsageState, dims: tuple[tuple[str, ...], ...], filters: Filters,
                 table: PriceTable, starts: dict[str, str], count_sessions: bool) -> Sums:
    """The general report (any dims, sessions counted): ``(total, periods, groups)``,
    each row the list ``[in, out, cr, cw, cost, estimated, unpriced, records,
    sessions]``; ``groups[dims]`` keyed by the label for one dimension, by the
    tuple of labels for several.

    One pass prices each bucket and keeps its numbers and labels in columns;
    each grouping then gathers its buckets by label and adds them up in C (zip,
    sum). Every row adds the same numbers in the same order as a loop over the
    buckets into each row's sums (_Acc) did: the same floats to the last bit, at
    a fraction of the time (issue 16: `usage --json` at 1M records, 16,000
    buckets into 12,000 rows).
    """
    rows = state.counted_rows(filters)
    vecs = _priced(rows, table)
    attrs = state.attrs
    sessions = [r[0] for r in rows]
    days = [r[5] for r in rows]
    weeks: dict[str, str] = {}

    def column(dim: str) -> list[Any]:
        if dim == "session":
            return sessions
        if dim == "day":
            return days
        if dim == "model":
            return [r[4] or UNKNOWN_MODEL for r in rows]
        if dim == "project":
            projects = [a[0] or NONE for a in attrs]
            return [projects[r[6]] for r in rows]
        return [_label(dim, tuple(r[:4]), r[4:], attrs[r[6]], weeks) for r in rows]

    def sessions_in(idx: list[int]) -> int:
        if not count_sessions:
            return 0
        return 1 if len(idx) == 1 else len({sessions[k] for k in idx})

    columns: dict[str, list[Any]] = {}
    groups: dict[tuple[str, ...], dict[Any, list[Any]]] = {}
    for d in dims:
        for x in d:
            if x not in columns:
                columns[x] = column(x)
        labels = columns[d[0]] if len(d) == 1 else list(zip(*(columns[x] for x in d)))
        one = 1 if count_sessions else 0
        if "session" in d:  # a session's row has that one session
            groups[d] = {k: _summed(vecs, idx, one) for k, idx in _indexed(labels).items()}
        else:
            groups[d] = {k: _summed(vecs, idx, sessions_in(idx))
                         for k, idx in _indexed(labels).items()}
    periods: dict[str, list[Any]] = {}
    for name in ("today", "this week", "this month"):
        start = starts[name]
        idx = [k for k, day in enumerate(days) if day >= start]
        periods[name] = _summed(vecs, idx, sessions_in(idx)) if idx else [*_ZERO, 0]
    everything = list(range(len(vecs)))
    total = periods["all time"] = (_summed(vecs, everything, sessions_in(everything))
                                   if vecs else [*_ZERO, 0])
    return total, periods, groups


def _row(v: list[Any]) -> Row:
    return Row(int(v[0]), int(v[1]), int(v[2]), int(v[3]), v[4], v[5], int(v[6]), int(v[7]),
               v[8])


def _report_of(sums: Sums, state: UsageState) -> Report:
    """The report of :func:`_bucket_sums`' numbers."""
    total, periods, groups = sums
    return Report(total=_row(total),
                  groups={d: ({(k,): _row(v) for k, v in rows.items()} if len(d) == 1
                              else {k: _row(v) for k, v in rows.items()})
                          for d, rows in groups.items()},
                  periods={name: _row(v) for name, v in periods.items()},
                  skipped_lines=state.stats.skipped,
                  first_bad_lines=list(state.stats.first_bad_lines),
                  records_read=state.stats.good)


def _finish_report(total: _Acc, groups: dict[tuple[str, ...], dict[tuple[str, ...], _Acc]],
                   periods: dict[str, _Acc], state: UsageState) -> Report:
    return Report(total=total.row(),
                  groups={d: {k: a.row() for k, a in rows.items()} for d, rows in groups.items()},
                  periods={name: a.row() for name, a in periods.items()},
                  skipped_lines=state.stats.skipped,
                  first_bad_lines=list(state.stats.first_bad_lines),
                  records_read=state.stats.good)


def summarize(records: Iterable[UsageRecord], *, dims: Iterable[tuple[str, ...]] = (),
              filters: Filters | None = None, tz: tzinfo | None = None,
              since: datetime | None = None, until: datetime | None = None,
              today: date | None = None, table: PriceTable | None = None) -> Report:
    """A report over records in memory (journals go through rollup.load_state)."""
    state = UsageState(tz, since=iso_utc(since) if since else None,
                       until=iso_utc(until) if until else None)
    state.add_records(records)
    return make_report(state, dims=dims, filters=filters, today=today, table=table)


def effective_records(records: Iterable[UsageRecord], tz: tzinfo | None = None
                      ) -> list[UsageRecord]:
    """What counts of ``records`` under rules 1-3, as one delta per session, model and day.

    Reports do not use it (they keep the compact state); it shows the rules at
    work, for tests and for people.
    """
    state = UsageState(tz)
    state.add_records(records)
    out = []
    for unit, row in state.buckets():
        attrs = state.attrs[row[2]]
        out.append(UsageRecord(
            ts=row[1], session=unit[0], source=unit[1], model=row[0],
            input_tokens=row[5], output_tokens=row[6], cache_read_tokens=row[7],
            cache_write_tokens=row[8], cost_usd=row[9] if row[3] else None,
            approximate=unit[3], project=attrs[0], host=attrs[1], tmux_pane=attrs[2],
            claude_session=unit[2] if unit[2] != unit[0] else None, tags=dict(attrs[3])))
    return out


STANDARD_GROUPS = (("model",), ("day",), ("project",), ("session",))


def report_json(report: Report, extra_dims: Iterable[tuple[str, ...]] = ()) -> dict[str, Any]:
    """The ``usage --json`` object.

    ``{"total": ROW, "by_model": {MODEL: ROW}, "by_day": {YYYY-MM-DD: ROW},
    "by_project": {...}, "by_session": {...}, [by_<dim>...], "skipped_lines": N}``;
    a ROW has input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
    cost_usd, cost_estimated_usd, unpriced_records, records, sessions. A grouping
    by several dimensions is ``by_<a>_<b>`` keyed ``"A|B"``.
    """
    out: dict[str, Any] = {"total": report.total.to_json()}
    for d in (*STANDARD_GROUPS, *extra_dims):
        rows = report.groups.get(d, {})
        out["by_" + "_".join(d)] = {"|".join(k): rows[k].to_json() for k in sorted(rows)}
    out["skipped_lines"] = report.skipped_lines
    return out


def report_sums(state: UsageState, *, dims: Iterable[tuple[str, ...]] = (),
                filters: Filters | None = None, today: date | None = None,
                table: PriceTable | None = None) -> Sums:
    """:func:`make_report`'s numbers (sessions counted) before they are rows:
    ``(total, periods, groups)`` of :func:`_bucket_sums`, priced as make_report
    prices them (rates learned for unpriced models)."""
    table = table or default_table()
    filters = filters or Filters()
    if today is None:
        now = datetime.now(timezone.utc)
        today = (now.astimezone(state.tz) if state.tz is not None else now.astimezone()).date()
    dims = tuple(dict.fromkeys(dims))
    starts = period_days(today)
    sums = _bucket_sums(state, dims, filters, table, starts, True)
    if sums[0][6]:  # unpriced usage: as make_report, learn rates and price again
        from claudewrap.usage.price_fit import learn_prices

        learned = learn_prices(state, table)
        if learned is not table:
            sums = _bucket_sums(state, dims, filters, learned, starts, True)
    return sums


_JSON_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
              "cost_usd", "cost_estimated_usd", "unpriced_records", "records", "sessions")


def usage_json(state: UsageState, extra_dims: Iterable[tuple[str, ...]] = (), *,
               filters: Filters | None = None, today: date | None = None,
               table: PriceTable | None = None, journal: StrPath | None = None) -> bytes:
    """``usage --json``'s text: ``json.dumps(report_json(make_report(...), extra_dims),
    indent=2)`` byte for byte, without the rows in between: each row's JSON
    object straight from its sums, the whole written by msgspec with its floats
    spelled as json spells them (:func:`claudewrap.usage.lines.json_float`).
    A year (1M records, 12,000 rows, 3.6 MB): rows and text ~3x faster."""
    from claudewrap.usage.lines import indented_spelled, json_float

    extra_dims = tuple(extra_dims)
    table = table or default_table()
    plain_view = (not extra_dims and state.since is None and state.until is None
                  and not _narrowed(filters))
    if journal is not None and plain_view and state.archive is not None:
        text = _usage_json_settled(state, table, journal)
        if text is not None:
            return text
    dims = (*STANDARD_GROUPS, *extra_dims)
    total, _periods, groups = report_sums(state, dims=dims, filters=filters, today=today,
                                          table=table)

    def obj(spell: Any) -> dict[str, Any]:
        def row(v: list[Any]) -> dict[str, Any]:
            return _json_row(v, spell)

        out: dict[str, Any] = {"total": row(total)}
        for d in dims:
            rows = groups.get(d, {})
            if len(d) == 1:
                out["by_" + d[0]] = {k: row(rows[k]) for k in sorted(rows)}
            else:
                out["by_" + "_".join(d)] = {"|".join(k): row(rows[k]) for k in sorted(rows)}
        out["skipped_lines"] = state.stats.skipped
        return out

    text = indented_spelled(obj(json_float))
    if text is None:  # what msgspec cannot write (a lone surrogate in a name): json's way
        import json

        return json.dumps(obj(float), indent=2).encode("utf-8", "surrogateescape")
    return text


def _narrowed(filters: Filters | None) -> bool:
    return filters is not None and bool(
        filters.active() or filters.sessions or filters.since_day is not None
        or filters.until_day is not None)


# --- usage --json from the settled history's sums ------------------------------------
#
# At 1M records (a year) the archive (state.Archive: settled history) holds 14,700
# of the 16,000 buckets and 11,400 of the 11,800 sessions of `usage --json`:
# summing and writing them again on each call was most of its time. Their sums
# are saved beside the rollup (rollup.write_sums), made for the archive as it is
# (the CRC of its rows) and the rates of its models (a changed price of one of
# them: made again). Nothing changes in the numbers: a settled session has no
# other bucket (a new record of it takes the archive back, UsageState.unarchive),
# so its row is its archive sum; a day, model or project row adds its live
# buckets first, then its archived costs one by one in the archive's order (kept
# as binary doubles, grouped), as a loop over state.buckets() adds them.

_SUMS_VERSION = 2
_SUMS_DIMS = ("model", "day", "project")


def _json_row(v: Sequence[Any], spell: Any) -> dict[str, Any]:
    """A row's JSON object (Row.to_json) from its sums; ``spell``: lines.json_float."""
    c = round(v[4], 6)
    e = round(v[5], 6)
    # Within these bounds msgspec writes a float as repr() (json) does.
    if not (1e-4 <= c < 1e16 or c == 0.0):
        c = spell(c)
    if not (1e-4 <= e < 1e16 or e == 0.0):
        e = spell(e)
    return dict(zip(_JSON_KEYS, (int(v[0]), int(v[1]), int(v[2]), int(v[3]), c, e,
                                 int(v[6]), int(v[7]), v[8])))


def _labels(rows: Sequence[Sequence[Any]], dim: str, attrs: list[tuple[Any, ...]]
            ) -> list[Any]:
    if dim == "day":
        return [r[5] for r in rows]
    if dim == "model":
        return [r[4] or UNKNOWN_MODEL for r in rows]
    projects = [a[0] or NONE for a in attrs]
    return [projects[r[6]] for r in rows]


def _sums_key(state: UsageState) -> list[Any] | None:
    """What the saved sums must have been made for: the archive's rows as saved."""
    archive = state.archive
    raw = archive.raw.get("rows") if archive is not None else None
    if not isinstance(raw, bytes):  # the archive changed in this process: not saved yet
        return None
    import zlib

    return [_SUMS_VERSION, zlib.crc32(raw), len(raw), state.tz_key]


def _session_entries(rows: dict[str, Any]) -> list[bytes] | None:
    """``rows`` (``{session: JSON row}``, floats spelled) as the entries of
    by_session in the indented text, each as json.dumps(indent=2) writes it
    there (4 spaces in); None where msgspec cannot write a name."""
    from claudewrap.usage.lines import indented_spelled

    if not rows:
        return []
    text = indented_spelled({"by_session": rows})
    if text is None:
        return None
    # Each entry ends with its brace 4 spaces in (a row holds numbers only, and a
    # name no raw line break): the only such line.
    out = []
    at = text.index(b"\n", 2) + 1  # after {, "by_session": {
    find = text.find
    while True:
        end = find(b"\n    }", at)
        if end < 0:
            return None
        end += 6
        out.append(text[at:end])
        if text[end:end + 2] != b",\n":
            return out
        at = end + 2


def _make_settled_sums(state: UsageState, table: PriceTable) -> tuple[bytes, bytes, bytes]:
    """The parts rollup.write_sums saves: meta (the groups' sums, the settled
    sessions' names in order), the settled sessions' entries of the text, the
    binary (costs, estimated costs, where each entry starts)."""
    from array import array

    from claudewrap.usage.lines import dumps, json_float

    assert state.archive is not None
    rows = state.archive.rows
    vecs = _priced(rows, table)
    sessions = [r[0] for r in rows]
    by_session = _indexed(sessions)
    names = sorted(by_session)
    entries = _session_entries({k: _json_row(_summed(vecs, by_session[k], 1), json_float)
                                for k in names})
    if entries is None:
        raise ValueError("a session name msgspec cannot write")
    starts = array("q", [0])
    for entry in entries:
        starts.append(starts[-1] + len(entry) + 2)  # and its ",\n"
    costs = array("d")
    ests = array("d")

    def group(idx: list[int]) -> list[Any]:
        v = _summed(vecs, idx, len({sessions[k] for k in idx})) if idx else [*_ZERO, 0]
        start = len(costs)
        costs.extend([vecs[k][4] for k in idx])
        ests.extend([vecs[k][5] for k in idx])
        return [v[0], v[1], v[2], v[3], v[6], v[7], v[8], start, len(costs), v[4], v[5]]

    groups = {dim: {k: group(idx) for k, idx in _indexed(_labels(rows, dim, state.attrs)).items()}
              for dim in _SUMS_DIMS}
    total = group(list(range(len(rows))))
    models = sorted({r[4] for r in rows}, key=lambda m: (m is None, m or ""))
    meta = {"key": _sums_key(state), "models": [[m, _price_of(table.lookup(m))] for m in models],
            "groups": groups, "total": total, "n": len(costs), "sessions": names,
            "byteorder": sys.byteorder}
    return (dumps(meta), b",\n".join(entries),
            costs.tobytes() + ests.tobytes() + starts.tobytes())


def _usage_json_settled(state: UsageState, table: PriceTable, journal: StrPath) -> bytes | None:
    """``usage --json`` (no filter, no --by) from the saved sums of the settled
    history and the live buckets; None where they cannot give it (the caller
    then sums every bucket). Saves the sums when they are missing or stale."""
    from array import array
    from bisect import bisect_left

    import msgspec

    from claudewrap.usage import rollup
    from claudewrap.usage.lines import indented_spelled, json_float

    key = _sums_key(state)
    if key is None:
        return None
    saved: tuple[bytes | memoryview, ...] | None = rollup.read_sums(journal)
    meta: dict[str, Any] | None = None
    if saved is not None:
        try:
            meta = msgspec.json.decode(saved[0])
            # (The key holds _SUMS_VERSION: sums with it were made by this code.)
            if not isinstance(meta, dict) or meta.get("key") != key or meta.get(
                    "byteorder") != sys.byteorder or any(
                    _price_of(table.lookup(m)) != (None if r is None else tuple(r))
                    for m, r in meta["models"]):
                meta = None
        except (msgspec.DecodeError, RecursionError, ValueError, TypeError, KeyError):
            # Damaged past its CRC (deep nesting: RecursionError), or not of this
            # shape: it costs only itself, made again below.
            meta = None
    if meta is None or saved is None:
        try:
            parts = _make_settled_sums(state, table)
        except ValueError:
            return None
        rollup.write_sums(journal, parts)
        saved = parts
        meta = msgspec.json.decode(parts[0])
    if meta["total"][4]:  # unpriced settled usage: rates may be learned (make_report)
        return None
    n = meta["n"]
    names: list[str] = meta["sessions"]
    costs = array("d")
    ests = array("d")
    starts = array("q")
    assert saved is not None
    costs.frombytes(saved[2][:8 * n])
    ests.frombytes(saved[2][8 * n:16 * n])
    starts.frombytes(saved[2][16 * n:])
    blob = saved[1]
    if len(starts) != len(names) + 1 or (names and starts[-1] != len(blob) + 2):
        return None

    live = [(*k, *row) for k, row in state._rule_rows(state.units.items())]
    vecs = _priced(live, table)
    if any(v[6] for v in vecs):  # unpriced: rates may be learned (make_report)
        return None
    sessions = [r[0] for r in live]
    by_session = _indexed(sessions)
    live_names = sorted(by_session)
    at = [bisect_left(names, k) for k in live_names]
    if any(p < len(names) and names[p] == k for p, k in zip(at, live_names)):
        return None  # (never: a record of a settled session takes the archive back)

    def joined(live_v: list[Any] | None, saved_v: list[Any]) -> list[Any]:
        i, o, cr, cw, u, nr, ns, a, b, c, e = saved_v
        if live_v is None:
            return [i, o, cr, cw, c, e, u, nr, ns]
        # The live buckets first, then the settled ones one by one (as buckets() goes).
        return [live_v[0] + i, live_v[1] + o, live_v[2] + cr, live_v[3] + cw,
                _added(costs[a:b], live_v[4]), _added(ests[a:b], live_v[5]),
                live_v[6] + u, live_v[7] + nr, live_v[8] + ns]

    out: dict[str, Any] = {}
    everything = list(range(len(vecs)))
    live_total = _summed(vecs, everything, len(set(sessions))) if vecs else None
    out["total"] = _json_row(joined(live_total, meta["total"]), json_float)
    for dim in ("model", "day", "project"):
        live_rows = {k: _summed(vecs, idx, len({sessions[j] for j in idx}))
                     for k, idx in _indexed(_labels(live, dim, state.attrs)).items()}
        saved_rows = meta["groups"][dim]
        out["by_" + dim] = {
            k: _json_row(joined(live_rows.get(k), saved_rows[k]) if k in saved_rows
                         else live_rows[k], json_float)
            for k in sorted(live_rows.keys() | saved_rows.keys())}
    out["by_session"] = {}
    out["skipped_lines"] = state.stats.skipped
    text = indented_spelled(out)
    entries = _session_entries({k: _json_row(_summed(vecs, by_session[k], 1), json_float)
                                for k in live_names})
    if text is None or entries is None:
        return None
    # by_session: the settled entries as saved, each live one put in its place.
    head, sep, tail = text.rpartition(b'\n  "by_session": {},\n')
    if not sep:
        return None
    pieces: list[bytes | memoryview] = [head, b'\n  "by_session": {\n']
    done = 0
    for p, entry in zip(at, entries):
        if p > done:
            pieces += (blob[starts[done]:starts[p] - 2], b",\n")
        pieces += (entry, b",\n")
        done = p
    if done < len(names):
        pieces += (blob[starts[done]:starts[len(names)] - 2], b",\n")
    if len(pieces) == 2:
        return text
    pieces[-1] = b"\n  },\n"
    pieces.append(tail)
    return b"".join(pieces)
