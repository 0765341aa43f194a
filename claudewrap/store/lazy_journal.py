"""The journal as a wrapped run writes it: opened on the first record.

Kept apart from :mod:`claudewrap.store.journal` (not on the launch path: a run with
nothing to write never loads it) and from :mod:`claudewrap.store.config` (which
journal.py itself reads: no import cycle).
"""

from __future__ import annotations

import os

from claudewrap.store.config import journal_path

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (launch path)
if TYPE_CHECKING:
    from claudewrap.store.journal import JournalWriter
    from claudewrap.store.records import UsageRecord


class LazyJournal:
    """Appends records to the journal, opened on the first append.

    What a run records (capture.py, otel.py) goes through one of these: a run
    with nothing to write never loads :mod:`claudewrap.store.journal`, which is not
    on the launch path.
    """

    def __init__(self, option: str | os.PathLike[str] | None = None) -> None:
        self._option = option
        self._writer: JournalWriter | None = None

    def append(self, records: list[UsageRecord]) -> None:
        if self._writer is None:
            from claudewrap.store.journal import JournalWriter

            self._writer = JournalWriter(journal_path(self._option))
        self._writer.append(records)

    def close(self) -> str | None:
        """JournalWriter.close() (a warning line or None) when anything was appended."""
        return self._writer.close() if self._writer is not None else None
