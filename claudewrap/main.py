"""The `claudewrap` entry point (console script and ``python -m claudewrap``).

`claudewrap run [-- ARGS]`, the launch path that the shell's `claude` takes
every time, goes straight to :func:`claudewrap.runner.run_claude` without loading
click: that saves about a third of the wrapper's start-up. So does `claudewrap
usage` (or `stats`) without options, what `claude_usage` runs: the same view as
:mod:`claudewrap.commands.usage` shows, from :mod:`claudewrap.usage_view`.
Everything else, including `run` with options and every error that needs a
usage message, goes through the click command line in :mod:`claudewrap.cli`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["run"] and args[1:2] in ([], ["--"]):
        _run(args[2:])  # returns only when click should say what went wrong
    if args in (["usage"], ["stats"]):
        _usage()  # never returns
    from claudewrap.cli import main as click_main

    try:
        click_main(args)
    except SystemExit as exc:
        if args[:1] not in (["usage"], ["stats"]):
            raise
        # A report leaves a big state in memory (usage_view keeps it):
        # freeing it object by object costs more than the report; leave at once.
        code = exc.code
        if isinstance(code, str):
            sys.stderr.write(code + "\n")
        exit_now(code if isinstance(code, int) else (0 if code is None else 1))
    except Exception as exc:
        # A command that lets a JournalError through (a journal path that is a
        # directory, say) still ends in one line, as click says its errors.
        from claudewrap.journal import JournalError

        if not isinstance(exc, JournalError):
            raise
        sys.stderr.write(f"Error: {exc}\n")
        sys.exit(1)


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
    except PatternError as exc:
        # Before anything ran; one line, as commands/run.py says it (what the
        # shell's `claude` shows before it runs the real binary untracked).
        sys.stderr.write(f"claudewrap: {exc}\n")
        exit_now(2)
    except runner.TagError:
        return  # raised before anything ran: click reports it with the usage line
    exit_now(outcome.exit_status)


def _usage() -> None:
    """`claudewrap usage` without options, as `claudewrap.commands.usage` shows it
    (the same errors and exit status); ends the process."""
    from claudewrap import usage_view
    from claudewrap.journal import JournalError, resolve_path
    from claudewrap.pricing import PriceFileError, default_table
    from claudewrap.report import Filters

    try:
        path = resolve_path(None)
        report = usage_view.summary(path, tz=None, use_cache=True, since=None, until=None,
                                    dims=usage_view.VIEW_GROUPS, filters=Filters(),
                                    table=default_table(), count_sessions=False)
    except (JournalError, PriceFileError) as exc:
        sys.stderr.write(f"Error: {exc}\n")
        exit_now(1)
    usage_view.warn_skipped(report.skipped_lines, report.first_bad_lines)
    text = usage_view.render_default(report, width=usage_view.width(),
                                     color=usage_view.use_color(), journal=path)
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `claudewrap usage | head -1`: as click does
        exit_now(1)
    exit_now(0)


def exit_now(status: int) -> None:
    """End the process with ``status`` at once (`run`, and a report once printed).

    A run is complete when :func:`claudewrap.runner.run_claude` returns: journal
    writes are unbuffered and closed, the live marker is gone, the OpenTelemetry
    thread is joined. What is left of a normal exit is the interpreter tearing
    down every module, about 5 ms that each `claude` would wait for
    (``bench/passthrough.py``), and for a report, freeing its state object by
    object; so flush stdio and leave with ``os._exit``.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(status)
