"""claudewrap from Python: run `claude` with attribution and get back what it cost;
follow usage as it is recorded. `claudewrap run` and `claudewrap cost` use these.

    from claudewrap.api import run_claude, follow, monitor_session, session_usage

    outcome = run_claude(["-p", "hello"], project="ci", tags={"job": "lint"})
    print(outcome.exit_status, outcome.usage.cost_usd)

    for record in follow(session=outcome.session, stop=lambda: True):
        ...

    stop = monitor_session("current", 5, lambda usage: print(usage.usage.cost_usd))

Only counts, costs and names are returned or stored, never prompts or responses.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from claudewrap.plain import plain

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

    from claudewrap.store.records import UsageRecord
    from claudewrap.usage.report import Row
    from claudewrap.wrap.launcher import LaunchError
    from claudewrap.wrap.runner import (
        RunOutcome,
        TagError,
        new_session_id,
        parse_tag_args,
        run_claude,
    )

# wrap.runner.SESSION_ENV (tests hold them equal): the readers here (`cost`,
# `monitor`) do not import the launch path (wrap.runner, wrap.launcher and their
# modules: ~10 ms of a `cost --session`, -X importtime), only run_claude does.
SESSION_ENV = "CLAUDEWRAP_SESSION"
_FROM_RUNNER = ("RunOutcome", "TagError", "new_session_id", "parse_tag_args", "run_claude")


def __getattr__(name: str) -> Any:
    """The launch path's names (run_claude, ...), imported when first asked for."""
    if name == "LaunchError":
        from claudewrap.wrap.launcher import LaunchError

        return LaunchError
    if name in _FROM_RUNNER:
        from claudewrap.wrap import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# Sources that only a wrapped run writes under its own session id (a transcript
# record does when it was reconciled at the end of a run: its session is then
# not Claude Code's own session id).
_WRAPPED_SOURCES = ("pty", "otel")
_TAIL_BLOCK = 1 << 20
_SCAN_BLOCK = 8 << 20


class SessionNotFound(LookupError):
    """No such session (or none running / recorded yet); the message says what to do."""


# --- following the journal ---------------------------------------------------------


def follow(session: str | None = None, journal: str | os.PathLike[str] | None = None, *,
           poll: float = 0.5, stop: Callable[[], bool] | threading.Event | None = None,
           from_start: bool | None = None) -> Iterator[UsageRecord]:
    """Yield journal records as they are appended, until ``stop`` says so.

    ``session``: only that session's records (a wrapper session id or Claude
    Code's session id; ``"current"`` or ``"last"`` as in :func:`resolve_session`),
    or None for all. ``from_start``: first yield what is already recorded
    (default: yes for a session, no for all). ``stop`` is a callable or a
    ``threading.Event``, checked between polls, ``poll`` seconds apart; without it
    the generator runs until closed. A replaced or truncated journal is read
    again from its start.
    """
    from claudewrap.store.journal import resolve_path
    from claudewrap.store.tail import JournalTail

    path = resolve_path(journal)
    wanted = resolve_session(session, path) if session is not None else None
    if from_start is None:
        from_start = wanted is not None
    event = stop if isinstance(stop, threading.Event) else None
    check = stop.is_set if isinstance(stop, threading.Event) else stop
    tail = JournalTail(path, 0 if from_start else "end")
    try:
        while True:
            for _, rec in tail.poll().records():
                if wanted is None or rec.session == wanted or rec.claude_session == wanted:
                    yield rec
            if check is not None and check():
                return
            if event is not None:
                event.wait(poll)
            else:
                time.sleep(poll)
    finally:
        tail.close()


def monitor_session(session: str, interval: float, callback: Callable[[SessionUsage], object],
                    journal: str | os.PathLike[str] | None = None) -> Callable[[], None]:
    """Call ``callback(usage)`` with the session's :class:`SessionUsage` whenever it
    changes, looking every ``interval`` seconds from a background thread; return
    ``stop``, which ends the thread and waits for it.

    ``session`` is resolved once, now (``current``, ``last`` or an id; raises
    :class:`SessionNotFound`). The first call comes as soon as the session has
    records; a session with none yet is waited for. An exception in ``callback``
    ends the thread (it is reported as any thread's is)::

        stop = monitor_session("current", 5, lambda u: print(u.usage.cost_usd))
        ...
        stop()
    """
    from claudewrap.store.journal import resolve_path

    if not interval > 0:
        raise ValueError(f"interval must be more than 0 seconds, not {interval!r}")
    path = resolve_path(journal)
    sid = resolve_session(session, path)
    done = threading.Event()

    def look() -> None:
        seen: tuple[object, ...] | None = None
        last: dict[str, Any] | None = None
        while not done.is_set():
            try:
                st = os.stat(path)
                stamp: tuple[object, ...] = (st.st_size, st.st_mtime_ns, st.st_ino)
            except OSError:
                stamp = ()
            running = any(s.session == sid for s in running_sessions(path))
            if (stamp, running) != seen:  # the journal or the run changed: sum again
                seen = (stamp, running)
                try:
                    usage = session_usage(sid, path)
                except SessionNotFound:
                    usage = None
                if usage is not None and usage.to_json() != last:
                    last = usage.to_json()
                    callback(usage)
            done.wait(interval)

    thread = threading.Thread(target=look, name=f"claudewrap-monitor-{sid}", daemon=True)
    thread.start()

    def stop() -> None:
        done.set()
        if thread is not threading.current_thread():
            thread.join()

    return stop


