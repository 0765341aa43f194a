"""The `claudewrap` entry point (console script and ``python -m claudewrap``).

`claudewrap run [-- ARGS]`, the launch path that the shell's `claude` takes
every time, goes straight to :func:`claudewrap.wrap.runner.run_claude` without loading
click: that saves about a third of the wrapper's start-up. So does `claudewrap
usage` (or `stats`) without options, what `claude_usage` runs: the same view as
:mod:`claudewrap.commands.usage` shows, from :mod:`claudewrap.views.usage_view`.
So does `claudewrap statusline` without options, which Claude Code runs after
every message (:mod:`claudewrap.sources.statusline`), and `claudewrap status`
with at most ``--format``, which tmux runs every few seconds
(:mod:`claudewrap.views.status_view`). Everything else, including `run`
with options and every error that needs a usage message, goes through the click
command line in :mod:`claudewrap.cli`.

The shell's `claude` runs us as `claude ARGS` (so that `jobs` reads as the user
typed it) with $CLAUDEWRAP_REPORT naming a file that does not exist yet: we
create it and write ``started`` once we can run, ``config`` when the pattern
config is bad (the shell then runs the real claude untracked); when our exit
status is not one a failed start also gives (1, 2, 126, 127) we remove it, as
the shell will not look. So the shell never starts us a second time to ask.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence

REPORT_ENV = "CLAUDEWRAP_REPORT"
# Exit statuses a claudewrap that could not start gives too: only after these
# does the shell read the report.
AMBIGUOUS = (1, 2, 126, 127)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    # Never passed on: claude, and a claudewrap it runs, must not write our report.
    report = os.environ.pop(REPORT_ENV, None)
    if report is not None and argv is None:
        args = ["run", "--", *args]  # the shell's `claude ARGS`
    if args[:1] == ["run"] and args[1:2] in ([], ["--"]):
        _run(args[2:], report if argv is None else None)  # returns only when click should say what went wrong
    if args in (["usage"], ["stats"]):
        _usage()  # never returns
    if args in (["usage", "--json"], ["stats", "--json"]):
        _usage(as_json=True)  # never returns: click's import was ~30 ms of ~125 at 1M records
    if args[:1] == ["status"] and args[1:] in _STATUS_FAST:  # tmux runs it every few seconds
        _status(args[2] if len(args) > 2 else "plain")  # never returns
    if args[:1] == ["cost"]:
        from claudewrap.views.cost_view import parse_args

        options = parse_args(args[1:])
        if options is not None:
            _cost(*options)  # never returns
    if args == ["statusline"]:  # Claude Code runs it after every message
        from claudewrap.sources.statusline import main as statusline

        exit_now(statusline())
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
        from claudewrap.store.journal import JournalError

        if not isinstance(exc, JournalError):
            raise
        sys.stderr.write(f"Error: {exc}\n")
        sys.exit(1)


def _run(claude_args: list[str], report: str | None = None) -> None:
    """`claudewrap run -- ARGS` with every option at its default, exactly as
    `claudewrap.commands.run` does it; ``report``: the shell's file (see above)."""
    from claudewrap.store.config import PatternError
    from claudewrap.wrap import launcher, runner

    fd = _report_start(report)
    try:
        outcome = runner.run_claude(claude_args)
    except launcher.LaunchError as exc:
        sys.stderr.write(f"{exc}\n")
        _report_end(fd, report, exc.status)
        exit_now(exc.status)
    except PatternError as exc:
        # Before anything ran; one line, as commands/run.py says it (what the
        # shell's `claude` shows before it runs the real binary untracked).
        sys.stderr.write(f"claudewrap: {exc}\n")
        _report_end(fd, report, 2, b"config\n")
        exit_now(2)
    except runner.TagError:
        _report_end(fd, report, 1, b"")  # click reports it; the shell falls back
        return  # raised before anything ran: click reports it with the usage line
    _report_end(fd, report, outcome.exit_status)
    exit_now(outcome.exit_status)


def _report_start(path: str | None) -> int | None:
    """Create the shell's report file (never an existing file or a symlink) and
    say ``started`` in it; its fd, or None."""
    if not path:
        return None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
    except OSError:
        return None  # not ours to write: the shell sees no report and says so
    try:
        os.write(fd, b"started\n")
    except OSError:
        pass
    return fd


def _report_end(fd: int | None, path: str | None, status: int,
                word: bytes | None = None) -> None:
    """Replace the report with ``word`` (if given); remove it when the shell
    will not read it (``status`` not in AMBIGUOUS)."""
    if fd is None or path is None:
        return
    try:
        if word is not None:
            os.ftruncate(fd, 0)
            os.pwrite(fd, word, 0)
        if status not in AMBIGUOUS:
            os.unlink(path)
    except OSError:
        pass
    os.close(fd)


_STATUS_FAST: tuple[list[str], ...] = ([], ["--format", "tmux"], ["--format", "plain"])


def _status(fmt: str) -> None:
    """`claudewrap status [--format tmux|plain]` as claudewrap.commands.status runs it,
    without loading click (~40 ms of each call); ends the process."""
    from claudewrap.store.journal import JournalError
    from claudewrap.views.status_view import show

    try:
        code = show(fmt)
    except JournalError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        exit_now(1)
    exit_now(code)


def _cost(which: str | None, as_json: bool, journal: str | None) -> None:
    """`claudewrap cost [--session X] [--json] [--journal P]` as
    claudewrap.commands.cost runs it, without loading click (~25 ms); ends the process."""
    from claudewrap.api import SessionNotFound
    from claudewrap.store.journal import JournalError
    from claudewrap.views.cost_view import cost_text

    try:
        text = cost_text(which, as_json, journal)
    except (SessionNotFound, JournalError) as exc:
        sys.stderr.write(f"Error: {exc}\n")
        exit_now(1)
    _print_and_exit(text + "\n")


def _usage(as_json: bool = False) -> None:
    """`claudewrap usage` without options (or with only ``--json``), as
    `claudewrap.commands.usage` shows it (the same errors and exit status); ends
    the process."""
    from claudewrap.store.journal import JournalError, resolve_file
    from claudewrap.usage.filters import Filters
    from claudewrap.usage.pricing import PriceFileError, default_table
    from claudewrap.views import usage_view

    try:
        path = resolve_file(None)
        if as_json:
            data, skipped, first_bad = usage_view.summary_json(
                path, tz=None, use_cache=True, since=None, until=None, extra_dims=(),
                filters=Filters(), table=default_table())
        else:
            report = usage_view.summary(path, tz=None, use_cache=True, since=None, until=None,
                                        dims=usage_view.VIEW_GROUPS, filters=Filters(),
                                        table=default_table(), count_sessions=False)
    except (JournalError, PriceFileError) as exc:
        sys.stderr.write(f"Error: {exc}\n")
        exit_now(1)
    if as_json:
        usage_view.warn_skipped(skipped, first_bad)
        _print_and_exit(data.decode("ascii") + "\n")  # ASCII: json's ensure_ascii spelling
    usage_view.warn_skipped(report.skipped_lines, report.first_bad_lines)
    text = usage_view.render_default(report, width=usage_view.width(),
                                     color=usage_view.use_color(), journal=path)
    _print_and_exit(text)


def _print_and_exit(text: str) -> None:
    """Print ``text`` and end the process (status 1 when stdout closed early)."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `claudewrap usage | head -1`: as click does
        exit_now(1)
    exit_now(0)


def exit_now(status: int) -> None:
    """End the process with ``status`` at once (`run`, and a report once printed).

    A run is complete when :func:`claudewrap.wrap.runner.run_claude` returns: journal
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
