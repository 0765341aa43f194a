"""Usage typed into a shell, found again in its history file (`import --shell-history`).

Before claudewrap, people logged usage by hand (`claude-token-logger.sh log IN OUT
COST [MODEL]`) or pasted what claude printed into a command (`echo "Tokens: 1200
input, 350 output" >> log`). Their shell kept those lines, with the time each was
typed when it keeps times: bash with ``HISTTIMEFORMAT`` set (a ``#1700000000`` line
before each command) and zsh with ``EXTENDED_HISTORY`` (``: 1700000000:0;command``).

Each command is read as the seed script's ``log`` form or, failing that, by the
same patterns `claudewrap parse` uses (:class:`claudewrap.parse.patterns.Matcher`). A
command that runs claudewrap itself is skipped: `claudewrap log` and `parse
--write` recorded themselves when they ran. Every event becomes a delta record
(source ``manual``, session and pattern ``shell-history``) dated when the command
was typed, or, in a history without times, when the file was last written. Its
``request_id`` (``hist:`` + a hash of the file, the time and the command; for a
command without a time, which repeat of it in the file it is) makes a second
import add nothing, also after the history grew.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from claudewrap.parse.patterns import Matcher, parse_cost, parse_count
from claudewrap.plain import plain, replace
from claudewrap.store.records import UsageEvent, UsageRecord, iso_of_epoch

SESSION = PATTERN = "shell-history"
ID_PREFIX = "hist:"
_BASH_TIME = re.compile(r"#(\d{9,11})\s*$")
_ZSH_LINE = re.compile(r": (\d{9,11}):\d+;(.*)$", re.DOTALL)
_SEED_SCRIPT = re.compile(r"claude-token-logger(?:\.sh)?$")
_OURS = ("claudewrap", "claude_usage", "claude_metrics")


class HistoryError(OSError):
    """A history file could not be read; the message names it and what to do."""


@plain(frozen=True)
class Command:
    """One command of a history: its text and when it was typed (None: not kept)."""

    text: str
    epoch: int | None


def default_files(env: dict[str, str] | None = None) -> list[Path]:
    """``$HISTFILE``, ``~/.bash_history``, ``~/.zsh_history`` (those that exist)."""
    env = dict(os.environ if env is None else env)
    home = Path(env.get("HOME") or Path.home())
    names = [env.get("HISTFILE"), str(home / ".bash_history"), str(home / ".zsh_history")]
    out: list[Path] = []
    for name in names:
        if name and Path(name).is_file() and Path(name) not in out:
            out.append(Path(name))
    return out


def read_commands(text: str) -> list[Command]:
    """The commands of a bash or zsh history, with their times where it keeps them.

    zsh extended lines (``: EPOCH:SECONDS;command``, a multi-line command continued
    after a trailing backslash); bash lines, a ``#EPOCH`` line dating the command
    after it (a multi-line command runs until the next ``#EPOCH``).
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if any(_ZSH_LINE.match(line) for line in lines[:50]):
        return list(_zsh(lines))
    return list(_bash(lines))


def _zsh(lines: list[str]) -> Iterator[Command]:
    current: list[str] = []
    epoch: int | None = None
    for line in lines:
        if not current:  # a new command: dated, or plain (zsh without EXTENDED_HISTORY)
            m = _ZSH_LINE.match(line)
            epoch, line = (int(m.group(1)), m.group(2)) if m else (None, line)
        if line.endswith("\\"):  # zsh writes a newline in a command as "\\\n"
            current.append(line[:-1])
            continue
        current.append(line)
        yield Command("\n".join(current), epoch)
        current = []
    if current:
        yield Command("\n".join(current), epoch)


def _bash(lines: list[str]) -> Iterator[Command]:
    current: list[str] = []
    epoch: int | None = None
    for line in lines:
        m = _BASH_TIME.match(line)
        if m is not None:
            if current:
                yield Command("\n".join(current), epoch)
            current, epoch = [], int(m.group(1))
        elif epoch is not None:
            current.append(line)  # a multi-line command: up to the next #EPOCH line
        else:
            yield Command(line, None)  # no times kept (HISTTIMEFORMAT unset)
    if current:
        yield Command("\n".join(current), epoch)


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=True)
    except ValueError:  # an unclosed quote: not a command we can read as words
        return text.split()


