"""`claudewrap status` (what it shows: claudewrap.views.status_view)."""

from __future__ import annotations

import click

from claudewrap.views.status_view import show


@click.command("status")
@click.option("--format", "fmt", type=click.Choice(["tmux", "plain"]), default="plain",
              show_default=True, help="tmux: one short line for status-right.")
@click.option("--minutes", type=click.IntRange(1, 1440), default=10, show_default=True,
              help="The window the token rate is measured over.")
@click.option("--journal", "journal_path", metavar="PATH",
              help="Journal file (default: $CLAUDEWRAP_JOURNAL, else the user data folder).")
def status(fmt: str, minutes: int, journal_path: str | None) -> None:
    """Today's cost and tokens per minute, and the plan's 5-hour and 7-day windows
    when Claude Code's status line reported them; e.g. for tmux's status bar.

    \b
    ~/.tmux.conf:
      set -g status-right '#(claudewrap status --format tmux) %H:%M'
      set -g status-interval 15
    """
    code = show(fmt, minutes, journal_path)  # what main.py runs without click, too
    if code:
        raise SystemExit(code)


__all__ = ["status"]
