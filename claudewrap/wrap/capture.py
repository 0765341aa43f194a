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

from time import monotonic as _monotonic  # loaded with the interpreter (launcher uses it)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (launch path)
if TYPE_CHECKING:
    from typing import Any

    from claudewrap.parse.patterns import Matcher, RawStarts
    from claudewrap.parse.scanner import Scanner
    from claudewrap.store.config import UserPattern
    from claudewrap.store.lazy_journal import LazyJournal
    from claudewrap.store.records import UsageEvent, UsageRecord
    from claudewrap.wrap.parse_worker import Worker

# The relay parses a slice of what is kept (step()) only when neither output
# nor a keystroke is waiting, so parsing delays neither; while output floods
# without a pause, feed() parses the whole backlog once it holds BACKLOG_BYTES.
# A slice of 16 KiB held the relay 0.8-1.8 ms before RawStarts found places in
# one go (worst feed() on the looped real 2.1.332 session and on
# bench/real_output.py's generated text), 64 KiB 1.6-6.3 ms.
# Parsing stays on the relay's thread: a parser thread fed whole batches through
# a queue.SimpleQueue made the wrapper slower, not faster (bench/real_output.py's
# looped 2.1.332 session, 5 interleaved rounds on 2 busy cores: claudewrap/script
# 0.50 -> 0.31 with the default switch interval, 0.38 -> 0.34 with 0.5 ms): the
# relay's every system call gives the GIL up and waits to take it back from the
# parser, whose regex searches over a batch hold it throughout.
# The relay calls step() only once BATCH_BYTES are kept (or the oldest kept
# chunk waited BACKLOG_AGE seconds): parsing each ~4 KiB read on its own, as it
# did whenever the relay found nothing waiting, cost 2.3 s of CPU per 100 MB of
# the looped real sessions against 0.7 in 16 KiB slices (Capture alone), most
# of it in what every parse does once per batch; bench/real_output.py, cw's
# own CPU per 100 MB 3.1-3.5 -> see the commit.
BATCH_BYTES = 1 << 14
BACKLOG_BYTES = 1 << 16
BACKLOG_AGE = 1.0  # seconds a kept chunk waits for step() at most while output trickles
_BUSY_PIECE = 256  # while an event is open, read on this much (to a line end) at a time
_CARRY_MAX = 1 << 16  # an unfinished line kept for the next batch, at most ...
_CARRY_KEEP = 512  # ... then only its end
_GAP = 1024  # places closer than this are read as one region (see _parse)
_SPANS = 32  # spans kept to recognise their redraws ...
_SPAN_MAX = 1 << 14  # ... of at most this many bytes
_SPANS_PER_LINE = 4
# A batch of which RawStarts' regions cover at least _DENSE (usage on every
# line: 97 %) is mostly read anyway: the next _DENSE_RUN batches are read whole
# (as with user patterns), without RawStarts and one region per batch; the
# batch after them is looked at again, so output that turns sparse is read
# whole for at most 7 x 16 KiB. Usage on every line, Capture alone: 3.55 ->
# 2.93 s per 100 MB (RawStarts 0.60 -> 0.07; 3 batches 3.01, 31 2.84); the
# real sessions, generated text and usage words never get there (1.3 % of
# the generated text is read, 0.3 % of the sessions).
_DENSE = 0.75
_DENSE_RUN = 7
# Output this dense with usage (batches read whole, see _DENSE) for this many
# bytes in a row hands the parse to a process of its own (parse_worker.py), in
# a capture made with offload=True (a wrapped run's): bench/parser_offload.py,
# usage on every line, 0.26 -> 0.36x script(1) on 2 cores. The real sessions
# and the generated text never get there (their dense batches come alone).
# With user patterns every line is read: there any output that comes without a
# pause (in full BATCH_BYTES slices) for this long hands over.
OFFLOAD_AFTER = 1 << 20
# preload(): claude has run this long before the modules load (see there).
# What they cost after claude had exited, `claude -p` on the real Claude Code
# (bench/real_claude.py): the parser ~9 ms at close() (its output was shorter
# than BATCH_BYTES), the transcript reader ~15 ms at the end of the run.
PRELOAD_SECONDS = 0.1


