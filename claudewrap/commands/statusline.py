"""`claudewrap statusline`: the command for Claude Code's ``statusLine`` setting.

Plain ``claudewrap statusline`` never loads click (claudewrap.main sends it
straight to :func:`claudewrap.sources.statusline.main`); this command is the same call
with ``--journal`` and ``--help``.
"""

from __future__ import annotations

import click


@click.command("statusline")
@click.option("--journal", "journal_path", metavar="PATH",
              help="Journal file (default: $CLAUDEWRAP_JOURNAL, else the user data folder).")
def statusline(journal_path: str | None) -> None:
    """One short line for Claude Code's status line, from the JSON it sends on stdin:
    model, this session's cost, today's cost and the plan-limit windows. Records the
    session's exact running cost and the windows in the journal as they change.

    \b
    ~/.claude/settings.json:
      {"statusLine": {"type": "command", "command": "claudewrap statusline"}}

    A status-line command of your own goes in $CLAUDEWRAP_STATUSLINE_COMMAND or in
    config.toml ([statusline] command = "..."): it gets the same input, and its
    first line is shown below ours. Never fails: bad input prints `claude`.
    """
    from claudewrap.sources.statusline import main

    raise SystemExit(main(journal_path))
