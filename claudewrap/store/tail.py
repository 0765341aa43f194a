"""Following the journal as it grows: only the lines appended since the last look.

A :class:`JournalTail` keeps the byte offset it has read up to and the file's
identity. Each :meth:`JournalTail.poll` returns the complete lines appended
since (a line still being written waits for its newline). When the journal was
replaced, rotated or truncated, the poll says so (``reset``) and starts again
from the beginning of the new file: a follower never silently mixes two files.

What `status`, `monitor` and the metrics' rate gauges show over "the last N
minutes" is not read here: it comes from the minute buckets of the state they
share (claudewrap.export.metrics.window_usage).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from claudewrap.store.files import open_regular
from claudewrap.store.journal import parse_line
from claudewrap.store.records import UsageRecord

_BLOCK = 8 << 20


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


__all__ = ["Chunk", "JournalTail", "quoted_forms"]
