"""The launcher's tap: output bytes → clean lines → usage events → journal records.

Flow is one way (scanner → patterns → journal). Deduplication of redraws lives
here: within one wrapped session, an event with the same values as one already
recorded is a repaint of the same numbers and is not recorded again.

Nothing heavy is imported until the first output arrives: the parser's
modules load while `claude` itself starts up, not before it.

What claude prints is untrusted (it shows files, logs, web pages): a line that
the parser cannot read, or whose numbers no record can hold, costs that line or
that event, never the rest of the session; :meth:`Capture.close` says how many
in its one warning line.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (launch path)
if TYPE_CHECKING:
    from typing import Any

    from claudewrap.config import LazyJournal, UserPattern
    from claudewrap.patterns import Matcher
    from claudewrap.records import UsageEvent, UsageRecord
    from claudewrap.scanner import Scanner

BATCH_BYTES = 1 << 16


class Capture:
    """Feed it output chunks; it appends one record per new usage event.

    Chunks are kept and parsed in batches of BATCH_BYTES (a pty delivers ~4 KiB
    at a time; even deciding that a slice holds nothing to parse costs about as
    much for 64 KiB as for 4 KiB) and whenever the launcher reports the child
    idle, so records never wait long. A feed() between batches only appends:
    the relay, which calls it after every read, paces the child's output.
    """

    def __init__(self, *, session: str, journal: str | None = None,
                 user_patterns: list[UserPattern] | None = None,
                 attribution: dict[str, Any] | None = None, source: str = "pty",
                 write: bool = True, claude_session: str | None = None) -> None:
        self.session = session
        # The Claude session this run continues (runner.resumed_session): what the
        # screen shows belongs to it unless the output names its own.
        self.claude_session = claude_session
        self.source = source
        self.attribution = attribution or {}
        self.records: list[UsageRecord] = []
        self._journal: LazyJournal | None = None
        if write:
            from claudewrap.config import LazyJournal

            self._journal = LazyJournal(journal)
        self._user_patterns = user_patterns or []
        self._seen: set[tuple[Any, ...]] = set()
        self._batch: list[bytes] = []
        self._batch_size = 0
        self._scanner: Scanner | None = None
        self._matcher: Matcher | None = None
        # Lines the parser raised on (each cost only itself), and the first error.
        self._failed = 0
        self._first_failure = ""
        # Events dropped by matchers replaced after a failure (see Matcher.rejected).
        self._rejected_before = 0
        self._first_rejection: str | None = None

    def feed(self, chunk: bytes) -> None:
        # Called after every pty read, on the relay's critical path: only keep
        # the chunk. The work happens per batch, in idle().
        self._batch.append(chunk)
        self._batch_size += len(chunk)
        if self._batch_size >= BATCH_BYTES:
            self.idle()

    def _parser(self) -> tuple[Scanner, Matcher]:
        if self._scanner is None:
            from claudewrap.scanner import Scanner

            self._scanner = Scanner()
        if self._matcher is None:
            from claudewrap.patterns import Matcher

            self._matcher = Matcher(self._user_patterns)
        return self._scanner, self._matcher

    def _skippable(self, data: bytes) -> bool:
        """True when no line that ``data`` touches can start an event."""
        scanner, matcher = self._parser()
        if matcher.busy or matcher.could_start(data):
            return False
        # The unfinished line may have begun with a keyword.
        partial = scanner.partial
        return not (partial and matcher.could_start(partial.encode()))

    def idle(self) -> None:
        """Parse what has been batched so far."""
        if not self._batch:
            return
        data = self._batch[0] if len(self._batch) == 1 else b"".join(self._batch)
        self._batch.clear()
        self._batch_size = 0
        try:
            scanner = self._parser()[0]
            if self._skippable(data):
                # Nothing here can start an event (most TUI output): keep only the
                # scanner's place instead of parsing every line.
                scanner.skip(data)
                return
            lines = scanner.feed(data)
        except Exception as exc:  # noqa: BLE001 - a parser bug must not end capture
            self._failure(exc)
            self._scanner = None  # its state is unknown: a fresh one from the next batch
            return
        if lines:
            self._record(self._match(lines))

    def _match(self, lines: list[str]) -> list[UsageEvent]:
        """The events of ``lines``. When the matcher raises, the batch is read
        again a line at a time on a fresh matcher (the old one may be stuck
        half-way), so that only the line it raises on is lost."""
        try:
            return self._parser()[1].feed(lines)
        except Exception as exc:  # noqa: BLE001 - a parser bug must not end capture
            error = exc
        self._drop_matcher()
        events: list[UsageEvent] = []
        failed = self._failed
        for line in lines:
            try:
                events += self._parser()[1].feed([line])
            except Exception as exc:  # noqa: BLE001 - as above
                self._drop_matcher()
                self._failure(exc)
        if self._failed == failed:  # no one line raises: the state before the batch did
            self._failure(error)
        return events

    def _drop_matcher(self) -> None:
        """Forget the matcher (keeping its count of rejected events)."""
        matcher, self._matcher = self._matcher, None
        if matcher is not None:
            self._rejected_before += matcher.rejected
            self._first_rejection = self._first_rejection or matcher.first_rejection

    def _failure(self, exc: BaseException) -> None:
        self._failed += 1
        if not self._first_failure:
            self._first_failure = f"{type(exc).__name__}: {' '.join(str(exc).split())[:80]}"

    @property
    def rejected(self) -> tuple[int, str | None]:
        """How many events no record could hold were dropped, and why the first was."""
        matcher = self._matcher
        if matcher is None:
            return self._rejected_before, self._first_rejection
        return (self._rejected_before + matcher.rejected,
                self._first_rejection or matcher.first_rejection)

    def _record(self, events: list[UsageEvent]) -> None:
        if not events:
            return
        from claudewrap.records import UsageRecord

        fresh: list[UsageRecord] = []
        for event in events:
            key = event.values_key()
            if key in self._seen:
                continue
            self._seen.add(key)
            if self.claude_session and not event.claude_session:
                event.claude_session = self.claude_session
            fresh.append(UsageRecord.from_event(
                event, session=self.session, source=self.source, attribution=self.attribution))
        if not fresh:
            return
        self.records.extend(fresh)
        if self._journal is not None:
            self._journal.append(fresh)

    def close(self) -> str | None:
        """End of output: flush what is pending; returns one warning line or None.

        The line joins what the journal writer has to say with how many events
        were skipped (impossible numbers, or a line the parser raised on).
        """
        self.idle()
        if self._scanner is not None and self._matcher is not None:
            try:
                self._record(self._matcher.feed(self._scanner.flush()) + self._matcher.flush())
            except Exception as exc:  # noqa: BLE001 - as in idle()
                self._failure(exc)
        warning = self._journal.close() if self._journal is not None else None
        notes = []
        rejected, why = self.rejected
        if rejected:
            notes.append(f"skipped {rejected} usage event{'' if rejected == 1 else 's'}"
                         f" that could not be recorded (first: {why})")
        if self._failed:
            notes.append(f"skipped {self._failed} output line{'' if self._failed == 1 else 's'}"
                         f" the parser failed on (first: {self._first_failure});"
                         " please report it")
        # A user pattern too slow to run (patterns.py switched it off).
        notes += [p.switched_off for p in self._user_patterns if p.switched_off]
        if not notes:
            return warning
        return (warning + "; " if warning else "claudewrap: ") + "; ".join(notes)
