"""What `claudewrap status` shows: today's cost and the recent token rate, fast enough for a
status bar (tmux runs it every `status-interval` seconds).

Today and the recent rate come from the minute buckets that `monitor` and the
metrics' rate gauges read too (claudewrap.export.metrics.window_usage: the same rule
as every report, over the state cached in ``<journal>.metrics`` and continued
with the new lines); the budgets from the rollup (claudewrap.usage.rollup), read only
when a budget is set. The plan-limit windows are
the newest fresh snapshots Claude Code's status line gave (claudewrap.usage.limits):
none, no line.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from claudewrap.plain import field, plain
from claudewrap.views.display import count, money, row_money, short_count

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms a reader)
if TYPE_CHECKING:
    from claudewrap.export.budget import Standing
    from claudewrap.usage.limits import Snapshot
    from claudewrap.usage.report import Row


@plain
class Status:
    today: Row  # today's usage (sessions counted)
    window: Row  # the usage of the last `minutes`
    minutes: int
    # How each budget on all usage stands (claudewrap.export.budget), daily first.
    budgets: list[Standing] = field(default_factory=list)
    # The plan's rate-limit windows by name (claudewrap.usage.limits.latest): fresh ones only.
    limits: dict[str, Snapshot] = field(default_factory=dict)
    now: float = 0.0  # Unix seconds: what the windows' times and pace are read against

    @property
    def rate(self) -> float:
        """Tokens per minute over the last ``minutes``."""
        return self.window.tokens / self.minutes


def read_status(path: Path, minutes: int = 10, now: datetime | None = None,
                config: str | None = None) -> Status:
    """Today's usage, the usage of the last ``minutes``, and how the daily and
    monthly budgets (claudewrap.export.budget) stand.

    Raises budget.BudgetError when the budget config is wrong, JournalError when
    the journal cannot be read."""
    from claudewrap.export import budget
    from claudewrap.export.metrics import JournalMetrics
    from claudewrap.usage.limits import latest
    from claudewrap.usage.rollup import load_state

    now = now or datetime.now(timezone.utc)
    stamp = now.timestamp()
    recent = JournalMetrics(path)
    recent.update(stamp)
    today = recent.today(stamp).total  # (first: its view serves the window too)
    window = recent.recent_usage(minutes * 60, stamp).total
    overall = [b for b in budget.load_config(config).budgets if b.project is None]
    # A monthly budget needs the month: the rollup (only then).
    standings = budget.standings(load_state(path), overall, now=now) if overall else []
    return Status(today=today, window=window, minutes=minutes, budgets=standings,
                  limits=latest(path, now=stamp), now=stamp)


def _used(st: Standing) -> str:
    """``25%``; ``25%+?`` when some of the spending is of a model without a price."""
    return f"{st.fraction:.0%}" + ("+?" if st.unpriced_records else "")


def format_status(st: Status, fmt: str) -> str:
    from claudewrap.views.limits_view import ordered, tmux_segment, window_line

    cost = row_money(st.today)
    if fmt == "tmux":
        # No '#' in the output: tmux would read it as a format.
        used = "".join(f" {b.budget.period} {_used(b)}" for b in st.budgets)
        windows = tmux_segment(st.limits)
        return f"claude {cost} {short_count(st.rate)} tok/min{used}" + (
            f" {windows}" if windows else "")
    plural = "" if st.today.sessions == 1 else "s"
    lines = [f"today: {cost}, {count(st.today.tokens)} tokens, {st.today.sessions} session{plural}",
             f"last {st.minutes} min: {count(st.rate)} tokens/min"]
    for b in st.budgets:
        what = "daily" if b.budget.period == "day" else "monthly"
        lines.append(f"{what} budget: {row_money(b.row)} of {money(b.budget.usd)}"
                     f" ({_used(b)})")
    lines += [window_line(snap, st.now) for snap in ordered(st.limits)]
    return "\n".join(lines)




def show(fmt: str = "plain", minutes: int = 10, journal: str | None = None) -> int:
    """`claudewrap status` as the command runs it (its output and exit status),
    without click: tmux runs it every few seconds (main.py's fast path)."""
    import sys

    from claudewrap.export.budget import BudgetError
    from claudewrap.store.journal import JournalError, resolve_path

    path = resolve_path(journal)  # JournalError: the caller's one line, as for every command
    try:
        st = read_status(path, minutes)
    except (JournalError, BudgetError) as exc:
        if fmt == "tmux":
            sys.stdout.write("claude ?\n")  # a status bar has no room for the reason
            return 1
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    sys.stdout.write(format_status(st, fmt) + "\n")
    return 0