# --- sessions ------------------------------------------------------------------------


@plain
class LiveSession:
    """A wrapped run that is running now."""

    session: str
    project: str | None = None
    model: str | None = None
    tmux_pane: str | None = None
    screen_session: str | None = None
    pid: int | None = None
    started: float | None = None  # epoch seconds


def running_sessions(journal: str | os.PathLike[str] | None = None) -> list[LiveSession]:
    """The wrapped runs that are running now on this host (for this journal)."""
    from claudewrap.store.journal import resolve_path
    from claudewrap.wrap import live

    out = []
    for data in live.active(resolve_path(journal)):
        def text(key: str, data: dict[str, Any] = data) -> str | None:
            value = data.get(key)
            return str(value) if value is not None else None

        started = data.get("started")
        pid = data.get("pid")
        out.append(LiveSession(
            session=str(data.get("session", "")), project=text("project"), model=text("model"),
            tmux_pane=text("tmux_pane"), screen_session=text("screen_session"),
            pid=pid if isinstance(pid, int) else None,
            started=float(started) if isinstance(started, (int, float)) else None))
    out.sort(key=lambda s: s.started or 0.0)
    return out


def resolve_session(which: str, journal: str | os.PathLike[str] | None = None,
                    env: Mapping[str, str] | None = None) -> str:
    """A session id for ``which``: an id as it is, ``current`` or ``last``.

    ``current``: ``$CLAUDEWRAP_SESSION`` (set inside a wrapped run), else the
    running wrapped run in this tmux pane / screen window, else the only one
    running. ``last``: the newest wrapped run in the journal. Raises
    :class:`SessionNotFound`.
    """
    from claudewrap.store.journal import resolve_path

    env = os.environ if env is None else env
    path = resolve_path(journal)
    if which == "current":
        if env.get(SESSION_ENV):
            return env[SESSION_ENV]
        live = running_sessions(path)
        pane = env.get("TMUX_PANE")
        if pane:
            here = [s for s in live if s.tmux_pane == pane]
            if here:
                return here[-1].session
        if len(live) == 1:
            return live[0].session
        if not live:
            raise SessionNotFound("no wrapped claude session is running; use --session last"
                                  " or a session id")
        raise SessionNotFound(f"{len(live)} wrapped claude sessions are running; choose one"
                              f" with --session ID ({', '.join(s.session for s in live)})")
    if which == "last":
        found = _last_session(path)
        if found is None:
            raise SessionNotFound(f"no wrapped claude session recorded in {path} yet; run"
                                  f" claude through claudewrap (claudewrap run -- ...)")
        return found
    return which


def _last_session(path: Path) -> str | None:
    """The session of the last record a wrapped run wrote, reading the journal backwards.
    JournalError when something else than a regular file is in its place."""
    from claudewrap.store.files import NotRegularFile, open_regular
    from claudewrap.store.journal import parse_line, read_error

    try:
        fd = open_regular(path, os.O_RDONLY)  # a FIFO: refused, not waited on
    except NotRegularFile as exc:
        raise read_error(path, exc) from None
    except OSError:
        return None
    try:
        end = os.fstat(fd).st_size
        carry = b""
        while end > 0:
            start = max(0, end - _TAIL_BLOCK)
            data = os.pread(fd, end - start, start) + carry
            lines = data.split(b"\n")
            carry = lines.pop(0) if start > 0 else b""
            for line in reversed(lines):
                rec = parse_line(line)
                if rec is not None and (rec.source in _WRAPPED_SOURCES or (
                        rec.source == "transcript" and rec.claude_session
                        and rec.session != rec.claude_session)):
                    return rec.session
            end = start
        return None
    finally:
        os.close(fd)


def _session_records(fd: int, sid: str, start: int = 0) -> list[UsageRecord]:
    """The records of session ``sid`` (wrapper or Claude session id) in the journal
    open on ``fd`` from byte ``start`` (a line start at or before the first line
    that mentions ``sid``), in journal order; a last line without its newline is
    left out.

    The id is searched block by block as the journal spells it (UTF-8, or \\u
    escapes from another writer), each match's line read and decoded, the match
    made on the record. No block is joined to the one before (that copied the
    journal again: 8 MiB reads, joins and searches took 0.77 s of 1.5 s of `cost
    --session last` at 1M records, cProfile; now about 0.3 s)."""
    from claudewrap.store.journal import parse_line
    from claudewrap.store.tail import quoted_forms

    needles = quoted_forms(sid)
    overlap = max(map(len, needles)) - 1  # a match across two blocks is in the second
    starts: set[int] = set()
    pos = start
    while True:
        block = os.pread(fd, _SCAN_BLOCK, pos)
        if len(block) <= overlap:
            break
        for needle in needles:
            at = block.find(needle)
            while at >= 0:
                nl = block.rfind(b"\n", 0, at)
                starts.add(pos + nl + 1 if nl >= 0 else _line_start(fd, pos + at))
                at = block.find(needle, at + 1)
        pos += len(block) - overlap
    recs = []
    for line_start in sorted(starts):
        line = _whole_line(fd, line_start)
        rec = parse_line(line) if line is not None else None
        if rec is not None and sid in (rec.session, rec.claude_session):
            recs.append(rec)
    return recs


