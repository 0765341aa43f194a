"""What `claudewrap usage` shows, without click: the summary of a journal and its text.

The click command (:mod:`claudewrap.commands.usage`) and the plain ``usage``
of :mod:`claudewrap.main` (no options: what ``claude_usage`` runs most) both
use it; the latter does not load click at all.
"""

from __future__ import annotations

import os
import sys
from datetime import date, datetime, time, timedelta, tzinfo

from claudewrap.plain import plain
from claudewrap.usage.filters import Filters
from claudewrap.usage.pricing import PriceTable
from claudewrap.usage.report import Report, Row, make_report
from claudewrap.usage.state import no_cyclic_gc
from claudewrap.views.display import cells, count, ljust, rjust, row_money, short_count

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms a reader)
if TYPE_CHECKING:
    # Not at run time: csv and re (with enum, functools), pathlib (with urllib.parse)
    # were ~10 ms of each `usage --json` and `claude_usage`; each is imported where used.
    from collections.abc import Sequence
    from typing import Any

    from claudewrap.store.journal import StrPath

# --- --since / --until ------------------------------------------------------------------


@plain
class When:
    """A parsed --since/--until: an instant, and whether it is a local midnight."""

    at: datetime
    midnight: bool


def _midnight(day: date, tz: tzinfo | None) -> datetime:
    naive = datetime.combine(day, time())
    return naive.replace(tzinfo=tz) if tz is not None else naive.astimezone()


def parse_when(text: str, *, tz: tzinfo | None, now: datetime, end: bool = False) -> When:
    """``today``, ``yesterday``, ``7d`` (this day and the 6 before), ``24h``, a date or an ISO time.

    With ``end`` (for --until) a date means the end of that day. Raises ValueError.
    """
    import re

    value = text.strip().lower()
    local_now = now.astimezone(tz) if tz is not None else now.astimezone()
    today = local_now.date()
    day: date | None = None
    if value in ("today", "yesterday"):
        day = today if value == "today" else today - timedelta(days=1)
    elif m := re.fullmatch(r"(\d+)\s*([dwh])", value):
        count, unit = int(m.group(1)), m.group(2)
        if unit == "h":
            return When(now - timedelta(hours=count), False)
        days = count * (7 if unit == "w" else 1)
        if days < 1:
            raise ValueError(f"{text!r}: use at least 1d")
        return When(_midnight(today - timedelta(days=days - 1), tz), True)
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        day = date.fromisoformat(value)
    if day is not None:
        return When(_midnight(day + timedelta(days=1) if end else day, tz), True)
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"cannot read the time {text!r}: use today, yesterday, 7d, 24h,"
                         f" 2026-07-01 or 2026-07-01T09:30") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=tz) if tz is not None else at.astimezone()
    local = at.astimezone(tz) if tz is not None else at.astimezone()
    return When(at, local.time() == time() and local.microsecond == 0)


TIME_DIMS = ("day", "week", "month", "block")  # shown in time order
VIEW_GROUPS = (("model",), ("project",))  # what the default view (render_default) shows
_NUMBER_COLUMNS = ("input", "output", "cache read", "cache write", "cost")
_TOP = 5
_STYLES = {"bold": "\x1b[1m", "dim": "\x1b[2m"}  # as click.style writes them
_RESET = "\x1b[0m"

# The last summary's state and report: freeing a big state object by object costs
# more than the report (~20 ms at 1M records); the console script ends with
# os._exit instead (main.py).
_LAST: list[Any] = []


def summary(path: StrPath, *, tz: Any, use_cache: bool, since: str | None, until: str | None,
            dims: Sequence[tuple[str, ...]], filters: Filters, table: PriceTable,
            count_sessions: bool) -> Report:
    """The report of the journal at ``path`` (JournalError, PriceFileError)."""
    from claudewrap.usage.rollup import load_state

    with no_cyclic_gc():
        state = load_state(path, use_cache=use_cache, tz=tz, since=since, until=until)
        report = make_report(state, dims=dims, filters=filters, table=table,
                             count_sessions=count_sessions)
        _LAST[:] = [state, report]
    return report


def summary_json(path: StrPath, *, tz: Any, use_cache: bool, since: str | None,
                 until: str | None, extra_dims: Sequence[tuple[str, ...]], filters: Filters,
                 table: PriceTable) -> tuple[bytes, int, list[int]]:
    """``usage --json``'s text for the journal at ``path`` (as :func:`summary` with
    the standard groupings and ``extra_dims``, then report_json, indented), the
    skipped lines and the first bad ones (JournalError, PriceFileError)."""
    from claudewrap.usage.report import usage_json
    from claudewrap.usage.rollup import load_state

    with no_cyclic_gc():
        state = load_state(path, use_cache=use_cache, tz=tz, since=since, until=until)
        text = usage_json(state, extra_dims, filters=filters, table=table,
                          journal=path if use_cache else None)
        _LAST[:] = [state]
    return text, state.stats.skipped, list(state.stats.first_bad_lines)


