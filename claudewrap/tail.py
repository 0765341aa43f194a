"""Following the journal as it grows: only the lines appended since the last look.

A :class:`JournalTail` keeps the byte offset it has read up to and the file's
identity. Each :meth:`JournalTail.poll` returns the complete lines appended
since (a line still being written waits for its newline). When the journal was
replaced, rotated or truncated, the poll says so (``reset``) and starts again
from the beginning of the new file: a follower never silently mixes two files.

The recent window (:func:`window_records`, :func:`recent_usage`) is read the
other way, back from the journal's end: what `status`, `monitor` and the
metrics' rate gauges show over "the last N minutes" comes from there, so the
three agree.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from claudewrap.journal import open_regular, parse_line, read_error
from claudewrap.records import UsageRecord

if TYPE_CHECKING:
    from claudewrap.pricing import PriceTable
    from claudewrap.report import Filters, Report

_BLOCK = 8 << 20
# How far back from the journal's end the recent window may read: over garbage to
# the window's start, then to the earlier records of the window's sessions (the
# baseline their running totals rise from). 32 MiB is about a month of the
# heaviest use (bench/gen_journal.py: 432 MB a year); a session whose previous
# record is further back counts its running total from zero.
LOOKBACK_BYTES = 32 << 20
# ... and at most this long before the window's start: a session that shows a
# running total in the window and none in the day before it started in the window
# (no Claude Code process runs a day between two /cost blocks). Without it, every
# session that started in the window sent the search to LOOKBACK_BYTES: a scrape
# of a 100k-record journal took 0.25-0.5 s instead of 0.2 s (/tmp-style cProfile of
# JournalMetrics.snapshot on tests/test_exporter.py's big journal).
HISTORY_SPAN = timedelta(days=1)
_FIRST_BLOCK = 64 << 10
_BACK_BLOCK = 1 << 20
_HEAD = b'{"ts":"'  # how records.py starts a line: the time can be compared unparsed


@dataclass
class Chunk:
    """What one poll found: complete journal lines starting at byte ``base``."""

    reset: bool  # the file is not the one read so far: start over with this chunk
    base: int
    data: bytes  # ends with a newline, or is empty

    def records(self) -> list[tuple[int, UsageRecord]]:
        """``(offset, record)`` for each readable line (bad lines are skipped)."""
        out = []
        pos = 0
        data = self.data
        while pos < len(data):
            nl = data.index(b"\n", pos)
            rec = parse_line(data[pos:nl])
            if rec is not None:
                out.append((self.base + pos, rec))
            pos = nl + 1
        return out


class JournalTail:
    """Reads what was appended to the journal at ``path`` since the last poll.

    ``start`` is where the first poll begins: 0 (the whole file) or ``"end"``
    (only what is appended from now on). A missing journal is an empty one.
    """

    def __init__(self, path: Path, start: int | str = 0) -> None:
        self.path = Path(path)
        self.offset = 0
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None
        self._from_end = start == "end"
        if isinstance(start, int):
            self.offset = start
        elif self._from_end and not self._reopen() and self._fd is None:
            self._from_end = False  # no journal yet: all of it will be new

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def fd(self) -> int | None:
        """The open journal (for re-reading a line), or None."""
        return self._fd

    def _reopen(self) -> bool:
        """Open the journal if it is (new) at ``path``; True when it is another file."""
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            if self._fd is None:
                return False
            self.close()  # removed: whatever comes next is a new file
            self._identity = None
            self.offset = 0
            return True
        identity = (st.st_dev, st.st_ino)
        if self._fd is not None and identity == self._identity:
            if st.st_size >= self.offset:
                return False
            self.offset = 0  # truncated in place
            return True
        changed = self._identity is not None or self._fd is not None
        self.close()
        # Regular files only (NotRegularFile): a FIFO would block every poll.
        self._fd = open_regular(self.path, os.O_RDONLY)
        self._identity = identity
        if self._from_end:
            self._from_end = False
            self.offset = _line_end_before(self._fd, st.st_size)
        elif changed:
            self.offset = 0
        return changed

    def poll(self) -> Chunk:
        """The complete lines appended since the last poll (OSError if unreadable)."""
        reset = self._reopen()
        if self._fd is None:
            return Chunk(reset, 0, b"")
        base = self.offset
        parts = []
        pos = base
        while True:
            block = os.pread(self._fd, _BLOCK, pos)
            if not block:
                break
            parts.append(block)
            pos += len(block)
        data = b"".join(parts)
        cut = data.rfind(b"\n") + 1
        self.offset = base + cut
        return Chunk(reset, base, data[:cut])


def _line_end_before(fd: int, size: int) -> int:
    """The offset just after the last newline before ``size`` (0 if none)."""
    pos = size
    while pos > 0:
        start = max(0, pos - 65536)
        block = os.pread(fd, pos - start, start)
        nl = block.rfind(b"\n")
        if nl >= 0:
            return start + nl + 1
        pos = start
    return 0


def quoted_forms(text: str) -> tuple[bytes, ...]:
    """How ``text`` can appear as a JSON string in a journal line, for a byte search
    before decoding: as records.py writes it (``ensure_ascii=False``: UTF-8, with
    ``"``, ``\\`` and control characters escaped) and with ASCII escapes
    (``\\u00e9``, as other JSON writers do)."""
    own = json.dumps(text, ensure_ascii=False).encode("utf-8", "backslashreplace")
    return tuple(dict.fromkeys((own, json.dumps(text).encode())))


def _blocks_back(fd: int, end: int, limit: int) -> Iterator[tuple[int, bytes]]:
    """Whole lines before byte ``end``, newest block first: ``(offset, data)``.
    Blocks grow from 64 KiB to 1 MiB (the recent window is mostly in the first).
    Reads back at most ``limit`` bytes (the line cut there is left out)."""
    stop = max(0, end - limit)
    carry = b""
    pos = end
    size = _FIRST_BLOCK
    while pos > stop:
        start = max(stop, pos - size)
        size = min(size * 2, _BACK_BLOCK)
        data = os.pread(fd, pos - start, start) + carry
        pos = start
        if start > 0:
            # Up to the first newline: the end of a line that starts further back.
            cut = data.find(b"\n") + 1
            carry, data = (data[:cut], data[cut:]) if cut else (data, b"")
            start += cut
        if data:
            yield start, data


def _lines_back(base: int, data: bytes) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` of a block's lines, last first."""
    lines = data.split(b"\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    for start, line in zip(reversed(starts), reversed(lines)):
        if line:
            yield base + start, line


def _record(line: bytes) -> UsageRecord | None:
    # A journal line starts with "{" (records.py), garbage mostly does not: no parse.
    if line.lstrip()[:1] != b"{":
        return None
    return parse_line(line)


def _session_keys(records: Iterable[UsageRecord]) -> set[str]:
    return {k for r in records for k in (r.session, r.claude_session) if k}


def _total_key(r: UsageRecord) -> tuple[str, str, str, bool, str | None]:
    """A running total's series: its unit (report.py) and model."""
    return (r.session, r.source, r.claude_session or r.session, r.approximate, r.model)


def _history(records: Iterable[UsageRecord], blocks: Iterable[tuple[int, bytes]],
             found: dict[int, UsageRecord], not_before: str | None = None) -> bool:
    """Add to ``found`` the records in ``blocks`` (newest first) of the sessions of
    ``records`` (their session or Claude session ids; a byte search first, the
    match made on the decoded record), until each running total among ``records``
    has an earlier one (its baseline). True once they all have."""
    records = list(records)
    keys = _session_keys(records)
    needs = {_total_key(r) for r in records if r.kind == "total"}
    needles = tuple(n for k in sorted(keys) for n in quoted_forms(k))
    # One search per line, not one per id and line: 55 -> 12 ms a scrape of a
    # 100k-record journal (tests/test_exporter.py's big journal, /tmp/prof.py-style
    # cProfile of JournalMetrics.snapshot).
    in_line = re.compile(b"|".join(map(re.escape, needles))).search
    stop = not_before.encode() if not_before else None
    for base, data in blocks:
        if stop is not None:
            last = data[data.rfind(b"\n", 0, len(data) - 1) + 1:]
            if last.startswith(_HEAD) and last[7:31] < stop:
                return False  # the block ends before the span: nothing newer further back
        if not any(n in data for n in needles):
            continue
        for off, line in _lines_back(base, data):
            if in_line(line):
                rec = _record(line)
                if rec is not None and (rec.session in keys or rec.claude_session in keys):
                    if off not in found and rec.kind == "total":
                        needs.discard(_total_key(rec))
                    found[off] = rec
        if not needs:
            # Every running total has its baseline. (A session that started in the
            # window has none: the search goes on to the limit, for those minutes.)
            return True
    return False


def _window_from_fd(fd: int, since: str, end: int, limit: int
                    ) -> list[tuple[int, UsageRecord]]:
    found: dict[int, UsageRecord] = {}
    cut = since.encode()
    before: list[tuple[int, bytes]] = []  # lines read on the way, older than the window
    blocks = _blocks_back(fd, end, limit)
    for base, data in blocks:
        recent = old = False
        for off, line in _lines_back(base, data):
            if line.startswith(_HEAD) and line[7:31] < cut:  # older, unparsed
                before.append((off, line))
                old = old or _record(line) is not None
                continue
            rec = _record(line)
            if rec is None:
                continue
            if rec.ts >= since:
                found[off] = rec
                recent = True
            else:
                before.append((off, line))
                old = True
        # Records are appended about when they happen, but not always (a transcript
        # read at the end of a run): the window is covered once a whole block holds
        # records from before it and none from it.
        if old and not recent:
            break
    window = list(found.values())
    if window:
        start = datetime.fromisoformat(since[:19]) - HISTORY_SPAN
        not_before = start.strftime("%Y-%m-%dT%H:%M:%S") + since[19:]
        if not _history(window, before, found, not_before):
            _history(window, blocks, found, not_before)
    return sorted(found.items())


def window_records(path: Path, since: str, *, end: int | None = None,
                   limit: int = LOOKBACK_BYTES) -> list[tuple[int, UsageRecord]]:
    """``(offset, record)``, in journal order, of what decides the usage after
    ``since`` (a journal time string): the records from then on, read back from the
    journal's end (or ``end``) over any unreadable lines until a stretch of it (a
    block, up to 1 MiB) holds valid records older than ``since`` and none newer;
    then every earlier record of their sessions (by ``session`` or
    ``claude_session``): running totals rise from those, and they say which sources
    count. At most ``limit`` bytes are read. A missing journal has none; an
    unreadable one raises JournalError."""
    try:
        fd = open_regular(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise read_error(path, exc) from None
    try:
        size = os.fstat(fd).st_size
        return _window_from_fd(fd, since, size if end is None else min(end, size), limit)
    except OSError as exc:
        raise read_error(path, exc) from None
    finally:
        os.close(fd)


def session_history(path: Path, records: Iterable[UsageRecord], end: int,
                    limit: int = LOOKBACK_BYTES) -> list[tuple[int, UsageRecord]]:
    """``(offset, record)``, in journal order, of the records before byte ``end`` of
    the sessions of ``records`` (new to the window, or back after a pause): as far
    back as :func:`window_records` looks for a window's sessions."""
    found: dict[int, UsageRecord] = {}
    try:
        fd = open_regular(path, os.O_RDONLY)
    except OSError:
        return []
    try:
        _history(records, _blocks_back(fd, end, limit), found)
    except OSError:
        pass
    finally:
        os.close(fd)
    return sorted(found.items())


def recent_usage(path: Path, since: datetime, *, until: datetime | None = None,
                 dims: Iterable[tuple[str, ...]] = (), filters: Filters | None = None,
                 table: PriceTable | None = None) -> Report:
    """The usage after ``since`` (and before ``until``) by the reports' rule
    (claudewrap.report), from :func:`window_records`: the tokens per minute and
    cost per hour of `status`, `monitor` and the metrics' rate gauges."""
    from claudewrap.report import summarize, utc_iso

    records = [r for _, r in window_records(path, utc_iso(since))]
    return summarize(records, since=since, until=until, dims=dims, filters=filters,
                     table=table)


__all__ = ["LOOKBACK_BYTES", "Chunk", "JournalTail", "parse_line", "quoted_forms",
           "recent_usage", "session_history", "window_records"]
