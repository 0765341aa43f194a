"""The launcher's tap: output bytes → clean lines → usage events → journal records.

Flow is one way (scanner → patterns → journal). Deduplication of redraws lives
here: within one wrapped session, an event with the same values as one already
recorded is a repaint of the same numbers and is not recorded again.
"""

from __future__ import annotations

from typing import Any

from claudewrap.journal import JournalWriter
from claudewrap.patterns import Matcher
from claudewrap.records import UsageEvent, UsageRecord
from claudewrap.scanner import Scanner


BATCH_BYTES = 1 << 16


class Capture:
    """Feed it output chunks; it appends one record per new usage event.

    Chunks are parsed in batches of BATCH_BYTES (a pty delivers ~4 KiB at a
    time; parsing bigger slices costs far less per byte) and whenever the
    launcher reports the child idle, so records never wait long.
    """

    def __init__(self, *, session: str, matcher: Matcher, writer: JournalWriter | None,
                 attribution: dict[str, Any] | None = None, source: str = "pty") -> None:
        self.session = session
        self.source = source
        self.attribution = attribution or {}
        self.matcher = matcher
        self.writer = writer
        self.scanner = Scanner()
        self.records: list[UsageRecord] = []
        self._seen: set[tuple[Any, ...]] = set()
        self._batch: list[bytes] = []
        self._batch_size = 0

    def feed(self, chunk: bytes) -> None:
        self._batch.append(chunk)
        self._batch_size += len(chunk)
        if self._batch_size >= BATCH_BYTES:
            self.idle()

    def idle(self) -> None:
        """Parse what has been batched so far."""
        if not self._batch:
            return
        data = b"".join(self._batch)
        self._batch.clear()
        self._batch_size = 0
        lines = self.scanner.feed(data)
        if lines:
            self._record(self.matcher.feed(lines))

    def _record(self, events: list[UsageEvent]) -> None:
        fresh: list[UsageRecord] = []
        for event in events:
            key = event.values_key()
            if key in self._seen:
                continue
            self._seen.add(key)
            fresh.append(UsageRecord.from_event(
                event, session=self.session, source=self.source, attribution=self.attribution))
        if fresh:
            self.records.extend(fresh)
            if self.writer is not None:
                self.writer.append(fresh)

    def close(self) -> str | None:
        """End of output: flush what is pending; returns one warning line or None."""
        self.idle()
        self._record(self.matcher.feed(self.scanner.flush()) + self.matcher.flush())
        return self.writer.close() if self.writer is not None else None
