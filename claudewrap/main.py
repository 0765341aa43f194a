"""The `claudewrap` entry point (console script and ``python -m claudewrap``).

`claudewrap run [-- ARGS]`, the launch path that the shell's `claude` takes
every time, goes straight to :func:`claudewrap.runner.run_claude` without loading
click: that saves about a third of the wrapper's start-up. Everything else,
including `run` with options and every error that needs a usage message, goes
through the click command line in :mod:`claudewrap.cli`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["run"] and args[1:2] in ([], ["--"]):
        _run(args[2:])  # returns only when click should say what went wrong
    from claudewrap.cli import main as click_main

    if args[:1] not in (["usage"], ["stats"]):
        click_main(args)
        return
    # A report leaves a big state in memory (commands/usage.py keeps it):
    # freeing it object by object costs more than the report; leave at once.
    try:
        click_main(args)
    except SystemExit as exc:
        from claudewrap import runner

        code = exc.code
        if isinstance(code, str):
            sys.stderr.write(code + "\n")
        runner.exit_now(code if isinstance(code, int) else (0 if code is None else 1))


def _run(claude_args: list[str]) -> None:
    """`claudewrap run -- ARGS` with every option at its default, exactly as
    `claudewrap.commands.run` does it."""
    from claudewrap import runner
    from claudewrap.config import PatternError

    try:
        outcome = runner.run_claude(claude_args)
    except runner.LaunchError as exc:
        sys.stderr.write(f"{exc}\n")
        sys.exit(exc.status)
    except (runner.TagError, PatternError):
        return  # raised before anything ran: click reports it with the usage line
    runner.exit_now(outcome.exit_status)
