"""What a usage line looks like: built-in patterns and user patterns -> UsageEvent.

:class:`Matcher` reads clean text lines (see scanner.py) and returns the
:class:`~claudewrap.store.records.UsageEvent` objects they describe. It knows:

``seed-tokens``, ``seed-usage``, ``seed-cost``
    ``Tokens: 1234 input, 5678 output`` (a delta; a ``Cost: $x`` line right
    after it adds its cost to the same event), ``Usage: $0.05 (1234 tokens)``
    (a delta; the total token count is counted as input tokens, because the
    split is not printed) and ``Cost: $0.075`` alone on its line (a cost-only
    delta).
``cost-block``
    Claude Code's ``/cost`` (``/usage``) block in all its forms: ``Total cost:``
    or ``Estimated cost:``, and the rows under ``Usage by model:`` / ``Token
    usage by model:``. One ``total`` event per model row, always
    ``approximate`` (the block prints rounded numbers); a block without rows
    gives one ``total`` event with ``model=None`` and the cost.
``p-json``, ``stream-json``
    The ``result`` object of ``claude -p --output-format json`` (one line, or
    pretty-printed over many) and the ``result`` line of ``stream-json``:
    exact ``total`` events, one per model of ``modelUsage``.
``user:<name>``
    Patterns from the user's config file (see :func:`load_user_patterns`),
    run with a time limit on lines of at most USER_LINE_MAX characters; one
    that runs out of time is switched off (see USER_BUDGET).

The one place where printed numbers are parsed is :func:`parse_count` and
:func:`parse_cost`; the one place where model names are normalised is
:func:`normalise_model`. What claude shows includes files, logs and web pages,
so every line is untrusted: a number that no record can hold (records.py,
MAX_TOKENS) does not parse, a JSON result is read within bounds, and an event
that still cannot be a record is dropped and counted (:attr:`Matcher.rejected`),
never raised.

A redraw that prints the same block again gives the same events again; the
caller drops repeats by ``(session, UsageEvent.values_key())``.
"""

from __future__ import annotations

import gc
import json
import re
import sys
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from itertools import accumulate
from typing import Any

from claudewrap.plain import plain
from claudewrap.store.config import (
    CONFIG_ENV,
    NUMERIC_GROUPS,
    USER_GROUPS,
    PatternError,
    UserPattern,
    default_config_path,
    load_user_patterns,
)
from claudewrap.store.records import MAX_TOKENS, UsageEvent, cost_value, count_value

__all__ = [
    "CONFIG_ENV",
    "USER_GROUPS",
    "Matcher",
    "PatternError",
    "UserPattern",
    "default_config_path",
    "load_user_patterns",
    "normalise_model",
    "parse_cost",
    "parse_count",
]


_JSON_MAX_CHARS = 1 << 20  # never hold more than ~1 MB of a JSON object
_JSON_MAX_LINES = 20000
_JSON_PIECE = 1000  # a line this long may have been cut by the scanner: the next continues it


# --- numbers and names ------------------------------------------------------

_COUNT = r"\d[\d,]*(?:\.\d+)?[km]?"
_COST = r"\d[\d,]*(?:\.\d+)?|\.\d+"
_COUNT_FULL_RE = re.compile(r"(\d[\d,]*(?:\.\d+)?|\.\d+)\s*([kmb]?)", re.IGNORECASE)
_COST_FULL_RE = re.compile(r"(?:US)?\$?\s*(\d[\d,]*(?:\.\d+)?|\.\d+)", re.IGNORECASE)
_MULTIPLIERS = {"": 1, "k": 1000, "m": 1000_000, "b": 1000_000_000}


def parse_count(text: str) -> tuple[int, bool]:
    """A printed token count and whether it was rounded.

    ``"1,234"`` -> ``(1234, False)``; ``"1.2k"`` -> ``(1200, True)``;
    ``"2.0m"`` -> ``(2000000, True)``. Raises ValueError for anything else,
    and for a count above what one record holds (``999…k``).
    """
    m = _COUNT_FULL_RE.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not a token count: {text!r}")
    try:
        number = Decimal(m.group(1).replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"not a token count: {text!r}") from None
    suffix = m.group(2).lower()
    value = number * _MULTIPLIERS[suffix]
    if value > MAX_TOKENS:  # before int(): 400 nines and a "k" make no record
        raise ValueError(f"not a plausible token count: {_clip(text)}")
    whole = int(value.to_integral_value(rounding=ROUND_HALF_UP))
    return whole, bool(suffix) or whole != value


def parse_cost(text: str) -> float:
    """A printed dollar amount: ``"$0.55"``, ``"0.0298"``, ``"$1,234.50"``.

    Raises ValueError for anything else, and for an amount above what one
    record holds (``$`` and 400 nines is not Infinity dollars).
    """
    m = _COST_FULL_RE.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not a cost: {_clip(text)}")
    try:
        return cost_value(float(m.group(1).replace(",", "")))
    except ValueError:
        raise ValueError(f"not a plausible cost: {_clip(text)}") from None