def _seed_log(words: list[str]) -> UsageEvent | None:
    """``claude-token-logger.sh log IN OUT [COST] [MODEL]`` as one event."""
    for i, word in enumerate(words[:-2]):
        if _SEED_SCRIPT.search(word) and words[i + 1] == "log":
            args = words[i + 2:i + 6]
            try:
                (inp, a1), (out, a2) = parse_count(args[0]), parse_count(args[1])
                cost = parse_cost(args[2]) if len(args) > 2 else None
            except (ValueError, IndexError):
                return None
            model = args[3] if len(args) > 3 else None
            return UsageEvent(kind="delta", model=model, input_tokens=inp, output_tokens=out,
                              cost_usd=cost, approximate=a1 or a2, pattern=PATTERN)
    return None


def events_of(command: str, matcher: Matcher) -> list[UsageEvent]:
    """The usage one typed command shows: the seed script's log form, else what
    the usage patterns find in its text; nothing for a claudewrap command."""
    words = _words(command)
    if words and os.path.basename(words[0]) in _OURS:
        return []
    if words and words[0] in ("python", "python3") and words[1:3] == ["-m", "claudewrap"]:
        return []
    seed = _seed_log(words)
    if seed is not None:
        return [seed] if seed.problem() is None else []
    if "\x1b" not in command and not any(c.isdigit() for c in command):
        return []
    found = matcher.feed(command.split("\n")) + matcher.flush()
    # Each command is its own observation: a delta, never a running total that
    # would set the other commands' deltas aside (rule 3).
    return [replace(e, kind="delta", pattern=PATTERN) for e in found]


@plain
class Found:
    """What one history file holds: its records, and how many lines had no time."""

    path: Path
    commands: int
    records: list[UsageRecord]
    undated: int


def scan_file(path: Path, attribution: dict[str, object] | None = None,
              matcher: Matcher | None = None) -> Found:
    """The usage records of a history file (see the module's docstring).

    Raises HistoryError when the file cannot be read.
    """
    try:
        data = path.read_bytes()
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise HistoryError(f"cannot read the history file {path}: {exc.strerror or exc};"
                           " check the path and its permissions") from None
    # zsh "metafies" bytes above 0x7f; surrogateescape keeps any byte as it is.
    commands = read_commands(data.decode("utf-8", "surrogateescape"))
    matcher = matcher or Matcher()
    where = str(path.resolve())
    seen: Counter[tuple[int | None, str]] = Counter()
    records: list[UsageRecord] = []
    undated = 0
    for cmd in commands:
        key = (cmd.epoch, cmd.text)
        # Undated, the same command typed twice is two commands; dated, the same
        # command at the same second is one, written twice (bash appends at exit
        # what `history -w` wrote already).
        seen[key] = 1 if cmd.epoch is not None else seen[key] + 1
        events = events_of(cmd.text, matcher)
        if not events:
            continue
        undated += cmd.epoch is None
        ts = iso_of_epoch(cmd.epoch if cmd.epoch is not None else mtime)
        for n, event in enumerate(events):
            digest = hashlib.sha256("\0".join(
                (where, str(cmd.epoch), cmd.text, str(seen[key]), str(n))
            ).encode("utf-8", "surrogateescape")).hexdigest()[:24]
            event = replace(event, request_id=ID_PREFIX + digest)
            records.append(UsageRecord.from_event(event, session=SESSION, source="manual",
                                                  attribution=attribution, ts=ts))
    return Found(path, len(commands), records, undated)


def known_ids(journal: Path) -> set[str]:
    """The ``hist:`` request ids the journal holds already."""
    from claudewrap.store.journal import parse_line, read_error

    mark = b'"' + ID_PREFIX.encode()
    found: set[str] = set()
    try:
        with journal.open("rb") as fh:
            for line in fh:
                if mark in line:
                    rec = parse_line(line)
                    if rec is not None and rec.request_id:
                        found.add(rec.request_id)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise read_error(journal, exc) from None
    return found


def new_records(found: Iterable[Found], journal: Path) -> list[UsageRecord]:
    """The records of ``found`` the journal does not hold yet, each once."""
    known = known_ids(journal)
    out = []
    for f in found:
        for rec in f.records:
            if rec.request_id not in known:
                known.add(rec.request_id or "")
                out.append(rec)
    return out


__all__ = ["ID_PREFIX", "PATTERN", "SESSION", "Command", "Found", "HistoryError",
           "default_files", "events_of", "known_ids", "new_records", "read_commands",
           "scan_file"]
