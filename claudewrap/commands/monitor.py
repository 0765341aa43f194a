"""`claudewrap monitor`: a live view of the journal as it grows."""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from claudewrap.views.monitor import Snapshot


def _now_option(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r}: use an ISO time such as 2026-07-01T14:00:00Z",
                                 param_hint="--now") from None
    return when if when.tzinfo else when.astimezone()


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0}
_BARE_MAX = 100  # a bare number this big is more likely milliseconds than seconds


def _interval(ctx: click.Context, param: click.Parameter, value: str | float) -> float:
    """Seconds: ``2``, ``0.5``, ``3s``, ``3000ms``, ``1m`` (0.1 s to an hour).

    A bare number is seconds, as it always was; a bare number of 100 or more is
    refused, with the unit it probably meant (``3000`` -> ``3000ms``).
    """
    if isinstance(value, (int, float)):
        return float(value)
    text = value.strip().lower()
    unit = next((u for u in ("ms", "s", "m") if text.endswith(u)), "")
    try:
        number = float(text[:len(text) - len(unit)].strip())
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise click.BadParameter(f"{value!r} is not a duration: use seconds (2, 0.5) or a"
                                 " unit (3s, 3000ms, 1m)", ctx, param)
    if not unit and number >= _BARE_MAX:
        seconds_too = f" (write {value}s for seconds)" if number <= 3600 else ""
        raise click.BadParameter(f"{value!r}: a bare number is seconds; did you mean"
                                 f" {value}ms?{seconds_too}", ctx, param)
    seconds = number * _UNITS[unit or "s"]
    if not 0.1 <= seconds <= 3600:
        raise click.BadParameter(f"{value!r} is {seconds:g} seconds: use 0.1 s to 1 hour"
                                 " (100ms to 60m)", ctx, param)
    return seconds


@click.command("monitor")
@click.option("--interval", default="2", show_default=True, callback=_interval,
              metavar="DURATION",
              help="How often to read the journal and redraw: seconds (2, 0.5) or with a "
                   "unit (3s, 3000ms, 1m).")
@click.option("--window", "window_minutes", type=click.FloatRange(1, 1440), default=10,
              show_default=True, metavar="MINUTES",
              help="The recent window for tokens per minute and cost per hour.")
@click.option("--session", "which", default="all", show_default=True, metavar="ID|current|all",
              help="Sessions to list: running and recent ones (all), the one running here "
                   "(current), or one session id.")
@click.option("--project", metavar="NAME", help="Only this project's usage and budgets.")
@click.option("--budget-day", type=click.FloatRange(0), metavar="USD",
              help="Daily budget of what is shown (default: $CLAUDEWRAP_BUDGET_DAY, else "
                   "the config file's budget.daily_usd, or the project's with --project).")
@click.option("--budget-month", type=click.FloatRange(0), metavar="USD",
              help="Monthly budget (default: $CLAUDEWRAP_BUDGET_MONTH, else "
                   "budget.monthly_usd).")
@click.option("--once", is_flag=True, help="Print one snapshot and exit.")
@click.option("--journal", "journal_path", metavar="PATH",
              help="Journal file (default: $CLAUDEWRAP_JOURNAL, else the user data folder).")
@click.option("--config", "config_path", metavar="PATH",
              help="Config file with [budget] (default: the user config folder).")
@click.option("--now", "now_text", hidden=True, help="Pretend it is this time (for --once).")
def monitor(interval: float, window_minutes: float, which: str, project: str | None,
            budget_day: float | None, budget_month: float | None, once: bool,
            journal_path: str | None, config_path: str | None, now_text: str | None) -> None:
    """Live usage: running sessions, today's and this month's cost, the burn rate,
    and where today is heading against your budget.

    In a terminal it redraws in place (q or Ctrl-C quits); otherwise it prints
    one line whenever the numbers change. Only the lines added to the journal
    since the last look are read.
    """
    from claudewrap import api
    from claudewrap.export import budget
    from claudewrap.store.journal import JournalError, resolve_path
    from claudewrap.views.monitor import Monitor, render, run_live, status_line

    path = resolve_path(journal_path)
    try:
        cfg = budget.load_config(config_path)
    except budget.BudgetError as exc:
        raise click.UsageError(str(exc)) from None
    # The budgets of what is shown: the project's with --project, else the global ones;
    # --budget-day/--budget-month set them for this view.
    chosen = {b.period: b for b in cfg.budgets if b.project == project}
    for period, usd in (("day", budget_day), ("month", budget_month)):
        if usd is not None:
            chosen[period] = budget.Budget(period, usd, project)
    budgets = [b for b in chosen.values() if b.usd > 0]
    fixed_now = _now_option(now_text)
    clock = (lambda: fixed_now) if fixed_now else (lambda: datetime.now(timezone.utc))
    show = which
    if which not in ("all",):
        try:
            show = api.resolve_session(which, path)
        except api.SessionNotFound as exc:
            raise click.ClickException(str(exc)) from None
    mon = Monitor(path, window_minutes=window_minutes, project=project, now=clock)

    def update() -> None:
        try:
            mon.update()
        except JournalError as exc:
            raise click.ClickException(f"cannot read the journal {path}:"
                                       f" {exc.reason or exc}") from None
        except OSError as exc:
            raise click.ClickException(f"cannot read the journal {path}: {exc}") from None

    def snapshot() -> Snapshot:
        return mon.snapshot(live=api.running_sessions(path), show=show, budgets=budgets,
                            interval=interval)

    stdout_fd = sys.stdout.fileno()
    tty = os.isatty(stdout_fd)
    try:
        update()
        if once:
            width = shutil.get_terminal_size().columns  # $COLUMNS, the terminal, else 80
            click.echo("\n".join(render(snapshot(), width, live=False)))
            return
        if tty:
            color = not os.environ.get("NO_COLOR")
            sys.stdout.flush()
            run_live(lambda w, h: render(snapshot(), w, h), update, interval=interval,
                     out_fd=stdout_fd, color=color)
            return
        last = ""
        while True:
            line = status_line(snapshot())
            if line.split(" ", 1)[1] != last:
                click.echo(line)
                sys.stdout.flush()
                last = line.split(" ", 1)[1]
            time.sleep(interval)
            update()
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # `claudewrap monitor | head -3`
        sys.stderr.close()
    finally:
        mon.close()


__all__ = ["monitor"]