def _clip(text: str) -> str:
    """``text`` for a message, at most about 40 characters of it."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


_MODEL_DECORATION_RE = re.compile(r"\s*\[[^\]]*\]\s*$")


def normalise_model(name: str) -> str:
    """A model name as reported, without decoration: ``claude-opus-4-8[1m]`` -> ``claude-opus-4-8``."""
    return _MODEL_DECORATION_RE.sub("", name.strip()).lower()


# --- user patterns ----------------------------------------------------------

# A user's regex may backtrack for minutes on one line (nested repeats such as
# (a|aa)+), and the relay waits while a batch is parsed (issue 13). So user
# patterns run in the `regex` package, whose searches take a time limit; they
# never see a line longer than USER_LINE_MAX; and a pattern that needs more
# than its share of USER_BUDGET on one batch is switched off for the session
# (UserPattern.switched_off says why; the run prints it at the end).
# Measured on 64 KiB of words and numbers: a plain pattern reads it in 1-2 ms,
# one that tries at every digit ((?P<input>\d+)\s+tokens) in 4-7 ms (as with
# re); (a|aa)+$ on 30 a's and a b is cut off at its share instead of minutes.
USER_LINE_MAX = 4096
USER_BUDGET = 0.05  # seconds of CPU per USER_BUDGET_CHARS of output, all user patterns
USER_SHARE_MIN = 0.01  # ... but at least this much for each (many patterns)
USER_BUDGET_CHARS = 1 << 16
# Matches skipped on lines already read before a search starts again at the next line.
_SKIP_LIMIT = 8


@plain
class _UserRegex:
    """A user pattern as the parser runs it, compiled by `regex` (which has no
    type hints): ``line`` searches one line; ``batch`` (MULTILINE, string
    anchors made line anchors) searches a batch of lines joined by newlines.
    ``peeks``: it has look-arounds, which in a batch see the next or previous
    line, so its batch matches are checked on their line alone."""

    pattern: UserPattern
    line: Any
    batch: Any
    peeks: bool


def _compile_user(patterns: Sequence[UserPattern]) -> list[_UserRegex]:
    """The patterns still in use, compiled to run with a time limit; one that
    the `regex` package does not take is switched off."""
    live = [p for p in patterns if not p.switched_off]
    if not live:
        return []
    try:
        import regex  # only with user patterns; config.py checked them with re at start-up
    except ImportError:  # a dependency, but an install can lose it
        for pattern in live:
            _switch_off(pattern, "the regex package, which runs it with a time limit, is"
                                 " missing", fix="install it (pip install regex)")
        return []

    compiled = []
    for pattern in live:
        source = pattern.regex.pattern
        flags = regex.V0 | regex.IGNORECASE  # as config.py compiles it
        try:
            line = regex.compile(source, flags)
            batch = regex.compile(_batch_source(source), flags | regex.MULTILINE)
        except (regex.error, ValueError) as exc:
            _switch_off(pattern, f"cannot run it with a time limit ({_one_line(exc)})")
            continue
        peeks = any(look in source for look in ("(?=", "(?!", "(?<=", "(?<!"))
        compiled.append(_UserRegex(pattern, line, batch, peeks))
    return compiled


def _batch_source(source: str) -> str:
    r"""``source`` to search lines joined by newlines: ``\A`` and ``\Z`` (the
    line's start and end when it is searched alone) become ``^`` and ``$``."""
    return re.sub(r"(?<!\\)((?:\\\\)*)\\([AZ])",
                  lambda m: m.group(1) + ("^" if m.group(2) == "A" else "$"), source)


def _switch_off(pattern: UserPattern, why: str, fix: str = "simplify its regex") -> None:
    where = f" ({pattern.where})" if pattern.where else ""
    pattern.switched_off = (f"pattern {pattern.name!r}{where} is off for the rest of this"
                            f" session: {why}; {fix}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:100]


def _user_matches(users: list[_UserRegex], batch: list[str]
                  ) -> tuple[dict[int, list[UsageEvent]], list[_UserRegex]]:
    """The events the user patterns find in ``batch`` (by line index), and the
    patterns that needed more than their share of the budget (now switched off;
    what they found before counts)."""
    lines = [line if len(line) <= USER_LINE_MAX else "" for line in batch]
    text = "\n".join(lines)
    starts = list(accumulate((len(line) + 1 for line in lines), initial=0))
    share = max(USER_BUDGET / len(users), USER_SHARE_MIN) * max(1.0, len(text) / USER_BUDGET_CHARS)
    found: dict[int, list[UsageEvent]] = {}
    slow = []
    # A pattern pays for its own work only: a collection of a big heap (as the
    # tests leave) took 4-10 ms in the middle and switched off plain patterns.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for user in users:
            deadline = time.process_time() + share  # the clock `regex` checks its timeout with
            try:
                for i, m in _user_search(user, lines, text, starts, deadline):
                    event = _user_event(user.pattern, m)
                    if event is not None:
                        found.setdefault(i, []).append(event)
                    _left(deadline)  # reading the numbers counts too
            except TimeoutError:
                _switch_off(user.pattern, f"it took over {share * 1000:.0f} ms of CPU for"
                                          f" {len(text):,} characters of output (nested"
                                          " repeats such as (a|aa)+ can take minutes on one"
                                          " line)")
                slow.append(user)
    finally:
        if collecting:
            gc.enable()
    return found, slow


def _user_search(user: _UserRegex, lines: list[str], text: str, starts: list[int],
                 deadline: float) -> Iterator[tuple[int, Any]]:
    """``user``'s first match on each line of ``lines`` that has one, with the
    line's index; ``text`` is the lines joined, ``starts`` where each begins.
    TimeoutError once ``deadline`` (process CPU time) has passed.

    One search goes through the batch; a match that lies within its line is
    that line's match. Where a match runs over into the next lines, or the
    pattern looks around, the lines concerned are searched alone.
    """
    done = -1  # the lines up to this one are read
    pos = 0
    while pos <= len(text):
        skipped = 0
        for m in user.batch.finditer(text, pos, timeout=_left(deadline)):
            i = bisect_right(starts, m.start()) - 1
            if i <= done:
                skipped += 1
                # Go on at the next line after many matches on lines read, or one
                # that ran into the next line (hiding that line's own match).
                if skipped > _SKIP_LIMIT or m.end() > starts[done + 1]:
                    break
                continue
            skipped = 0
            if m.end() < starts[i + 1] and not user.peeks:
                yield i, m
                done = i
                continue
            last = max(i, bisect_right(starts, m.end() - 1) - 1)
            for k in range(i, last + 1):
                if lines[k]:
                    alone = user.line.search(lines[k], timeout=_left(deadline))
                    if alone is not None:
                        yield k, alone
            done = last
        else:
            return
        pos = starts[done + 1]


def _left(deadline: float) -> float:
    """Seconds of CPU left before ``deadline``; TimeoutError when none are."""
    left = deadline - time.process_time()
    if left <= 0:
        raise TimeoutError
    return left


def _user_event(pattern: UserPattern, m: Any) -> UsageEvent | None:
    """The event of one user-pattern match (a `regex` match); None when its
    numbers do not parse."""
    groups = {k: v for k, v in m.groupdict().items() if v is not None}
    if not groups.keys() & set(NUMERIC_GROUPS):
        return None
    event = UsageEvent(kind=pattern.kind, pattern=f"user:{pattern.name}")
    try:
        for group, attr in (
            ("input", "input_tokens"),
            ("output", "output_tokens"),
            ("cache_read", "cache_read_tokens"),
            ("cache_write", "cache_write_tokens"),
        ):
            if group in groups:
                value, rounded = parse_count(groups[group])
                setattr(event, attr, value)
                event.approximate = event.approximate or rounded
        if "cost" in groups:
            event.cost_usd = parse_cost(groups["cost"])
    except ValueError:
        return None
    if groups.get("model", "").strip():
        event.model = normalise_model(groups["model"])
    return event


# --- built-in patterns --------------------------------------------------------

_I = re.IGNORECASE
# One cheap test for "this line could start something": a colon after one of
# our keywords (or a JSON object at the start of a line, see _next_hit).
# Starting with the literal ":" lets the regex engine skip ahead fast; the
# look-behinds are fixed-width, hence one per spelling.
_PREFILTER_RE = re.compile(
    ":(?:" + "|".join(
        f"(?<={word}{space}:)" for word in ("cost", "tokens", "usage", "model")
        for space in ("", " ")
    ) + ")",
    _I,
)

# Where in terminal bytes a line the built-in patterns start on can be, found
# without cleaning the text (issue 14: Claude Code prints ":" and "{" on most
# lines, so looking for those bytes alone skipped almost nothing): one of the
# _PREFILTER_RE keywords (bytes.lower() + bytes.find, memchr speed) followed by
# its colon, with only escapes, controls and blanks between (what the scanner
# drops or makes blanks); or a "{" that only escapes and controls separate
# from a line end (a JSON line). A keyword with an escape inside it ("co" SGR
# "st") is not found: no renderer colours half a word of these labels.
# The looped real sessions of bench/real_output.py hold ~4 such places per
# 14 KB; the 2.1.332 one was parsed at 12 MB/s before, see Capture._parse.
_RAW_KEYWORDS = (b"cost", b"tokens", b"usage", b"model")
_RAW_ESCAPE = (rb"\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
               rb"|\x1b[\x20-\x2f]*[\x30-\x7e]?|[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
# What must follow a keyword's colon (after escapes and blanks) for a built-in
# pattern to start there: a count after "Tokens:", "$" after "Usage:", "$" or
# a number after "Cost:" (see _SEED_*_RE, _BLOCK_COST_RE); "Model:" ends
# "Usage by model:", which opens a block by itself. Prose that names them ("the
# tokens: ...", a menu's "Cost: unknown", bench/passthrough.py's words on every
# line) is then skipped unread: Capture alone 4.6 -> 1.1 s per 100 MB of those
# words. The patterns' \s and \d take Unicode blanks and digits
# too, and the scanner drops C1 controls: _RAW_UNICODE holds the UTF-8 starts
# of all of them (tests/test_capture_slices.py checks it against every code
# point), and not those of accented letters or box drawing.
_RAW_UNICODE = (rb"[\xd9\xdb\xdf\xe0\xe1\xea\xef-\xf4]|\xc2[\x80-\xa0]"
                rb"|\xe2\x80[\x80-\x8a\xa8\xa9\xaf]|\xe2\x81\x9f|\xe3\x80\x80")
_RAW_AFTER = {b"cost": rb"[0-9$.]|" + _RAW_UNICODE, b"tokens": rb"[0-9]|" + _RAW_UNICODE,
              b"usage": rb"[$]|" + _RAW_UNICODE, b"model": b""}
# After the colon each escape is read whole, as the scanner reads it (the
# look-ahead and back-reference make it atomic): "Cost:" CSI "1C" "unknown"
# (Claude Code's space between words) must not count the "1" as a number.
_RAW_AFTER_COLON = {word: rb"(?:" + _RAW_ESCAPE + rb"|[ \t])*:"
                    + (rb"(?:(?=(?P<e>" + _RAW_ESCAPE + rb"))(?P=e)|[ \t])*(?:" + after + rb")"
                       if after else b"")
                    for word, after in _RAW_AFTER.items()}
# One search per keyword over the lowered batch: a pattern that starts with a
# literal is looked for by the regex engine's own fast search, and only a
# keyword followed by its colon becomes a match, so no Python code runs per
# keyword without one (Claude Code prints ~2 of them per KB: "usage" and
# "model" in its status bar and menus). The escape classes hold the same bytes
# lowered or not, so the lowered batch matches where the raw one would.
# bench/real_output.py's looped sessions: 0.55-0.95 -> 0.41-0.60 s per 100 MB.
# A match is the keyword alone (a look-ahead checks the colon): the next search
# goes on right after it, as a find() after each keyword would.
_RAW_KEYWORD_RES = tuple(re.compile(word + rb"(?=" + _RAW_AFTER_COLON[word] + rb")")
                         for word in _RAW_KEYWORDS)
# The same test at one place, in any case (for the places found from colons).
_RAW_PLACE_RES = tuple(re.compile(word + rb"(?=" + _RAW_AFTER_COLON[word] + rb")", re.IGNORECASE)
                       for word in _RAW_KEYWORDS)
# The same places found from their colons, in the batch reversed: one search
# whose first byte is a literal ":" (the engine's own fast search), and an
# attempt per colon (Claude Code prints ~1-2.5 per KB, and ~2 keywords per KB
# without one). A match is colon, escapes and blanks, a keyword, read
# backwards; a place is where its keyword starts. It gives every place the
# keyword searches give, unless a keyword lies in an OSC string ("ESC ] ...":
# the only escape that holds letters) inside a match, or an OSC string holds a
# match's keyword: then two keywords can share a colon and one match hides the
# other, so RawStarts searches that batch the other way.
# bench/real_output.py's looped sessions, found per 64 KiB: 0.64 -> 0.45 s per
# 100 MB (2.1.332), 0.78 -> 0.28 (2.1.197), generated text 0.52 -> 0.49; a
# usage line on every line (7 colons per KB) 0.76 -> 0.92, of ~25.
# An OSC string read backwards: its end (BEL, ST or none), its body, "]" ESC.
# The body holds no ESC, so the "]" can only be the byte before the first ESC:
# where Python has possessive repeats (3.11) the body is taken whole and the
# "]" checked behind it, instead of giving the body back a byte at a time
# looking for one, which it did at every colon after a run of prose (the
# byte before a body is never "]": a colon, blank, control, ESC or BEL).
# Per 100 MB, the reversed search alone: 0.122 -> 0.110 (real 2.1.332),
# 0.065 -> 0.054 (2.1.197), 0.138 -> 0.121 (generated text).
_RAW_OSC_REVERSED = (rb"(?:\x07|\\\x1b)?[^\x07\x1b]*+(?<=\])\x1b" if sys.version_info >= (3, 11)
                     else rb"(?:\x07|\\\x1b)?[^\x07\x1b]*\]\x1b")
_RAW_ESCAPE_REVERSED = (
    rb"[\x40-\x7e]?[\x20-\x2f]*[\x30-\x3f]*\[\x1b|" + _RAW_OSC_REVERSED
    + rb"|[\x30-\x7e]?[\x20-\x2f]*\x1b|[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
_RAW_REVERSED_RE = re.compile(
    rb":(?:" + _RAW_ESCAPE_REVERSED + rb"|[ \t])*(?:"
    + b"|".join(b"(" + word[::-1] + b")" for word in _RAW_KEYWORDS) + rb")", re.IGNORECASE)
# Where the first _RAW_SAMPLE bytes hold more than _RAW_COLONS colons per KiB,
# the keyword searches are used. The real sessions have 0.9 and 2.4 per KB on
# average, but a quarter of 2.1.332's 64 KiB batches had more than 3 in their
# first 8 KiB (its /cost panel): 5, not 3, per 100 MB of each payload of
# bench/real_output.py, _keyword_places alone: real 2.1.332 0.20 -> 0.17 s,
# 2.1.197 0.11 and generated text 0.26 as before (3.6 per KB: the two ways
# cost the same there), usage on every line 0.39 as before (7.3 per KB: from
# its colons, 0.52).
_RAW_SAMPLE = 8192
_RAW_COLONS = 5 * 8
_RAW_LINE_START_RE = re.compile(
    rb"(?:^|[\n\r\x0b\x0c]|\x1b\[[0-9;]*[HfABEFdJ]|\x1b\[[01]?G|\x1b[DEM8c])"
    rb"(?:" + _RAW_ESCAPE + rb")*\Z")
_RAW_LEAD = 64  # bytes before a "{" looked at for its line start (fewer: taken as one)
# The same test read backwards from the "{": match() on the bytes before it
# reversed (the escapes as in _RAW_REVERSED_RE) tries once from the brace,
# where search() tried at each of the 64 places before it. Every alternative
# is the exact reversal of _RAW_LINE_START_RE's (\Z: the window's start), and
# a backtracking match finds a parse whenever one exists, so both say the
# same (tests/test_raw_starts_reversed.py). 2.1 -> 0.6 us per "{" that no
# line end precedes: bench/real_output.py's generated text has ~1 per KB,
# RawStarts 0.48 -> 0.35 s per 100 MB (Capture alone 0.64 -> 0.51).
_RAW_LINE_START_REVERSED_RE = re.compile(
    rb"(?:" + _RAW_ESCAPE_REVERSED + rb")*"
    rb"(?:\Z|[\n\r\x0b\x0c]|[HfABEFdJ][0-9;]*\[\x1b|G[01]?\[\x1b|[DEM8c]\x1b)")


def _keyword_places(raw: bytes) -> list[int]:
    """Where in ``raw`` a keyword starts that only escapes, controls and
    blanks separate from a colon, and that from what its patterns need next
    (_RAW_AFTER), in order (see _RAW_REVERSED_RE)."""
    n = len(raw)
    if raw.count(b":", 0, _RAW_SAMPLE) * _RAW_SAMPLE > _RAW_COLONS * min(n, _RAW_SAMPLE):
        return _keyword_places_forwards(raw)  # colons are dense: an attempt at each costs more
    matches = _RAW_REVERSED_RE.finditer(raw[::-1])
    # A keyword found from its colon is a place when what follows the colon
    # can start a number (one match per keyword and colon: they are few where
    # colons are sparse). It is checked from the keyword on, by every way the
    # escapes can be read: the colon the reversed match took may not be it.
    check = _RAW_PLACE_RES
    if b"\x1b]" not in raw:  # no OSC string: no match hides another
        places = [start for m in matches
                  if check[(m.lastindex or 1) - 1].match(raw, start := n - m.end())]
        places.reverse()
        return places
    places = []
    for m in matches:
        start = n - m.end()  # the keyword's
        # An OSC string inside the match, or one its keyword is in (the last
        # ESC before it starts one and no BEL ended that): search forwards.
        esc = raw.rfind(b"\x1b", 0, start)
        if (raw.find(b"\x1b]", start, n - m.start()) >= 0
                or (esc >= 0 and raw.startswith(b"\x1b]", esc)
                    and raw.find(b"\x07", esc, start) < 0)):
            return _keyword_places_forwards(raw)
        if check[(m.lastindex or 1) - 1].match(raw, start):
            places.append(start)
    places.reverse()
    return places


def _keyword_places_forwards(raw: bytes) -> list[int]:
    """What _keyword_places gives, by one search per keyword (_RAW_KEYWORD_RES)."""
    lowered = raw.lower()
    places: list[int] = []
    for keyword in _RAW_KEYWORD_RES:
        places += [k.start() for k in keyword.finditer(lowered)]
    places.sort()
    return places


class RawStarts:
    """The places in ``raw`` (terminal bytes that start on a line start) that
    may start a built-in event (see _RAW_KEYWORDS), found in order.

    All of a batch's places are found at once, by one substring search per
    keyword occurrence (memchr speed) and a regex only where one is: a Python
    loop per call over the keywords' next places (sorted at each call) was
    most of the parser's time on real Claude Code output (bench/real_output.py:
    ~35 keywords without a colon per 15 KB of its sessions).
    """

    __slots__ = ("_at", "_places")

    def __init__(self, raw: bytes) -> None:
        places = _keyword_places(raw)
        k = raw.find(b"{")
        if k >= 0:
            line_start = _RAW_LINE_START_REVERSED_RE.match
            while k >= 0:
                before = raw[k - 1:k]
                if (not before or before in b"\n\r\x0b\x0c"
                        or line_start(raw[k - 1:k - _RAW_LEAD - 1:-1] if k > _RAW_LEAD
                                      else raw[k - 1::-1])):
                    places.append(k)
                k = raw.find(b"{", k + 1)
        places.sort()
        self._places = places
        self._at = 0

    def next(self, pos: int) -> int:
        """The first place at or after ``pos``, or -1."""
        places = self._places
        i = self._at
        if i < len(places) and places[i] < pos:
            i = bisect_left(places, pos, i)
            self._at = i
        return places[i] if i < len(places) else -1


_SEED_TOKENS_RE = re.compile(
    rf"\btokens\s*:\s*(?P<input>{_COUNT})\s*input\s*,?\s*(?P<output>{_COUNT})\s*output\b", _I
)
_SEED_USAGE_RE = re.compile(
    rf"\busage\s*:\s*\$\s*(?P<cost>{_COST})\s*\(\s*(?P<tokens>{_COUNT})\s*tokens?\s*\)", _I
)
# "alone on its line": only decoration (borders, the ⎿ elbow, bullets) around it.
_SEED_COST_RE = re.compile(rf"^[\W_]*cost\s*:\s*\$?\s*(?P<cost>{_COST})[\s│|]*$", _I)

# Not followed by more digits after a gap: a renderer that redraws only the
# cells that changed turns "$0.1234" over "$0.1034" into "$0.1", a jump, "34";
# better no record than a wrong one.
_BLOCK_COST_RE = re.compile(
    rf"\b(?:total|estimated)\s+cost\s*:\s*\$\s*(?P<cost>{_COST})(?![\d.,]|\s+\d)", _I)
_BLOCK_MODELS_RE = re.compile(r"\busage\s+by\s+model\s*:", _I)
# A model row: the name (whatever precedes the colon, after decoration such as
# ⎿ or │), then counts; or only the first count (and part of its word) where the
# row was wrapped right after it.
_BLOCK_ROW_RE = re.compile(
    rf"^[\W_]*?(?P<model>[a-z0-9][^:]*?)\s*:\s+"
    rf"(?P<rest>{_COUNT}(?:\s+(?:input|output|cache)\b.*|(?:\s+[ioc][a-z]*)?$))",
    _I,
)
# What a row holds, as Claude Code prints it (its cost tracker: "N input, N output,
# N cache read, N cache write[, N web search] ($x)"; 0.2.x without the cost). A
# row must read exactly so: a renderer that redraws only the cells that changed
# leaves gaps ("inp t", "1 5k", "$15.9 )"), and a row wrapped onto the next line
# stops short ("…, 469.1k", "cache w"); neither gives a number.
_ROW_WHAT = r"input|output|cache\s+(?:read|write|creation)|web\s+search(?:es)?(?:\s+requests?)?"
_ROW_ITEM = rf"{_COUNT}\s+(?:{_ROW_WHAT})\b"
_ROW_BODY_RE = re.compile(
    rf"(?P<items>{_ROW_ITEM}(?:\s*,\s*{_ROW_ITEM})*)"
    rf"(?:\s*\(\$(?P<cost>{_COST})\)(?:\s.*)?|[\s│|]*)",
    _I,
)
_ROW_ITEM_RE = re.compile(rf"(?P<n>{_COUNT})\s+(?P<what>{_ROW_WHAT})\b", _I)
# Where a row ends and the next begins on one line: a screen line exactly as wide
# as the window was joined to the next one (see scan.py), which was a row of its own.
_ROW_SPLIT_RE = re.compile(
    rf"(?:(?<=\))|(?<=write))\s+(?=[a-z0-9][\w.\-]*(?:\[[^\]]*\])?\s*:\s+{_COUNT}\s+"
    rf"(?:input|output|cache)\b)",
    _I,
)
# Decoration around a continuation line or at the end of a cut row (a dialog border).
_ROW_EDGE = " \t│|"
# Lines of a /cost block that carry nothing we record.
_BLOCK_MEMBER_RE = re.compile(
    r"total\s+duration|total\s+code\s+changes|prompt\s+cache|to\s+switch|esc\s+to\s+close"
    r"|^[\W_]*session[\W_]*$|^[\s\u2500-\u257f\u23bf|]*$",
    _I,
)
_ROW_FIELDS = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cache read": "cache_read_tokens",
    "cache write": "cache_write_tokens",
    "cache creation": "cache_write_tokens",
}

_JSON_PRETTY_LINE_RE = re.compile(
    r'\s*(?:"(?:[^"\\]|\\.)*"\s*:\s*)?'
    r'(?:[{\[]|[}\]]|\{\}|\[\]|"(?:[^"\\]|\\.)*"|-?\d[\d.eE+\-]*|true|false|null)?\s*,?'
)
_STREAM_HINT_RE = re.compile(r'\{\s*"type"\s*:\s*"(?:system|assistant|user|stream_event)"')


_UNREAD: Any = object()
_FRESH_KEEP = 4096
_FRESH_CHARS = 512


def _fresh_outcome(line: str) -> tuple[str, Any] | None:
    """What ``line`` starts when no event is open: ("block", its cost or None),
    ("pending", a Tokens line's event as keywords), ("event", an event as
    keywords), or None. A function of the line alone (see Matcher._fresh)."""
    m = _BLOCK_COST_RE.search(line)
    if m is not None:
        return "block", _cost_or_none(m.group("cost"))
    if _BLOCK_MODELS_RE.search(line):
        return "block", None
    m = _SEED_TOKENS_RE.search(line)
    if m is not None:
        try:
            inp, r1 = parse_count(m.group("input"))
            outp, r2 = parse_count(m.group("output"))
        except ValueError:
            return None
        return "pending", {"kind": "delta", "input_tokens": inp, "output_tokens": outp,
                           "approximate": r1 or r2, "pattern": "seed-tokens"}
    m = _SEED_USAGE_RE.search(line)
    if m is not None:
        try:
            tokens, rounded = parse_count(m.group("tokens"))
            cost = parse_cost(m.group("cost"))
        except ValueError:
            return None
        return "event", {"kind": "delta", "input_tokens": tokens, "cost_usd": cost,
                         "approximate": rounded, "pattern": "seed-usage"}
    m = _SEED_COST_RE.search(line)
    if m is not None:
        cost_only = _cost_or_none(m.group("cost"))
        if cost_only is not None:
            return "event", {"kind": "delta", "pattern": "seed-cost", "cost_usd": cost_only}
    return None


@plain
class _Block:
    """A /cost block being read: its cost line and its rows by printed model name.

    ``last`` is the row read last (its printed name, its text, its event or None
    while it does not read as a whole row) while the next line may still
    continue it: Claude Code wraps a row that is wider than the
    terminal onto the next line, and a scrollback shows a row wider than the
    window on two lines. ``lost`` says a row could not be read.
    """

    cost: float | None
    rows: dict[str, UsageEvent]
    last: tuple[str, str, UsageEvent | None] | None = None
    lost: bool = False


def _next_json_line(joined: str, pos: int) -> int:
    """Where the first line at or after ``pos`` in ``joined`` that starts with a
    "{" starts, or -1."""
    if joined.startswith("{", pos):
        return pos
    k = joined.find("\n{", pos)
    return k + 1 if k >= 0 else -1


class Matcher:
    """Finds usage in a stream of clean lines; keeps multi-line state between calls."""

    def __init__(self, user_patterns: Sequence[UserPattern] = ()) -> None:
        self._user_patterns = list(user_patterns)
        self._user = _compile_user(self._user_patterns)
        self._user_at: list[int] = []  # where the lines user patterns matched start, in feed()
        self._builtin_hit: int | None = None  # see _next_hit
        self._brace: int | None = None  # the next JSON line's start in feed(), -1: none
        self._pending: UsageEvent | None = None  # a Tokens line waiting for its Cost line
        # Events of feed()'s ``out`` known to be plausible (see _fresh), and
        # whether the pending one is (its cost, when a Cost line adds one,
        # comes from parse_cost, which holds it to the same bounds).
        self._vetted = 0
        self._pending_vetted = False
        self._block: _Block | None = None
        self._json: list[str] | None = None  # lines of a JSON object being read
        self._json_chars = 0
        self._stream = False  # seen stream-json lines: results are "stream-json"
        self._outcomes: dict[str, tuple[str, Any, bool] | None] = {}  # see _fresh
        # Events dropped because no record can hold them, and why the first was.
        self.rejected = 0
        self.first_rejection: str | None = None

    @property
    def busy(self) -> bool:
        """True while a multi-line event (a Tokens line, a block, JSON) is open."""
        return self._pending is not None or self._block is not None or self._json is not None

    @property
    def reads_all(self) -> bool:
        """True when every line must be read: user patterns can match anything;
        otherwise only what RawStarts finds can start an event."""
        return bool(self._user)

    def feed(self, lines: Iterable[str]) -> list[UsageEvent]:
        """The events that ``lines`` complete."""
        batch = lines if isinstance(lines, list) else list(lines)
        out: list[UsageEvent] = []
        self._vetted = 0
        if self._user:
            self._feed_all(batch, out)
        else:
            self._feed_builtin(batch, out)
        # Checked already when every event is one _fresh read from a line
        # (bench/real_output.py's usage on every line: 34,000 events per 8 MB).
        return out if len(out) == self._vetted else self._plausible(out)

    def _feed_all(self, batch: list[str], out: list[UsageEvent]) -> None:
        """feed() with user patterns, which may match any line."""
        n = len(batch)
        user = self._user_lines(batch)
        self._builtin_hit = None
        self._brace = None
        i = 0
        joined: str | None = None
        pos = 0  # where batch[i] starts in joined
        while i < n:
            if self._pending is None and self._block is None and self._json is None:
                # Idle: jump to the next line that could matter, in C.
                if joined is None:
                    joined = "\n".join(batch)
                hit = self._next_hit(joined, pos)
                if hit < 0:
                    break
                i += joined.count("\n", pos, hit)
                k = joined.rfind("\n", pos, hit)
                if k >= 0:
                    pos = k + 1
            line = batch[i]
            self._line(line, out, user.get(i))
            pos += len(line) + 1
            i += 1

    def _feed_builtin(self, batch: list[str], out: list[UsageEvent]) -> None:
        """feed() with the built-in patterns alone: _feed_all and _next_hit
        with what cannot happen without user patterns left out, and an idle
        keyword line's cached outcome (see _fresh) used here, not through
        _line, which searched the line for its keyword again (usage on every
        line, Capture alone: Matcher.feed 1.24 -> 1.09 s per 100 MB).
        """
        n = len(batch)
        i = 0
        joined: str | None = None
        pos = 0  # where batch[i] starts in joined
        hit = -2  # the next keyword colon in joined (-1: none; -2 or < pos: look)
        brace = -2  # the next line start with a "{" (the same)
        outcomes = self._outcomes
        while i < n:
            if self._pending is None and self._block is None and self._json is None:
                # Idle: jump to the next line that could matter, in C.
                if joined is None:
                    joined = "\n".join(batch)
                    if "{" not in joined:  # memchr: much cheaper than "\n{"
                        brace = -1
                if hit < pos and hit != -1:
                    m = _PREFILTER_RE.search(joined, pos)
                    hit = m.start() if m else -1
                if brace < pos and brace != -1:
                    # Kept apart from ``hit`` (see _next_hit): looked for again
                    # after every keyword line, a batch with a "{" in it but
                    # none at a line start was searched to its end each time.
                    brace = _next_json_line(joined, pos)
                at = brace if brace >= 0 and (hit < 0 or brace < hit) else hit
                if at < 0:
                    break
                i += joined.count("\n", pos, at)
                k = joined.rfind("\n", pos, at)
                if k >= 0:
                    pos = k + 1
                line = batch[i]
                if at == hit:
                    # A keyword line (no "{" starts it: ``brace`` would be
                    # first) is what _line would give _fresh.
                    outcome = outcomes.get(line, _UNREAD)
                    if outcome is not _UNREAD and outcome is not None and outcome[0] == "event":
                        out.append(UsageEvent(**outcome[1]))
                        self._vetted += outcome[2]
                    else:
                        self._fresh(line, out)
                    pos += len(line) + 1
                    i += 1
                    continue
            line = batch[i]
            if self._pending is not None:
                # The line after a Tokens line (_fresh opened nothing else):
                # a Cost line completes it; any other line is then read idle,
                # as _line would go on to read it (usage on every line, half
                # of it Tokens lines: Matcher.feed 0.99 -> 0.94 s per 100 MB).
                if self._complete_pending(line, out):
                    pos += len(line) + 1
                    i += 1
                continue
            self._line(line, out)
            pos += len(line) + 1
            i += 1

    def flush(self) -> list[UsageEvent]:
        """End of stream: the events a pending line or block still holds."""
        out: list[UsageEvent] = []
        self._close_pending(out)
        self._close_block(out)
        if self._json is not None:
            self._finish_json(out, final=True)
            self._json = None
        return self._plausible(out)

    def _plausible(self, events: list[UsageEvent]) -> list[UsageEvent]:
        """``events`` less those no record can hold (rows of a block that add
        up beyond the ceiling, say), which are counted in :attr:`rejected`."""
        kept = []
        for event in events:
            problem = event.problem()
            if problem is None:
                kept.append(event)
            else:
                self._reject(f"{event.pattern}: {problem}")
        return kept

    def _reject(self, why: str) -> None:
        self.rejected += 1
        if self.first_rejection is None:
            self.first_rejection = why

    # -- dispatch --

    def _next_hit(self, joined: str, pos: int) -> int:
        """Where the first line at or after ``pos`` that needs a look starts (or -1)."""
        hit = self._builtin_hit
        # The built-in patterns' next line found before still is while ``pos`` has
        # not passed it: with a user pattern matching a line in two, searching
        # the rest of the batch again at each made feed() quadratic
        # (64 KiB of 2,000 short lines, a user pattern matching every other one:
        # feed() took 50 ms, now 30 ms). The next JSON line is kept apart for
        # the same reason: looked for again after every keyword line, a batch
        # with a "{" in it but none at a line start was searched to its end
        # once per keyword line (bench/real_output.py's usage on every line:
        # Matcher.feed over all its lines 3.0 -> 1.4 s per 100 MB).
        if hit is None or 0 <= hit < pos:
            m = _PREFILTER_RE.search(joined, pos)
            hit = m.start() if m else -1
            brace = self._brace
            if brace is None and "{" not in joined:  # memchr: much cheaper than "\n{"
                brace = self._brace = -1
            if brace is None or 0 <= brace < pos:
                brace = self._brace = _next_json_line(joined, pos)
            if brace >= 0 and (hit < 0 or brace < hit):
                hit = brace
            self._builtin_hit = hit
        k = bisect_left(self._user_at, pos)
        if k < len(self._user_at) and (hit < 0 or self._user_at[k] < hit):
            hit = self._user_at[k]
        return hit

    def _user_lines(self, batch: list[str]) -> dict[int, list[UsageEvent]]:
        """What the user patterns find in ``batch``, by line index, within their
        budget (see _user_matches); sets where those lines start for _next_hit."""
        if not self._user:
            self._user_at = []
            return {}
        found, slow = _user_matches(self._user, batch)
        for user in slow:
            self._user.remove(user)
        starts = list(accumulate((len(line) + 1 for line in batch), initial=0))
        self._user_at = [starts[i] for i in sorted(found)]
        return found

    @property
    def switched_off(self) -> list[str]:
        """Why each user pattern that is no longer used was switched off."""
        return [p.switched_off for p in self._user_patterns if p.switched_off]

    def _line(self, line: str, out: list[UsageEvent],
              found: list[UsageEvent] | None = None) -> None:
        """Read ``line``; ``found`` holds the events user patterns found in it."""
        if self._pending is not None and self._complete_pending(line, out):
            return
        if (self._json is not None or line[:1] == "{") and self._json_line(line, out):
            return
        if found:
            self._close_block(out)
            out.extend(found)
            return
        if self._block is not None and self._block_line(line, out):
            return
        if _PREFILTER_RE.search(line):
            self._fresh(line, out)

    def _complete_pending(self, line: str, out: list[UsageEvent]) -> bool:
        """The line after a Tokens line: the waiting event goes out, with the
        cost of ``line`` when it is a Cost line (then True: nothing more in it)."""
        event = self._pending
        assert event is not None
        self._pending = None
        out.append(event)
        self._vetted += self._pending_vetted
        m = _SEED_COST_RE.search(line)
        return m is not None and _set_cost(event, m.group("cost"))

    def _fresh(self, line: str, out: list[UsageEvent]) -> None:
        # What a line starts depends on the line alone: it is read once and
        # the outcome kept (_FRESH_KEEP lines of up to _FRESH_CHARS), so a
        # line a TUI redraws costs a dict look-up and the event it makes.
        # bench/real_output.py's usage-every-line text (4,000 distinct lines,
        # each read ~9 times in 8 MB): Capture alone 28 -> see the commit, s
        # per 100 MB.
        outcome = self._outcomes.get(line, _UNREAD)
        if outcome is _UNREAD:
            read = _fresh_outcome(line)
            # An event's numbers are checked here, once per distinct line, not
            # in _plausible each time the line comes back (usage on every
            # line: Matcher.feed 1.4 -> 1.1 s per 100 MB).
            outcome = read and (*read, read[0] == "block" or UsageEvent(**read[1]).problem() is None)
            if len(line) <= _FRESH_CHARS:
                if len(self._outcomes) >= _FRESH_KEEP:
                    self._outcomes.clear()
                self._outcomes[line] = outcome
        if outcome is None:
            return
        what, value, vetted = outcome
        if what == "block":
            self._block = _Block(cost=value, rows={})
        elif what == "pending":
            self._pending = UsageEvent(**value)
            self._pending_vetted = vetted
        else:
            out.append(UsageEvent(**value))
            self._vetted += vetted

    def _close_pending(self, out: list[UsageEvent]) -> None:
        if self._pending is not None:
            out.append(self._pending)
            self._vetted += self._pending_vetted
            self._pending = None

    # -- /cost block --

    def _block_line(self, line: str, out: list[UsageEvent]) -> bool:
        """Read ``line`` as part of the open block; False when it ends the block."""
        first, *more = _ROW_SPLIT_RE.split(line)
        if not self._block_part(first, out):
            return False
        for row in more:  # each starts a row: none ends the block
            self._block_part(row, out)
        return True

    def _block_part(self, line: str, out: list[UsageEvent]) -> bool:
        block = self._block
        assert block is not None
        m = _BLOCK_ROW_RE.search(line)
        # A seed `Tokens: … input, … output` line is not a model named "tokens".
        if m is not None and not _SEED_TOKENS_RE.search(line):
            _end_row(block)
            model = m.group("model")
            row = _row_event(model, m.group("rest"))
            block.last = (model, m.group("rest"), row)
            if row is not None:
                # The same row printed again (a redraw inside the block): the last counts.
                block.rows[model] = row
            return True
        if block.last is not None:
            if _continue_row(block, line):
                return True
            _end_row(block)
        if block.rows or block.lost:
            # The rows are over: report now rather than when the dialog closes.
            self._close_block(out)
            return False
        if _BLOCK_COST_RE.search(line):
            self._close_block(out)
            return False
        if _BLOCK_MODELS_RE.search(line) or _BLOCK_MEMBER_RE.search(line):
            return True
        self._close_block(out)
        return False

    def _close_block(self, out: list[UsageEvent]) -> None:
        block = self._block
        if block is None:
            return
        self._block = None
        _end_row(block)
        rows = _merge_models(block.rows.values())
        if rows:
            # One row without a cost of its own (0.2.x) costs what the block
            # does, unless another row was lost: its cost is in there too.
            if len(rows) == 1 and rows[0].cost_usd is None and not block.lost:
                rows[0].cost_usd = block.cost
            out.extend(rows)
        elif block.cost is not None:
            out.append(UsageEvent(
                kind="total", cost_usd=block.cost, approximate=True, pattern="cost-block",
            ))

    # -- JSON results --

    def _json_line(self, line: str, out: list[UsageEvent]) -> bool:
        """Read ``line`` as JSON; False when it is not part of a JSON object."""
        starts = line == "{" or line.startswith('{"')
        buf = self._json
        if buf is not None and not starts:
            if len(buf[-1]) >= _JSON_PIECE or _JSON_PRETTY_LINE_RE.fullmatch(line):
                buf.append(line)
                self._json_chars += len(line)
                if self._json_chars > _JSON_MAX_CHARS or len(buf) > _JSON_MAX_LINES:
                    self._json = None
                elif line.endswith("}") and (buf[0] != "{" or line == "}"):
                    self._finish_json(out, final=False)
                return True
            self._json = None  # not JSON after all: read the line as text
            return False
        if not starts:
            return False
        self._json = [line]
        self._json_chars = len(line)
        if line.endswith("}"):
            self._finish_json(out, final=False)
        return True

    def _finish_json(self, out: list[UsageEvent], final: bool) -> None:
        """Try to read the buffered object; drop it when it is done or hopeless."""
        buf = self._json
        assert buf is not None
        pretty = buf[0] == "{"
        text = "".join(buf)
        if '"result"' not in text:
            # Only result objects count; anything else (assistant snapshots,
            # init lines) is dropped unread.
            if _STREAM_HINT_RE.match(text):
                self._stream = True
            self._json = None
            return
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            if pretty or final:
                self._json = None
            return  # a long line the scanner cut: wait for the rest
        except (ValueError, RecursionError, OverflowError, MemoryError) as exc:
            # A number of more than 4300 digits (ValueError), or braces nested
            # thousands deep (json gives up in C, cleanly): more lines cannot
            # mend it, and only this object is lost.
            self._json = None
            self._reject(f"a JSON result nested too deeply or with too many digits"
                         f" ({type(exc).__name__})")
            return
        self._json = None
        if isinstance(obj, dict):
            if obj.get("type") != "result" and _STREAM_HINT_RE.match(text):
                self._stream = True
            rejected: list[str] = []
            out.extend(_result_events(obj, "stream-json" if self._stream else "p-json",
                                      rejected))
            for why in rejected:
                self._reject(why)


def _cost_or_none(text: str) -> float | None:
    try:
        return parse_cost(text)
    except ValueError:
        return None


def _set_cost(event: UsageEvent, text: str) -> bool:
    cost = _cost_or_none(text)
    if cost is None:
        return False
    event.cost_usd = cost
    return True


def _merge_models(events: Iterable[UsageEvent]) -> list[UsageEvent]:
    """One event per model: names that normalise alike (``x``, ``x[1m]``) add up."""
    merged: dict[str | None, UsageEvent] = {}
    for event in events:
        seen = merged.get(event.model)
        if seen is None:
            merged[event.model] = event
            continue
        seen.input_tokens += event.input_tokens
        seen.output_tokens += event.output_tokens
        seen.cache_read_tokens += event.cache_read_tokens
        seen.cache_write_tokens += event.cache_write_tokens
        if event.cost_usd is not None:
            seen.cost_usd = (seen.cost_usd or 0.0) + event.cost_usd
        seen.approximate = seen.approximate or event.approximate
    return list(merged.values())


def _row_event(model: str, rest: str) -> UsageEvent | None:
    """One ``model:  1.2k input, 5.3k output, ... ($0.55)`` row of a /cost block;
    None unless ``rest`` reads exactly as a whole row (see _ROW_BODY_RE)."""
    body = _ROW_BODY_RE.fullmatch(rest)
    if body is None:
        return None
    event = UsageEvent(kind="total", model=normalise_model(model), approximate=True,
                       pattern="cost-block")
    for item in _ROW_ITEM_RE.finditer(body.group("items")):
        field = _ROW_FIELDS.get(" ".join(item.group("what").lower().split()))
        if field is None:
            continue  # web searches: not tokens
        try:
            value, _ = parse_count(item.group("n"))
        except ValueError:
            return None
        setattr(event, field, value)
    if body.group("cost") is not None:
        event.cost_usd = _cost_or_none(body.group("cost"))
        if event.cost_usd is None:
            return None  # a cost no record holds: not a row (nor one the next line completes)
    return event


def _continue_row(block: _Block, line: str) -> bool:
    """Whether ``line`` continues the row read last, which then takes it in.

    A row that has its cost is whole. Otherwise the row and the line are read
    as one: joined by a space (wrapped between words; Claude Code's renderer
    also drops the indent) or directly (a scrollback line cut mid-word).
    """
    assert block.last is not None
    model, rest, held = block.last
    if held is not None and held.cost_usd is not None:
        return False
    head = rest.rstrip(_ROW_EDGE)
    tail = line.strip(_ROW_EDGE)
    if not tail:
        return False
    for joined in (f"{head} {tail}", head + line.lstrip("│|")):
        row = _row_event(model, joined)
        if row is not None:
            block.last = (model, joined, row)
            block.rows[model] = row
            return True
    return False


def _end_row(block: _Block) -> None:
    """The row read last is over: lost if it never read as a whole row."""
    if block.last is not None:
        if block.last[2] is None:
            block.lost = True
        block.last = None


def _int(name: str, value: Any) -> int:
    """A count of a JSON result: 0 when absent or not a number; ValueError when
    a number no record can hold (Infinity, negative, 300 digits)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return count_value(name, value)


def _float(value: Any) -> float | None:
    """A cost of a JSON result: None when absent or not a number; ValueError as _int."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return cost_value(value)


# The token counts of a result: per model in ``modelUsage``, in all in ``usage``.
_MODEL_USAGE_KEYS = ("inputTokens", "outputTokens", "cacheReadInputTokens",
                     "cacheCreationInputTokens")
_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens",
               "cache_creation_input_tokens")


def _result_total(usage: dict[str, Any], keys: tuple[str, str, str, str], **fields: Any
                  ) -> UsageEvent:
    """ValueError when a count cannot be one (see _int)."""
    i, o, cr, cw = (_int(k, usage.get(k)) for k in keys)
    return UsageEvent(kind="total", input_tokens=i, output_tokens=o, cache_read_tokens=cr,
                      cache_write_tokens=cw, **fields)


def _result_events(obj: dict[str, Any], pattern: str, rejected: list[str]
                   ) -> list[UsageEvent]:
    """Exact totals of a ``claude -p`` result object: one event per model.

    A model whose numbers no record can hold gives no event; why goes to
    ``rejected`` (the other models still count).
    """
    if obj.get("type") != "result":
        return []
    session = obj.get("session_id")
    session = session if isinstance(session, str) and session else None
    model_usage = obj.get("modelUsage")
    if isinstance(model_usage, dict):
        per_model = []
        tried = False  # a model was there: never fall back to "usage" for it
        for name, usage in model_usage.items():
            if not isinstance(usage, dict):
                continue
            tried = True
            try:
                per_model.append(_result_total(
                    usage, _MODEL_USAGE_KEYS, model=normalise_model(str(name)),
                    cost_usd=_float(usage.get("costUSD")), pattern=pattern,
                    claude_session=session))
            except ValueError as exc:
                rejected.append(f"{pattern}: {exc}")
        if tried:
            return _merge_models(per_model)
    usage = obj.get("usage")
    try:
        cost = _float(obj.get("total_cost_usd"))
        if not isinstance(usage, dict):
            if cost is None:
                return []
            usage = {}
        return [_result_total(usage, _USAGE_KEYS, cost_usd=cost, pattern=pattern,
                              claude_session=session)]
    except ValueError as exc:
        rejected.append(f"{pattern}: {exc}")
        return []