def _line_start(fd: int, at: int) -> int:
    """Where the line holding byte ``at`` starts."""
    while at > 0:
        start = max(0, at - 65536)
        nl = os.pread(fd, at - start, start).rfind(b"\n")
        if nl >= 0:
            return start + nl + 1
        at = start
    return 0


def _whole_line(fd: int, start: int) -> bytes | None:
    """The line starting at byte ``start``, without its newline; None if it has none
    yet (being written)."""
    parts = []
    while True:
        block = os.pread(fd, 65536, start)
        if not block:
            return None
        nl = block.find(b"\n")
        if nl >= 0:
            parts.append(block[:nl])
            return b"".join(parts)
        parts.append(block)
        start += len(block)


@plain
class SessionUsage:
    """What one session used, by the reports' rules."""

    session: str
    usage: Row
    by_model: dict[str, Row]
    records: int
    first_ts: str | None
    last_ts: str | None
    project: str | None
    running: bool

    def to_json(self) -> dict[str, Any]:
        """The ``cost --json`` object (keys documented in the README)."""
        return {"session": self.session, "running": self.running, "project": self.project,
                "first_ts": self.first_ts, "last_ts": self.last_ts,
                **self.usage.to_json(),
                "by_model": {m: r.to_json() for m, r in sorted(self.by_model.items())}}


def session_usage(session: str = "last", journal: str | os.PathLike[str] | None = None,
                  env: Mapping[str, str] | None = None) -> SessionUsage:
    """Tokens and cost of one session (``last``, ``current`` or an id).

    Raises :class:`SessionNotFound`, or JournalError when the journal is unreadable.
    """
    from claudewrap.export.metrics import linked
    from claudewrap.store.files import open_regular
    from claudewrap.store.journal import read_error, resolve_path
    from claudewrap.usage.filters import Filters
    from claudewrap.usage.price_fit import learn_prices
    from claudewrap.usage.pricing import default_table
    from claudewrap.usage.report import make_report
    from claudewrap.usage.rollup import load_state

    path = resolve_path(journal)
    sid = resolve_session(session, path, env)
    running = any(s.session == sid for s in running_sessions(path))
    state = load_state(path)
    # The session's records are read from the line where its id first appears
    # (the state knows it): not the whole journal (0.3 s of `cost --session last`
    # at 1M records went to searching history for it).
    first = state.first_line(sid)
    mark = state.mark_before(first) if first is not None else None
    start = mark[1] if mark is not None else 0
    try:
        fd = open_regular(path, os.O_RDONLY)
    except FileNotFoundError:
        recs = []
    except OSError as exc:
        raise read_error(path, exc) from None
    else:
        try:
            recs = _session_records(fd, sid, start)
        except OSError as exc:
            raise read_error(path, exc) from None
        finally:
            os.close(fd)
    if not recs and not running and session not in ("current", "last"):
        raise SessionNotFound(f"no records of session {sid} in {path}; `claudewrap usage"
                              f" --by session` lists the sessions")
    # Summed as `usage` sums the whole journal: over the units of the session and
    # of those the rule links to it (a wrapped run and the Claude session it ran;
    # metrics.linked), the other sessions left out; prices of models without a
    # list price learned from every exact record.
    view = linked(state, {sid})
    filters = Filters(sessions=(sid,))
    table = default_table()
    report = make_report(view, dims=[("model",)], filters=filters, table=table)
    # Rates of a model without a list price come from every exact record, as in
    # `usage`: not from these sessions' alone (learned here, or too few to learn from).
    if report.table is not table or report.total.unpriced_records:
        report = make_report(view, dims=[("model",)], filters=filters,
                             table=learn_prices(state, table))
    return SessionUsage(
        session=sid, usage=report.total,
        by_model={k[0]: row for k, row in report.groups[("model",)].items()},
        records=len(recs), first_ts=min((r.ts for r in recs), default=None),
        last_ts=max((r.ts for r in recs), default=None),
        project=next((r.project for r in reversed(recs) if r.project), None), running=running)


__all__ = ["LaunchError", "LiveSession", "RunOutcome", "SessionNotFound", "SessionUsage",
           "TagError", "follow", "monitor_session", "new_session_id", "parse_tag_args",
           "resolve_session", "run_claude", "running_sessions", "session_usage"]