def warn_skipped(skipped: int, first: list[int]) -> None:
    if skipped:
        plural = "" if skipped == 1 else "s"
        where = f" (first at line {first[0]})" if first else ""
        sys.stderr.write(f"claudewrap: skipped {skipped} unreadable journal line{plural}"
                         f"{where}\n")
        sys.stderr.flush()


def use_color(forced: bool | None = None) -> bool:
    """Colour on a terminal (or as ``forced``, e.g. click's ``color``), never with NO_COLOR."""
    if os.environ.get("NO_COLOR"):
        return False
    return forced if forced is not None else sys.stdout.isatty()


def width() -> int:
    """The columns to fit: ``$COLUMNS`` when set, else the terminal's (80 when stdout
    is not a terminal); 40 at the least."""
    columns = os.environ.get("COLUMNS", "")
    if columns.strip().isdigit() and int(columns) > 0:
        return max(40, int(columns))
    try:
        return max(40, os.get_terminal_size(sys.stdout.fileno()).columns)
    except (OSError, ValueError, AttributeError):
        return 80


def _numbers(row: Row, short: bool) -> list[str]:
    f = short_count if short else count
    return [f(row.input_tokens), f(row.output_tokens), f(row.cache_read_tokens),
            f(row.cache_write_tokens), row_money(row)]


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> list[str]:
    """Aligned text: the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(cells(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for r in [headers, *rows]:
        padded = [ljust(str(c), w) if i < left else rjust(str(c), w)
                  for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(padded).rstrip())
    return lines


def _fit(build: Any, width: int) -> list[str]:
    lines: list[str] = build(False)
    if max((cells(line) for line in lines), default=0) > width:
        lines = build(True)
    return lines


class _Out:
    def __init__(self, color: bool) -> None:
        self.color = color
        self.buffer: list[str] = []

    def line(self, text: str = "", **style: bool) -> None:
        if self.color and style:
            text = "".join(_STYLES[k] for k, on in style.items() if on) + text + _RESET
        self.buffer.append(text)

    def text(self) -> str:
        return "\n".join(self.buffer) + "\n"


def _notes(out: _Out, rows: Sequence[Row], table: PriceTable | None = None) -> None:
    if any(r.cost_estimated_usd > 0 for r in rows):
        out.line("~ estimated from list prices where Claude Code printed no cost", dim=True)
        for model, fit in sorted((table.learned if table is not None else {}).items()):
            out.line(f"~ {model}: no list price; rates learned from {count(fit.records)} "
                     f"exact records of the journal (see: claudewrap prices)", dim=True)
    if any(r.unpriced_records for r in rows):
        out.line("+? includes models without a known price (add them to prices.toml)",
                 dim=True)


def nothing_shown(report: Report, journal: StrPath, selection: str) -> str | None:
    """What to say when a report has no usage: none recorded, or none that
    ``selection`` (the filters given, in words; empty: none) matches."""
    if report.total.records:
        return None
    if not report.records_read:
        return f"No usage recorded yet in {journal}."
    plural = "" if report.records_read == 1 else "s"
    if selection:
        return (f"No usage matches {selection} ({report.records_read:,} record{plural}"
                f" in {journal}; leave out the filters to see them all).")
    return f"No usage counts in {journal} ({report.records_read:,} record{plural} read)."


def render_default(report: Report, *, width: int, color: bool, journal: StrPath,
                   selection: str = "") -> str:
    """The compact view: today, this week, this month, all time; top models and projects.

    ``selection``: the filters given, in words (for the message when nothing matches).
    """
    out = _Out(color)
    periods = report.periods
    empty = nothing_shown(report, journal, selection)
    if empty:
        out.line(empty)
        return out.text()

    def periods_table(short: bool) -> list[str]:
        rows = [[name, *_numbers(row, short)] for name, row in periods.items()]
        return _table(["", *_NUMBER_COLUMNS], rows, 1)

    lines = _fit(periods_table, width)
    out.line(lines[0], bold=True)
    for line in lines[1:]:
        out.line(line)
    shown = list(periods.values())
    for dim, title in (("model", "top models"), ("project", "top projects")):
        rows = sorted(report.groups[(dim,)].items(), key=lambda kv: (-kv[1].cost_usd,
                                                                     -kv[1].tokens, kv[0]))
        if not rows:
            continue
        top = rows[:_TOP]
        shown += [r for _, r in top]

        def top_table(short: bool, top: Any = top, title: str = title) -> list[str]:
            body = [[k[0], (short_count if short else count)(r.tokens), row_money(r)] for k, r in top]
            return _table([title, "tokens", "cost"], body, 1)

        out.line()
        lines = _fit(top_table, width)
        out.line(lines[0], bold=True)
        for line in lines[1:]:
            out.line(line)
        if len(rows) > _TOP:
            out.line(f"(and {len(rows) - _TOP} more: --by {dim})", dim=True)
    _notes(out, shown, report.table)
    return out.text()


def _sorted_rows(rows: dict[tuple[str, ...], Row], dims: tuple[str, ...]
                 ) -> list[tuple[tuple[str, ...], Row]]:
    if dims[0] in TIME_DIMS:
        return sorted(rows.items())
    return sorted(rows.items(), key=lambda kv: (-kv[1].cost_usd, -kv[1].tokens, kv[0]))


def render_grouped(report: Report, dims: tuple[str, ...], *, width: int, color: bool,
                   journal: StrPath, selection: str = "") -> str:
    """One row per group of ``dims``, then the total."""
    out = _Out(color)
    empty = nothing_shown(report, journal, selection)
    if empty:
        out.line(empty)
        return out.text()
    items = _sorted_rows(report.groups[dims], dims)

    def build(short: bool) -> list[str]:
        rows = [[*key, *_numbers(row, short), count(row.sessions)] for key, row in items]
        rows.append(["total", *[""] * (len(dims) - 1), *_numbers(report.total, short),
                     count(report.total.sessions)])
        return _table([*dims, *_NUMBER_COLUMNS, "sessions"], rows, len(dims))

    lines = _fit(build, width)
    out.line(lines[0], bold=True)
    for line in lines[1:-1]:
        out.line(line)
    out.line(lines[-1], bold=True)
    _notes(out, [report.total], report.table)
    return out.text()


def describe_selection(since: str | None, until: str | None, projects: Sequence[str],
                       models: Sequence[str], tags: Sequence[tuple[str, str]],
                       agents: Sequence[str] = (), commands: Sequence[str] = ()) -> str:
    """The filters a person gave, in words: ``--since 7d --project api``."""
    parts = [f"--since {since}"] if since else []
    parts += [f"--until {until}"] if until else []
    parts += [f"--project {p}" for p in projects]
    parts += [f"--model {m}" for m in models]
    parts += [f"--tag {k}={v}" for k, v in tags]
    parts += [f"--agent {a}" for a in agents]
    parts += [f"--command {c}" for c in commands]
    return " ".join(parts)


CSV_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
              "cost_usd", "cost_estimated_usd", "unpriced_records", "records", "sessions")


def render_csv(report: Report, dims: tuple[str, ...]) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*dims, *CSV_FIELDS])
    for key, row in _sorted_rows(report.groups[dims], dims):
        data = row.to_json()
        writer.writerow([*key, *(data[f] for f in CSV_FIELDS)])
    return buf.getvalue()


def _percent(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}%"


def render_analysis(report: Report, analysis: Any, *, width: int, color: bool,
                    journal: StrPath, selection: str = "") -> str:
    """``usage --analysis``: cost share, cost per 1k output tokens, the cache's
    ratio and saving, the same usage on each current model, the top sessions.

    ``analysis`` is a :class:`claudewrap.views.analysis.Analysis` of ``report``."""
    from claudewrap.views.display import money

    out = _Out(color)
    empty = nothing_shown(report, journal, selection)
    if empty:
        out.line(empty)
        return out.text()
    dims = analysis.dims
    rows = [*analysis.groups, analysis.total]

    def label(g: Any) -> list[str]:
        return ["total", *[""] * (len(dims) - 1)] if g is analysis.total else list(g.labels)

    def per_1k(g: Any) -> str:
        if g.cost_per_1k_output is None:
            return "-"
        return money(g.cost_per_1k_output, estimated=g.row.cost_estimated_usd > 0,
                     unpriced=g.row.unpriced_records > 0, places=4)

    def section(lines: list[str]) -> None:
        out.line(lines[0], bold=True)
        for line in lines[1:-1]:
            out.line(line)
        out.line(lines[-1], bold=len(lines) > 1 and lines[-1].startswith("total"))

    body = [[*label(g), row_money(g.row), _percent(g.share), per_1k(g),
             _percent(None if g.cache_read_ratio is None else 100 * g.cache_read_ratio),
             money(g.cache_saved_usd, unpriced=g.cache_saved_unknown)] for g in rows]
    section(_table([*dims, "cost", "share", "per 1k out", "cache read", "cache saved"],
                   body, len(dims)))
    if analysis.models:
        out.line()
        names = [m.removeprefix("claude-") for m in analysis.models]
        body = [[*label(g), row_money(g.row), *[money(g.on_models[m]) for m in analysis.models]]
                for g in rows]
        section(_table([*dims, "cost", *[f"on {n}" for n in names]], body, len(dims)))
    if analysis.top_sessions:
        out.line()

        def top(short: bool) -> list[str]:
            f = short_count if short else count
            return _table(["top sessions", "cost", "output", "models"],
                          [[s.session, row_money(s.row), f(s.row.output_tokens),
                            ", ".join(m.removeprefix("claude-") for m in s.models)]
                           for s in analysis.top_sessions], 1)

        lines = _fit(top, width)
        out.line(lines[0], bold=True)
        for line in lines[1:]:
            out.line(line)
    for note in ("cache read: cache reads / (input + cache reads + cache writes)",
                 "cache saved: cache reads at the input rate minus at the cache-read rate",
                 "on MODEL: the same tokens at that model's list prices"):
        out.line(note, dim=True)
    _notes(out, [report.total], report.table)
    return out.text()
