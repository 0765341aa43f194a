"""`claudewrap run`: the launch path, and :func:`run_claude` behind it.

Everything here is imported before `claude` starts, on every run the shell's
`claude` function makes, so this module and what it imports at the top stay
light: no click, no dataclasses, no typing at run time (each costs
milliseconds of start-up; ``bench/passthrough.py`` measures it). The parser,
the journal and the reports load later, when there is something to parse or
write. Public names are re-exported by :mod:`claudewrap.api`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from claudewrap.wrap import launcher

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from claudewrap.store.records import UsageRecord
    from claudewrap.usage.report import Row
    from claudewrap.wrap.capture import Capture

SESSION_ENV = "CLAUDEWRAP_SESSION"

class TagError(ValueError):
    """A tag is not ``KEY=VALUE``."""


def new_session_id() -> str:
    return os.urandom(8).hex()


def parse_tag_args(tags: Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
    """``{"k": "v"}`` or ``["k=v", ...]`` (the CLI's ``--tag``) as a dict; TagError if bad."""
    if tags is None:
        return {}
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    from claudewrap.wrap.context import tag_items

    try:
        return tag_items(tags)
    except ValueError as exc:
        raise TagError(str(exc)) from None


class RunOutcome:
    """How a wrapped run ended and what it recorded.

    ``exit_status``: claude's own, 128+N when signal N killed it (``signal_number``);
    ``records``: this run's journal records (every source), in order; ``session``:
    the wrapper's session id, on every record of this run; ``warnings``: the lines
    shown on stderr; ``journal``: the journal file (a Path).
    """

    __slots__ = ("_journal", "exit_status", "records", "session", "signal_number", "warnings")

    def __init__(self, exit_status: int, records: list[UsageRecord], session: str,
                 signal_number: int | None = None, warnings: list[str] | None = None,
                 journal: str | os.PathLike[str] | None = None) -> None:
        self.exit_status = exit_status
        self.records = records
        self.session = session
        self.signal_number = signal_number
        self.warnings = warnings if warnings is not None else []
        # Kept as a string: pathlib (~8 ms to import) loads only if it is asked for.
        self._journal = os.fspath(journal) if journal is not None else None

    @property
    def journal(self) -> Path | None:
        if self._journal is None:
            return None
        from pathlib import Path

        return Path(self._journal)

    def __repr__(self) -> str:
        return (f"RunOutcome(exit_status={self.exit_status}, records=<{len(self.records)}>, "
                f"session={self.session!r}, signal_number={self.signal_number}, "
                f"journal={self.journal!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RunOutcome):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it was

    @property
    def usage(self) -> Row:
        """Tokens and cost of the run, counted by the reports' rules."""
        from claudewrap.usage.report import summarize

        return summarize(self.records).total


def run_claude(args: Sequence[str] = (), *, project: str | None = None,
               tags: Mapping[str, str] | Sequence[str] | None = None,
               journal: str | os.PathLike[str] | None = None, claude: str | None = None,
               config: str | os.PathLike[str] | None = None, capture: bool = True,
               otel: bool = True, alerts: bool = True, session: str | None = None,
               stdin_fd: int = 0, stdout_fd: int = 1, stderr_fd: int = 2,
               print_warnings: bool = True) -> RunOutcome:
    """Run the real ``claude`` with ``args`` exactly as ``claudewrap run -- ARGS`` does.

    Terminals get a pty, pipes stay pipes; every byte passes through. ``project``
    and ``tags`` attribute the usage (defaults as the CLI: ``$CLAUDEWRAP_PROJECT``,
    the git folder, ``$CLAUDEWRAP_TAGS``); ``journal``, ``claude`` and ``config``
    are the CLI's ``--journal``, ``--claude`` and ``--config``; ``capture=False``
    only relays (``--no-capture``), ``otel=False`` is ``--no-otel``, ``alerts=False``
    skips the budget check at the end and the webhook per record
    (``[alerts] each_record``). The child gets ``$CLAUDEWRAP_SESSION``.

    Warnings (and a budget notice) are written to ``stderr_fd`` after the child
    exited unless ``print_warnings`` is false; they are in the outcome either way.
    Raises :class:`LaunchError` (``.status`` 126/127) when claude cannot be found
    or started, :class:`TagError` or ``config.PatternError`` (both ValueError) for
    a bad tag or pattern config; nothing is run then.
    """
    launcher.check_depth()
    real = launcher.find_claude(claude)
    session = session or new_session_id()
    journal_option = os.fspath(journal) if journal is not None else None
    misplaced: tuple[Path, str] | None = None
    if capture:
        journal_option, misplaced = _usable_journal(journal_option)
    cap: Capture | None = None
    tmux: Any = None
    if capture:
        cap = _make_capture(session, journal_option, config, project, tags,
                            resumed_session(args))
        from claudewrap.wrap.context import TmuxQuery

        # Asked now, read once claude runs (started()): claude does not wait for tmux.
        tmux = TmuxQuery.start(dict(os.environ))
    exact = _exact_sources(cap, journal_option, otel)
    env = exact.child_env() or dict(os.environ)
    env[SESSION_ENV] = session
    journal_path, start = _journal_mark(journal_option) if cap is not None else (None, 0)
    marker: Any = None
    hook: Any = None

    def started() -> None:
        # Once claude runs, while it starts up (what the user waits for is its
        # first output): what the run needs only while claude runs. The port
        # is bound and in claude's environment already; the live marker and
        # the webhook sender (reading the journal from ``start``) miss nothing.
        nonlocal marker, hook
        if tmux is not None and cap is not None:
            # Before any record: the capture, OpenTelemetry and the transcript
            # share this dict; the live marker is written just below.
            cap.attribution["tmux_session"] = tmux.result()
        exact.child_started()
        if cap is not None:
            marker = _live(session, cap, journal_path)
            # What the end of the run reads the session's transcript with.
            cap.preload(("claudewrap.sources.claude_dirs", "claudewrap.sources.transcripts"))
        if alerts:
            hook = _record_hook(config, session, journal_path, start)

    try:
        result = launcher.run([real, *args], cap, env=env, stdin_fd=stdin_fd,
                              stdout_fd=stdout_fd, stderr_fd=stderr_fd, started=started)
    except launcher.LaunchError:
        exact.abort()
        if hook is not None:
            hook.close()
        raise
    finally:
        if tmux is not None:
            tmux.cancel()  # claude never started: end the query unread (no-op once read)
        if marker is not None:
            marker.__exit__(None, None, None)

    warnings: list[str] = []
    if cap is not None:
        try:
            warning = cap.close()
        except Exception as exc:  # noqa: BLE001 - never turn claude's status into ours
            warning = f"claudewrap: usage capture failed at exit: {exc}"
        if warning:
            warnings.append(warning)
    warnings.extend(exact.finish())
    if hook is not None:
        hook.close()  # every record is in the journal: the sender sends the rest alone
    if result.tap_error:
        warnings.append(f"claudewrap: usage capture stopped after an internal error "
                        f"({result.tap_error}); claude ran on unaffected")
    records: list[UsageRecord] = []
    if cap is not None and journal_path is not None:
        records = _records_since(journal_path, start, session) or list(cap.records)
        if misplaced is not None and records:
            warnings.insert(0, _misplaced_warning(*misplaced, journal_path))
        elif alerts and records:
            from pathlib import Path

            warnings.extend(_budget_alerts(Path(journal_path), config, cap, session))
    if print_warnings:
        for line in warnings:
            _write_line(stderr_fd, line)
    return RunOutcome(exit_status=result.exit_status, records=records, session=session,
                      signal_number=result.signal_number, warnings=warnings,
                      journal=journal_path)


def resumed_session(args: Sequence[str]) -> str | None:
    """The Claude session that ``claude ARGS`` continues (``--resume ID``, ``-r ID``,
    ``--resume=ID``, ``--session-id ID``), or None.

    What the wrapper reads off the screen then belongs to that session: a
    ``claude -p --resume ID /cost`` prints the finished session's whole block
    (Claude Code 2.1.332), which must count once with that session's other records.
    """
    found = None
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg in ("--resume", "-r", "--session-id") and i + 1 < len(args):
            value = args[i + 1]
            found = value if value and not value.startswith("-") else found
        elif arg.startswith(("--resume=", "--session-id=")):
            found = arg.partition("=")[2] or found
    return found


def _make_capture(session: str, journal: str | None, config: str | os.PathLike[str] | None,
                  project: str | None, tags: Mapping[str, str] | Sequence[str] | None,
                  claude_session: str | None = None) -> Capture:
    from claudewrap.store.config import config_file, load_user_patterns
    from claudewrap.wrap import context
    from claudewrap.wrap.capture import Capture

    tag_dict = parse_tag_args(tags)
    path = os.fspath(config) if config is not None else config_file()
    patterns = load_user_patterns(path) if config is not None or os.path.exists(path) else []
    return Capture(session=session, journal=journal, user_patterns=patterns,
                   attribution=context.collect(project=project, tags=tag_dict, ask_tmux=False),
                   claude_session=claude_session, offload=True)


class _NoExactSources:
    """Stands in for ExactSources when nothing is captured."""

    def child_env(self) -> dict[str, str] | None:
        return None

    def child_started(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def finish(self) -> list[str]:
        return []


def _exact_sources(cap: Capture | None, journal: str | None, use_otel: bool) -> Any:
    if cap is None:
        return _NoExactSources()
    from claudewrap.wrap.exact import ExactSources

    return ExactSources(cap, journal, use_otel=use_otel)


def _live(session: str, cap: Capture, journal: str | None) -> Any:
    """Marks the run as live for `monitor`, `cost --session current` and `doctor`:
    the entered marker (its ``__exit__`` removes it)."""
    from claudewrap.wrap import live

    return live.register(session, cap.attribution, journal=journal).__enter__()


def _usable_journal(option: str | None) -> tuple[str | None, tuple[Path, str] | None]:
    """``option`` as it is; or, when the journal it names is a directory (a wrong
    ``$CLAUDEWRAP_JOURNAL``), the fallback file, with that directory and where it
    was named: every source of the run writes to the fallback then, and one line
    at the end says where the records are and what to fix (issue 12)."""
    from claudewrap.store.config import journal_file

    path = journal_file(option)
    if not os.path.isdir(path):
        return option, None
    from pathlib import Path

    from claudewrap.store.config import fallback_journal, journal_source

    fallback = fallback_journal()
    if fallback is None:  # the writers keep the records in memory and say so
        return option, None
    return os.fspath(fallback), (Path(path), journal_source(option))


def _misplaced_warning(directory: Path, source: str, saved: str) -> str:
    from claudewrap.store.config import journal_is_directory, recover_advice

    return (f"claudewrap: {journal_is_directory(directory, source)}; this run's usage is"
            f" saved in {saved} \N{EM DASH} then add it once with:"
            f" {recover_advice(directory / 'journal.jsonl')}")


def _journal_mark(option: str | None) -> tuple[str, int]:
    """The journal and its size now: this run's records are after that offset."""
    from claudewrap.store.config import journal_file

    path = journal_file(option)
    try:
        return path, os.stat(path).st_size
    except OSError:
        return path, 0


def _records_since(path: str, start: int, session: str) -> list[UsageRecord]:
    try:
        if os.stat(path).st_size <= start:
            return []  # nothing was written: the journal's readers need not load
    except OSError:
        return []
    from pathlib import Path

    from claudewrap.store.journal import JournalError, read_records

    try:
        return [r for r in read_records(Path(path), start=start) if r.session == session]
    except (JournalError, OSError):
        return []


def _record_hook(config: str | os.PathLike[str] | None, session: str,
                 journal: str | None, start: int) -> Any:
    """The sender of ``[alerts] each_record`` (claudewrap.export.record_hook), or None."""
    if journal is None:
        return None
    try:
        from claudewrap.export import record_hook

        return record_hook.start(config, session=session, journal=journal, offset=start)
    except Exception:  # noqa: BLE001 - a webhook never stops claude from starting
        return None


def _budget_alerts(journal: Path, config: str | os.PathLike[str] | None, cap: Capture,
                   session: str) -> list[str]:
    try:
        from claudewrap.export import budget

        cfg = budget.load_config(config)
        return budget.check_after_session(
            journal, project=cap.attribution.get("project"), session=session,
            host=cap.attribution.get("host"), config=cfg)
    except Exception as exc:  # noqa: BLE001 - the session is over and fine: say it, go on
        return [f"claudewrap: budget check failed: {exc}"]


def _write_line(fd: int, line: str) -> None:
    view = memoryview((line + "\n").encode("utf-8", "backslashreplace"))
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        pass