def _line_end(data: bytes, pos: int) -> int:
    """Just after the first CR or LF at or after ``pos``; ``len(data)`` if none.

    The first of the two is found, then the other only up to it: Claude Code
    ends its lines with CR and a cursor move, and a find() for LF went on to
    the end of the batch at every line read (bench/real_output.py's usage on
    every line, no LF in it: Capture alone 4.7 -> 4.6 s per 100 MB).
    """
    cr = data.find(b"\r", pos)
    lf = data.find(b"\n", pos, cr if cr >= 0 else len(data))
    if lf >= 0:
        return lf + 1
    return cr + 1 if cr >= 0 else len(data)


class Capture:
    """Feed it output chunks; it appends one record per new usage event.

    Chunks are kept and parsed in slices of BATCH_BYTES (a pty delivers ~4 KiB
    at a time; a slice costs a few calls whatever its size) when the relay has
    nothing else to do (step()), whenever the launcher reports the child idle,
    and at once when BACKLOG_BYTES are kept, so records never wait long. A
    feed() below that only appends: the relay, which calls it after every read,
    paces the child's output.
    """

    def __init__(self, *, session: str, journal: str | None = None,
                 user_patterns: list[UserPattern] | None = None,
                 attribution: dict[str, Any] | None = None, source: str = "pty",
                 write: bool = True, claude_session: str | None = None,
                 offload: bool = False) -> None:
        self.session = session
        # The Claude session this run continues (runner.resumed_session): what the
        # screen shows belongs to it unless the output names its own.
        self.claude_session = claude_session
        self.source = source
        self.attribution = attribution or {}
        self.records: list[UsageRecord] = []
        self._journal: LazyJournal | None = None
        if write:
            from claudewrap.store.lazy_journal import LazyJournal

            self._journal = LazyJournal(journal)
        self._user_patterns = user_patterns or []
        self._seen: set[tuple[Any, ...]] = set()
        self._batch: list[bytes] = []
        self._batch_size = 0
        self._batch_since = 0.0  # when the oldest kept chunk came (time.monotonic)
        # The parser's modules, loaded by a thread from the first output on
        # (see _load_parser); None before, then True once they are in.
        self._loading: Any = None
        self._closing = False  # close() has begun: a delayed preload() loads nothing
        # The start of a line not read yet (see _parse); while it is there, or
        # output was skipped, the scanner is out of step (not _in_sync).
        self._carry = b""
        self._in_sync = True
        self._whole = 0  # batches still to read whole (see _DENSE)
        # Spans read before, by their first line (see _parse, _remember).
        self._spans: dict[bytes, tuple[bytes, ...]] = {}
        self._scanner: Scanner | None = None
        self._matcher: Matcher | None = None
        # Lines the parser raised on (each cost only itself), and the first error.
        self._failed = 0
        self._first_failure = ""
        # Events dropped by matchers replaced after a failure (see Matcher.rejected).
        self._rejected_before = 0
        self._first_rejection: str | None = None
        # The parse handed to a process of its own (see OFFLOAD_AFTER): may it
        # be, how many bytes in a row were dense, and the process once it runs.
        self._offload = offload
        self._dense_run = 0
        self._worker: Worker | None = None

    def feed(self, chunk: bytes) -> None:
        # Called after every read, on the relay's critical path: only keep the
        # chunk. The work happens in step() and idle(), or here once the backlog
        # is full (output that never pauses); or in the parser's process.
        if self._worker is not None:
            self._worker.put(chunk)  # False once it stopped: close() says so
            return
        if not self._batch:
            self._batch_since = _monotonic()
        self._batch.append(chunk)
        self._batch_size += len(chunk)
        if self._loading is None and self._batch_size >= BATCH_BYTES:
            self._load_parser()
        if self._batch_size >= BACKLOG_BYTES:
            self.idle()

    def preload(self, modules: tuple[str, ...] = (), delay: float = PRELOAD_SECONDS) -> None:
        """Load the parser's modules, and ``modules`` (what the end of the run
        needs), in a thread from ``delay`` seconds on: while claude starts up
        (Claude Code takes ~300 ms), not after it has exited. A claude that
        ends sooner (``--version``, a failed start) loads nothing this way.
        Called once claude runs; the first BATCH_BYTES of output start the
        same thread, without the delay, if this was not called."""
        if self._loading is None:
            self._load_parser(modules, delay)

    def _load_parser(self, modules: tuple[str, ...] = (), delay: float = 0.0) -> None:
        """Import the parser's modules in a thread, once BATCH_BYTES of output
        came: 40-110 ms here, which held the relay (keystrokes too) at the
        first parse; a thread gives the GIL back often. step() waits for it;
        idle() and a full backlog import what is missing themselves (Python's
        import lock makes the two meet): less output than that, then a pause,
        loads them in idle() as before."""
        import sys
        import threading

        def load() -> None:
            if delay:
                import time

                time.sleep(delay)
                if self._closing:
                    return  # claude has ended: close() imports what it needs
            # Each system call of the relay gives the GIL up, and taking it back
            # waited for the loading thread's switch interval (5 ms): ~20 ms per
            # keystroke while it ran. A short interval while it runs.
            interval = sys.getswitchinterval()
            sys.setswitchinterval(min(interval, 0.0002))
            try:
                # The modules the first parse needs (a rewrite of the imports
                # once left this block empty, and they loaded at the first parse).
                import claudewrap.parse.patterns
                import claudewrap.parse.scanner
                import claudewrap.store.records  # noqa: F401

                for name in modules:
                    __import__(name)
            except Exception:  # noqa: BLE001,S110 - _parser() imports them again and reports it
                pass
            finally:
                sys.setswitchinterval(interval)

        self._loading = threading.Thread(target=load, name="claudewrap-parser", daemon=True)
        self._loading.start()

    def _loaded(self) -> bool:
        """True once the parser's modules are in (loaded by the thread, or by
        a parse that idle() made first)."""
        loading = self._loading
        if loading is True:
            return True
        if loading is None:
            if self._scanner is None:
                return False
        elif loading.is_alive():
            return False
        self._loading = True
        return True

    @property
    def backlog(self) -> int:
        """Bytes kept and not parsed yet that step() should parse now: 0 until
        BATCH_BYTES are kept or the oldest waited BACKLOG_AGE seconds (the
        relay's idle() parses them once output pauses), and while the parser's
        modules load (the relay calls step() while there are)."""
        size = self._batch_size
        if size < BATCH_BYTES and (not size or _monotonic() - self._batch_since < BACKLOG_AGE):
            return 0
        return size if self._loading is True or self._loaded() else 0

    def step(self) -> None:
        """Parse about BATCH_BYTES of what is kept (the oldest first); nothing
        while the parser's modules load."""
        if not self._loaded():
            return
        batch = self._batch
        if self._batch_size <= BATCH_BYTES or len(batch) == 1:
            self.idle()
            return
        size = 0
        k = 0
        while size < BATCH_BYTES:
            size += len(batch[k])
            k += 1
        data = batch[0] if k == 1 else b"".join(batch[:k])
        del batch[:k]
        self._batch_size -= size
        self._parse_safely(data)

    def _parser(self) -> tuple[Scanner, Matcher]:
        if self._scanner is None:
            from claudewrap.parse.scanner import Scanner

            self._scanner = Scanner()
        if self._matcher is None:
            from claudewrap.parse.patterns import Matcher

            self._matcher = Matcher(self._user_patterns)
        return self._scanner, self._matcher

    def idle(self) -> None:
        """Parse what has been kept so far."""
        if not self._batch:
            return
        data = self._batch[0] if len(self._batch) == 1 else b"".join(self._batch)
        self._batch.clear()
        self._batch_size = 0
        self._parse_safely(data)

    def _parse_safely(self, data: bytes) -> None:
        try:
            self._parse(data)
        except Exception as exc:  # noqa: BLE001 - a parser bug must not end capture
            self._failure(exc)
            self._scanner = None  # its state is unknown: a fresh one from the next batch
            self._carry = b""
            self._in_sync = True
        if self._dense_run >= OFFLOAD_AFTER and self._offload and self._worker is None:
            self._hand_over()

    def _hand_over(self) -> None:
        """Go on parsing in a forked copy of this capture (parse_worker.py),
        which takes what is kept and the journal with it; here feed() only
        hands reads on. Where it cannot start, parsing stays here."""
        self._offload = False  # once: a failed start is not tried again
        from claudewrap.wrap import parse_worker

        worker = parse_worker.start(self)  # the child parses on in there and exits
        if worker is None:
            return
        self._worker = worker
        self._batch = []
        self._batch_size = 0
        self._journal = None  # the child's now: it writes what it kept too

    def _parse(self, data: bytes) -> None:
        """Clean and match only the lines of ``data`` that can hold usage.

        The scanner reads a line only where patterns.RawStarts finds a
        keyword with its colon or a JSON brace (from the CR or LF before it to
        the one after it), and every line while a block, a Tokens line or JSON
        is open; the rest is skipped unread. What follows the last CR or LF
        waits (``_carry``) for the next batch, which may finish its keyword.
        With user patterns every line is read.
        Measured with bench/real_output.py (20 MB, medians of 3 rounds, 2 busy
        cores), parsing every batch that held a ":" or "{" -> this: the
        wrapper's own CPU per 100 MB 15.6 -> 5.0 s (real 2.1.197 session looped),
        15.7 -> 4.1 (2.1.332), 12.7 -> 5.5 (generated), 45.9 -> 32.7 (a usage
        line on every line); claudewrap/script 0.18 -> 0.44, 0.11 -> 0.49, 0.12
        -> 0.38, 0.05 -> 0.08 (ratios swing with the machine's load). Capture
        alone: 12 -> 60-90 MB/s on the looped sessions, of which skipping
        redrawn spans (_spans) 20 -> 60-90: their /cost and /usage panels come
        back every 14 KB there; text never seen before gains nothing from it.
        """
        from claudewrap.parse.patterns import RawStarts  # loaded by _parser() already

        scanner, matcher = self._parser()
        if self._carry:
            data = self._carry + data
            self._carry = b""
        n = len(data)
        pos = 0  # data[:pos] is dealt with
        starts: RawStarts | None = None
        span_at = -1  # where the span being read began (the matcher idle, the scanner reset)
        ahead = -1  # the next place RawStarts found, past the region read
        whole = self._whole > 0
        if whole:
            self._whole -= 1
            if not self._in_sync:  # data[0] begins a line (see _skip_to_end)
                scanner.reset()
                self._in_sync = True
        read = 0  # bytes of data the scanner was given
        while pos < n:
            if self._in_sync and scanner.pending:
                end = _line_end(data, pos)  # finish the line the scanner began
            elif whole or matcher.reads_all:
                end = n
            elif matcher.busy:
                end = _line_end(data, min(pos + _BUSY_PIECE, n))
            else:
                if starts is None:
                    starts = RawStarts(data)
                hit = ahead if ahead >= pos else starts.next(pos)
                if hit < 0:
                    self._skip_to_end(data, pos)
                    break
                start = max(data.rfind(b"\n", pos, hit), data.rfind(b"\r", pos, hit)) + 1
                start = max(start, pos)
                end = _line_end(data, hit)
                span = next((s for s in self._spans.get(data[start:end], ())
                             if data.startswith(s, start)), None)
                if span is not None:
                    # A redraw of a span read before (the /cost panel, a status
                    # line): from an idle matcher and a reset scanner the same
                    # bytes give the same events, all recorded already.
                    pos = start + len(span)
                    self._in_sync = False
                    continue
                # Places close together are read in one go: one call per
                # line cost more than the lines (a usage line on every line:
                # 2.4 -> 3.3 MB/s for Capture alone). Within _GAP = 1024, not
                # 512: a region costs ~20 us whatever its size (scanner,
                # matcher, records), ~1 KB of scanning; its spinner frames
                # (~450 B) cut each screen of usage on every line into 4
                # regions: 4.08 -> 3.67 s per 100 MB (Capture alone), the
                # generated text and the real sessions +-1 % (2048: generated +4 %).
                while end < n:
                    ahead = starts.next(end)
                    if ahead < 0 or ahead - end > _GAP:
                        break
                    end = _line_end(data, ahead)
                if start > pos or not self._in_sync:
                    # data[start] begins a line (after a CR or LF, or the carry's
                    # start, which is one): what lies before it is not needed.
                    scanner.reset()
                    self._in_sync = True
                    pos = start
                span_at = start
            lines = scanner.feed(data[pos:end] if pos or end < n else data)
            read += end - pos
            pos = end
            if lines:
                self._record(self._match(lines))
            if span_at >= 0 and not matcher.busy and data[end - 1:end] in (b"\n", b"\r"):
                self._remember(data, span_at, end)
                span_at = -1
        if starts is not None and read >= _DENSE * n >= _DENSE * BATCH_BYTES:
            self._whole = _DENSE_RUN
            self._dense_run += n
        elif n < BATCH_BYTES:
            self._dense_run = 0  # output paused before a slice was full: no flood
        elif whole or matcher.reads_all:
            # Read whole: a dense run, or user patterns, which read every line
            # (real Claude Code output: ~10x the parse of the built-ins alone).
            self._dense_run += n
        elif starts is not None:
            self._dense_run = 0

    def _remember(self, data: bytes, start: int, end: int) -> None:
        """Keep data[start:end], a span read from an idle matcher to an idle
        matcher, under its first line (see _parse)."""
        if end - start > _SPAN_MAX or self._failed:
            return
        first = data[start:_line_end(data, start)]
        if len(self._spans) >= _SPANS and first not in self._spans:
            del self._spans[next(iter(self._spans))]  # the oldest
        # Panels that begin alike (/cost and /usage) are kept side by side.
        self._spans[first] = (data[start:end], *self._spans.get(first, ())[:_SPANS_PER_LINE - 1])

    def _skip_to_end(self, data: bytes, pos: int) -> None:
        """Nothing in data[pos:] can start an event: keep only its last line.

        data[pos] begins a line, or continues none the scanner holds (_parse
        finished that one first), so the scanner can start over from the carry.
        """
        cut = max(data.rfind(b"\n", pos), data.rfind(b"\r", pos)) + 1
        carry = data[max(cut, pos):]
        if len(carry) > _CARRY_MAX:
            # A line this long (a TUI that only moves the cursor): what can
            # start an event ends in its last bytes; start them at an escape.
            carry = carry[-_CARRY_KEEP:]
            esc = carry.find(b"\x1b")
            carry = carry[esc:] if esc >= 0 else carry
        self._carry = carry
        self._in_sync = False

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
        from claudewrap.store.records import UsageRecord

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
        self._closing = True
        if self._worker is not None:
            return self._close_worker(self._worker)
        self.idle()
        if self._scanner is not None and self._matcher is not None:
            try:
                if self._carry:  # the last line, unfinished: read it all the same
                    self._scanner.reset()
                    self._record(self._matcher.feed(self._scanner.feed(self._carry)))
                    self._carry = b""
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
        return _closing_line(warning, notes)

    def _close_worker(self, worker: Worker) -> str | None:
        """close() once the parse went to a process: its records join ours,
        its closing line is ours, with a note if it stopped before the end."""
        from claudewrap.wrap.parse_worker import OFFLOAD_NOTE

        self._worker = None
        report = worker.finish()
        warning = None
        if report is not None:
            records, warning = report
            self.records.extend(records)
        return _closing_line(warning, [OFFLOAD_NOTE.format(worker.stopped)] if worker.stopped else [])


def _closing_line(warning: str | None, notes: list[str]) -> str | None:
    """The journal writer's ``warning`` line (or None) with ``notes`` added."""
    if not notes:
        return warning
    return (warning + "; " if warning else "claudewrap: ") + "; ".join(notes)
