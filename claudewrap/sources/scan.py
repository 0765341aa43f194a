"""Usage in tmux and GNU screen scrollback, for `claude` runs that were not wrapped.

The flow is the launcher's, with a captured scrollback as the output:
capture (``tmux capture-pane``, ``screen -X hardcopy``) -> Scanner -> Matcher
-> records with ``source="scan"`` -> journal.

A line wider than the pane shows on several lines. tmux knows which lines it
wrapped and joins them (``capture-pane -J``); a screen hardcopy does not say,
so a line exactly as wide as the window is taken to go on in the next one (see
:func:`unwrap`). Rows that Claude Code wrapped itself are the parser's to join.

Scanning is idempotent. Every pane or window has a stable identity (host,
tmux pane id and its shell's pid; host, ``$STY`` and window number), and a
record's session id starts with a hash of it. An event already in the
journal for that identity (a ``total`` with the same values; the n-th
``delta`` with the same values) is not recorded again, and neither is one a
wrapped run in the same pane already recorded.

Which events belong to one `claude` run: a ``total`` is a running total, so
within a run the totals of a model never go down; a total that does, or a
Claude Code welcome banner in between, starts a new run (a new session).
Runs whose totals only grew and that were not separated by a banner merge
into one (the later total then stands for both): the price of reading
screens. Deltas of a pane share one session of their own.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claudewrap.parse.patterns import Matcher, UserPattern
from claudewrap.parse.scanner import Scanner
from claudewrap.store.records import UsageEvent, UsageRecord
from claudewrap.wrap import context
from claudewrap.wrap.context import hostname

# A line that starts a new `claude` run in a scrollback (its welcome banner).
RUN_START_RE = re.compile(r"Welcome to Claude Code|^\W*Claude Code v\d")

_TMUX_FORMAT = ("#{pane_id}\t#{pane_pid}\t#{session_name}\t#{window_index}\t#{pane_index}"
                "\t#{pane_current_path}")
_SCREEN_SESSION_RE = re.compile(r"^\s+(\d+\.\S+)\s+\(", re.MULTILINE)
_SCREEN_WINDOW_RE = re.compile(r"(?:^|\s\s)(\d+)[^\s\d]*\s")
# `screen -Q info`: "(x,y)/(width,height)+history ..."
_SCREEN_SIZE_RE = re.compile(rb"/\((\d+),\d+\)")
_TIMEOUT = 10.0


class ScanError(Exception):
    """A multiplexer could not be read; the message says what to do."""


@dataclass
class Target:
    """One tmux pane or screen window."""

    kind: str  # "tmux" or "screen"
    label: str  # for people: "tmux pane %3 (main:1.0)"
    identity: str  # stable for the pane's life; hashed into session ids
    attribution: dict[str, Any]
    address: dict[str, str] = field(default_factory=dict)  # how to capture it

    @property
    def prefix(self) -> str:
        """Session ids of this target's records start with this."""
        return "scan-" + hashlib.sha256(self.identity.encode()).hexdigest()[:12]


@dataclass
class TargetResult:
    target: Target
    records: list[UsageRecord]
    known: int  # events already in the journal


# --------------------------------------------------------------------------
# tmux


