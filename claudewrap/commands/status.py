"""`claudewrap status`: today's cost and the recent token rate, fast enough for a
status bar (tmux runs it every `status-interval` seconds).

Today's numbers come from the rollup (claudewrap.rollup: only journal lines
added since the last read are parsed); the rate from the journal's tail, summed
by the same rules as every report (claudewrap.report).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import click

from claudewrap.journal import JournalError, resolve_path

if TYPE_CHECKING:
    from claudewrap.records import UsageRecord

TAIL_BYTES = 1 << 20  # the rate reads at most this much of the journal's end


@dataclass
class Status:
    cost_usd: float  # today, printed + estimated
    estimated: bool  # part of the cost was priced by claudewrap
    tokens: int  # today
    sessions: int  # today
    rate: float  # tokens per minute over the last `minutes`
    minutes: int
    # (period "day"/"month", spent, budget) of each budget on all usage
    budgets: list[tuple[str, float, float]] = field(default_factory=list)


def _recent_records(path: Path, since: str, limit: int = TAIL_BYTES) -> list[UsageRecord]:
    """Records of the journal's tail that matter for usage after ``since``: those
    from then on, and earlier ones of the same sessions (their totals are the
    baseline the later ones rise from). Parses little: a journal line starts
    with its time."""
    from claudewrap.records import UsageRecord

    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            start = max(0, size - limit)
            fh.seek(start)
            data = fh.read(limit)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise JournalError(f"cannot read the journal {path}: {exc.strerror or exc}") from None
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]  # the first line is cut
    cut = since.encode()
    head = b'{"ts":"'

    def parse(line: bytes) -> UsageRecord | None:
        try:
            return UsageRecord.from_json(line)
        except (ValueError, TypeError):
            return None

    recent: dict[int, UsageRecord] = {}
    for n, line in enumerate(lines):
        if line.strip() and (not line.startswith(head) or line[7:31] >= cut):
            record = parse(line)
            if record is not None:
                recent[n] = record
    sessions = [f'"session":{json.dumps(r.session)}'.encode() for r in recent.values()]
    wanted = set(sessions)
    for n, line in enumerate(lines):
        if n not in recent and line.startswith(head) and any(s in line for s in wanted):
            record = parse(line)
            if record is not None:
                recent[n] = record
    return [recent[n] for n in sorted(recent)]


def read_status(path: Path, minutes: int = 10, now: datetime | None = None,
                config: str | None = None) -> Status:
    """Today's cost/tokens/sessions, the token rate of the last ``minutes``, and
    how the daily and monthly budgets (claudewrap.budget) stand.

    Raises budget.BudgetError when the budget config is wrong."""
    from claudewrap import budget
    from claudewrap.report import make_report, summarize, utc_iso
    from claudewrap.rollup import load_state

    now = now or datetime.now(timezone.utc)
    state = load_state(path)
    today = make_report(state).periods["today"]
    overall = [b for b in budget.load_config(config).budgets if b.project is None]
    standings = budget.standings(state, overall, now=now) if overall else []
    since = now - timedelta(minutes=minutes)
    recent = summarize(_recent_records(path, utc_iso(since)), since=since).total
    return Status(cost_usd=today.cost_usd, estimated=today.cost_estimated_usd > 0,
                  tokens=today.tokens, sessions=today.sessions,
                  rate=recent.tokens / minutes, minutes=minutes,
                  budgets=[(st.budget.period, st.spent, st.budget.usd) for st in standings])


def _short(n: float) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:.0f}"


def format_status(st: Status, fmt: str) -> str:
    cost = f"{'~' if st.estimated else ''}${st.cost_usd:.2f}"
    if fmt == "tmux":
        # No '#' in the output: tmux would read it as a format.
        used = "".join(f" {period} {spent / usd:.0%}" for period, spent, usd in st.budgets)
        return f"claude {cost} {_short(st.rate)} tok/min{used}"
    plural = "" if st.sessions == 1 else "s"
    lines = [f"today: {cost}, {st.tokens:,} tokens, {st.sessions} session{plural}",
             f"last {st.minutes} min: {st.rate:,.0f} tokens/min"]
    for period, spent, usd in st.budgets:
        what = "daily" if period == "day" else "monthly"
        lines.append(f"{what} budget: ${spent:.2f} of ${usd:.2f} ({spent / usd:.0%})")
    return "\n".join(lines)


@click.command("status")
@click.option("--format", "fmt", type=click.Choice(["tmux", "plain"]), default="plain",
              show_default=True, help="tmux: one short line for status-right.")
@click.option("--minutes", type=click.IntRange(1, 1440), default=10, show_default=True,
              help="The window the token rate is measured over.")
@click.option("--journal", "journal_path", metavar="PATH",
              help="Journal file (default: $CLAUDEWRAP_JOURNAL, else the user data folder).")
def status(fmt: str, minutes: int, journal_path: str | None) -> None:
    """Today's cost and tokens per minute, e.g. for tmux's status bar.

    \b
    ~/.tmux.conf:
      set -g status-right '#(claudewrap status --format tmux) %H:%M'
      set -g status-interval 15
    """
    from claudewrap.budget import BudgetError

    path = resolve_path(journal_path)
    try:
        st = read_status(path, minutes)
    except (JournalError, BudgetError) as exc:
        if fmt == "tmux":
            click.echo("claude ?")  # a status bar has no room for the reason
            raise SystemExit(1) from None
        raise click.ClickException(str(exc)) from None
    click.echo(format_status(st, fmt))