def _run(cmd: Sequence[str], what: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(list(cmd), capture_output=True, timeout=_TIMEOUT,
                              stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError:
        raise ScanError(f"{cmd[0]} is not installed; install it to scan {what}") from None
    except subprocess.TimeoutExpired:
        raise ScanError(f"{' '.join(cmd[:4])} did not answer in {_TIMEOUT:g} s") from None


def _tmux_base(socket_name: str | None) -> list[str]:
    return ["tmux", "-L", socket_name] if socket_name else ["tmux"]


def tmux_targets(socket_name: str | None = None, pane: str | None = None) -> list[Target]:
    """Every pane of the tmux server (or just ``pane``, e.g. ``%3``)."""
    base = _tmux_base(socket_name)
    if pane:
        cmd = [*base, "display-message", "-p", "-t", pane, _TMUX_FORMAT]
    else:
        cmd = [*base, "list-panes", "-a", "-F", _TMUX_FORMAT]
    done = _run(cmd, "tmux panes")
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}"
        where = f" -L {socket_name}" if socket_name else ""
        hint = ("check the pane id (tmux list-panes -a)" if pane else
                f"is a tmux server running? (tmux{where} ls); use --socket NAME for tmux -L NAME")
        raise ScanError(f"cannot list tmux panes: {err}; {hint}")
    host = hostname()
    server = _tmux_server_id(base)
    targets = []
    for line in done.stdout.decode(errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) < 6 or not parts[0].startswith("%"):
            continue
        pane_id, pane_pid, session, window, index, path = parts[:6]
        cwd = path or None
        targets.append(Target(
            kind="tmux",
            label=f"tmux pane {pane_id} ({session}:{window}.{index})",
            identity=f"tmux\0{host}\0{server}\0{pane_id}\0{pane_pid}",
            attribution={"project": context.find_project(cwd) if cwd else None, "cwd": cwd,
                         "host": host, "tmux_pane": pane_id, "tmux_session": session},
            address={"pane": pane_id, "socket": socket_name or ""},
        ))
    return targets


def _tmux_server_id(base: list[str]) -> str:
    done = _run([*base, "display-message", "-p", "#{socket_path} #{pid}"], "tmux panes")
    return done.stdout.decode(errors="replace").strip() if done.returncode == 0 else ""


def tmux_capture(target: Target) -> bytes:
    """The pane's whole scrollback and screen, wrapped lines joined."""
    base = _tmux_base(target.address.get("socket") or None)
    done = _run([*base, "capture-pane", "-p", "-J", "-S", "-", "-t", target.address["pane"]],
                "tmux panes")
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()
        raise ScanError(f"cannot read {target.label}: {err}")
    return done.stdout


# --------------------------------------------------------------------------
# GNU screen


def screen_sessions() -> list[str]:
    """``pid.name`` of every screen session of this user (``screen -ls``)."""
    done = _run(["screen", "-ls"], "screen sessions")
    return _SCREEN_SESSION_RE.findall(done.stdout.decode(errors="replace"))


def _screen_full_name(session: str, sessions: list[str]) -> str | None:
    for full in sessions:
        pid, _, name = full.partition(".")
        if session in (full, pid, name):
            return full
    return None


def screen_targets(session: str | None = None, window: str | None = None) -> list[Target]:
    """Every window of ``session`` (default: ``$STY``, else every session)."""
    sessions = screen_sessions()
    if session is None:
        session = os.environ.get("STY") or None
    if session is not None:
        full = _screen_full_name(session, sessions)
        if full is None:
            known = ", ".join(sessions) or "none"
            raise ScanError(f"no screen session {session!r} (sessions: {known}); "
                            f"see screen -ls")
        chosen = [full]
    else:
        if not sessions:
            raise ScanError("no screen sessions found (screen -ls); start one, or check "
                            "$SCREENDIR")
        chosen = sessions
    host = hostname()
    targets = []
    for full in chosen:
        windows = [window] if window is not None else _screen_windows(full)
        for number in windows:
            label = context.screen_label(full, number)
            targets.append(Target(
                kind="screen",
                label=f"screen window {label}",
                identity=f"screen\0{host}\0{full}\0{number}",
                attribution={"host": host, "screen_session": label},
                address={"session": full, "window": number},
            ))
    return targets


def _screen_windows(session: str) -> list[str]:
    done = _run(["screen", "-S", session, "-Q", "windows"], "screen sessions")
    found = _SCREEN_WINDOW_RE.findall(done.stdout.decode(errors="replace") + " ")
    return list(dict.fromkeys(found)) or ["0"]


def screen_capture(target: Target, wait: float = 5.0) -> bytes:
    """The window's scrollback and screen (``hardcopy -h``), wrapped lines joined."""
    width = screen_width(target)
    data = _hardcopy(target, wait)
    return unwrap(data, width) if width else data


def screen_width(target: Target) -> int | None:
    """The window's width in columns (``screen -Q info``); None if screen does not say."""
    done = _run(["screen", "-S", target.address["session"], "-p", target.address["window"],
                 "-Q", "info"], "screen sessions")
    m = _SCREEN_SIZE_RE.search(done.stdout)
    return int(m.group(1)) if done.returncode == 0 and m else None


def unwrap(data: bytes, width: int) -> bytes:
    """``data`` (a hardcopy of a window ``width`` columns wide) with each line that
    fills the window joined to the next one, which the terminal wrapped it onto.

    A line that is exactly as wide by itself is joined too (screen keeps no
    mark of a wrap); the parser splits rows joined so. A line wrapped at a
    space is one column short (the hardcopy drops trailing spaces): the parser
    joins that one.
    """
    out: list[str] = []
    held: list[str] = []
    for line in data.decode("utf-8", "replace").split("\n"):
        held.append(line)
        if _cells(line.rstrip("\r")) != width:
            out.append("".join(held))
            held = []
    if held:
        out.append("".join(held))
    return "\n".join(out).encode()


def _cells(text: str) -> int:
    """Columns ``text`` takes on a terminal: wide characters take two, combining
    and format characters none."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F")
               else 0 if unicodedata.category(c) in ("Mn", "Me", "Cf") else 1
               for c in text)


def _hardcopy(target: Target, wait: float) -> bytes:
    """The file ``hardcopy -h`` writes. screen writes it after the command
    returns, so wait (at most ``wait`` seconds) until it exists and stops growing.
    """
    folder = tempfile.mkdtemp(prefix="claudewrap-scan-")
    path = Path(folder) / "hardcopy.txt"
    try:
        done = _run(["screen", "-S", target.address["session"], "-p", target.address["window"],
                     "-X", "hardcopy", "-h", str(path)], "screen sessions")
        if done.returncode != 0:
            err = (done.stdout + done.stderr).decode(errors="replace").strip()
            raise ScanError(f"cannot read {target.label}: {err}")
        deadline = time.monotonic() + wait
        size = -1
        while time.monotonic() < deadline:
            try:
                now = path.stat().st_size
            except FileNotFoundError:
                now = -1
            if now >= 0 and now == size:
                return path.read_bytes()
            size = now
            time.sleep(0.05)
        if size >= 0:
            return path.read_bytes()
        raise ScanError(f"screen wrote no hardcopy of {target.label} in {wait:g} s")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------
# Events and records (pure)


def find_events(data: bytes, user_patterns: Sequence[UserPattern] = ()) -> list[tuple[int, UsageEvent]]:
    """(run number, event) for each usage event in a captured scrollback.

    The run number goes up at each line that starts a `claude` run (see
    RUN_START_RE); a block open there is closed first.
    """
    scanner = Scanner()
    matcher = Matcher(user_patterns)
    lines = scanner.feed(data) + scanner.flush()
    found: list[tuple[int, UsageEvent]] = []
    run = 0
    start = 0
    for i, line in enumerate(lines):
        if RUN_START_RE.search(line):
            found += [(run, e) for e in matcher.feed(lines[start:i]) + matcher.flush()]
            run += 1
            start = i
    found += [(run, e) for e in matcher.feed(lines[start:]) + matcher.flush()]
    return found


def _went_down(before: UsageEvent, after: UsageEvent) -> bool:
    pairs = ((before.input_tokens, after.input_tokens), (before.output_tokens, after.output_tokens),
             (before.cache_read_tokens, after.cache_read_tokens),
             (before.cache_write_tokens, after.cache_write_tokens),
             (before.cost_usd or 0.0, after.cost_usd or 0.0))
    return any(b > a for b, a in pairs)


def _same_place(record: UsageRecord, target: Target) -> bool:
    attrs = target.attribution
    if record.host != attrs.get("host"):
        return False
    if target.kind == "tmux":
        # Not the session name: a session may have been renamed since.
        return record.tmux_pane == attrs.get("tmux_pane")
    return record.screen_session == attrs.get("screen_session")


def _key(obj: UsageEvent | UsageRecord) -> tuple[Any, ...]:
    return (obj.kind, obj.model, obj.input_tokens, obj.output_tokens, obj.cache_read_tokens,
            obj.cache_write_tokens, obj.cost_usd, obj.request_id)


def plan(target: Target, events: Iterable[tuple[int, UsageEvent]],
         journal: Iterable[UsageRecord], ts: str | None = None) -> tuple[list[UsageRecord], int]:
    """The new records for ``events`` found in ``target``, given the journal's
    records; and how many events were already recorded."""
    prefix = target.prefix
    scanned: dict[tuple[Any, ...], str] = {}  # total key -> its recorded session
    scanned_deltas: Counter[tuple[Any, ...]] = Counter()
    wrapped: Counter[tuple[Any, ...]] = Counter()  # recorded by a wrapped run here
    for rec in journal:
        if rec.source == "scan":
            if rec.session.startswith(prefix + "-"):
                if rec.kind == "total":
                    scanned.setdefault(_key(rec), rec.session)
                else:
                    scanned_deltas[_key(rec)] += 1
        elif _same_place(rec, target):
            wrapped[_key(rec)] += 1

    records: list[UsageRecord] = []
    known = 0
    seen: Counter[tuple[Any, ...]] = Counter()
    session: str | None = None  # of the run being read
    last: dict[str | None, UsageEvent] = {}  # last total per model in this run
    last_run = None
    new_totals: set[tuple[Any, ...]] = set()

    def add(event: UsageEvent, sid: str) -> None:
        records.append(UsageRecord.from_event(event, session=sid, source="scan",
                                              attribution=target.attribution, ts=ts))

    for run, event in events:
        key = _key(event)
        nth = seen[key]
        seen[key] += 1
        if event.kind != "total":
            if nth < scanned_deltas[key] + wrapped[key]:
                known += 1
            else:
                add(event, f"{prefix}-d")
            continue
        previous = last.get(event.model)
        if run != last_run or (previous is not None and _went_down(previous, event)):
            session, last, last_run = None, {}, run
        if wrapped[key]:
            # A wrapped run printed it: that run is recorded already.
            known += 1
            session, last = None, {}
            continue
        last[event.model] = event
        if key in scanned:
            known += 1
            session = scanned[key]
            continue
        if key in new_totals:
            continue  # the same total shown again (a redraw, /cost twice)
        if session is None:
            digest = hashlib.sha256(repr((key, nth, run)).encode()).hexdigest()[:8]
            session = f"{prefix}-{digest}"
        new_totals.add(key)
        add(event, session)
    return records, known


def scan_targets(targets: Sequence[Target], capture: Callable[[Target], bytes],
                 journal: Sequence[UsageRecord], user_patterns: Sequence[UserPattern] = ()
                 ) -> list[TargetResult]:
    """Capture and plan each target; writes nothing."""
    results = []
    for target in targets:
        events = find_events(capture(target), user_patterns)
        records, known = plan(target, events, journal)
        results.append(TargetResult(target, records, known))
    return results
