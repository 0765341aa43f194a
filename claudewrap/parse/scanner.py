"""Bytes from a terminal -> clean text lines, streaming.

The one place where ANSI/VT sequences are stripped. :class:`Scanner` takes the
raw output of a pty in chunks of any size and returns the text lines it
completes. The result does not depend on where the chunks were cut: a
boundary may fall inside a UTF-8 sequence, an escape sequence, a number or a
word.

What a line is:

- LF, CR, CRLF, VT, FF, U+2028 and U+2029 end a line, and so do escape sequences that move the
  cursor to another line or position: CSI ``H f A B E F d J``, CSI ``G`` to
  column 1, and ESC ``D E M 8 c``. Erase-in-line (CSI ``K``) does not.
- Cursor-forward (CSI ``n C``), which Claude Code's renderer uses instead of
  spaces, becomes ``n`` spaces (at most 256); CSI ``n G`` to a column past 1
  (Claude Code's renderer jumps between words with it) becomes one space; TAB
  becomes one space.
- Every other escape sequence (CSI, OSC, DCS/SOS/PM/APC strings, charset
  selects, two-byte ESC sequences) and every other C0/C1 control is dropped.
- Trailing whitespace is stripped and empty lines are omitted, so ``CR LF`` and
  a cursor move right after a line end yield no blank lines.
- A line that reaches ``max_line`` characters is emitted in pieces of
  ``max_line``; an OSC/DCS string longer than 4096 characters, a CSI with more
  than 128 parameter bytes or an ESC with more than 16 intermediate bytes is
  abandoned there and the rest is read as text (so is a string still open when
  the stream ends). Memory stays bounded.

Bytes that are not UTF-8 become U+FFFD. An 8-bit C1 CSI (byte 0x9b) is not
UTF-8 either and is read as U+FFFD, not as a CSI.

How it stays fast: each chunk goes through a few compiled regexes and ``str``
methods over the whole chunk, with no Python code per byte or per escape
sequence; only the unfinished tail of an escape sequence is kept for the next
chunk.
"""

from __future__ import annotations

import codecs
import re
import sys

_utf8_decode = codecs.utf_8_decode

_CSI_PARAMS = 128  # parameter bytes a CSI may have before it is abandoned
_ESC_INTER = 16  # intermediate bytes an escape may have before it is abandoned
_STRING_MAX = 4096  # OSC/DCS/SOS/PM/APC body length before it is abandoned
_CUF_MAX = 256  # spaces one cursor-forward may produce
# The longest unfinished escape we ever hold back: ESC, introducer, body.
_TAIL_WINDOW = _STRING_MAX + 3

# Pass 1 drops every escape sequence except those that end a line or move the
# cursor forward. Each alternative consumes exactly one whole sequence (or the
# prefix of one that was abandoned), so removing it never joins its neighbours
# into a new sequence. Kept CSI: parameters of digits, ":" and ";" only, no
# intermediates, final in H f A B C E F G d J. Written without look-ahead
# (which costs a third of the speed): after "[\x30-\x3b]{0,128}" no alternative
# can start with a digit, ":" or ";", so backtracking into the parameters
# finds nothing, and where Python has possessive repeats (3.11) it does not
# try: a kept sequence (CSI 1C, CSI n G: half the escapes of the real sessions)
# fails every alternative, which it did again for each shorter run of digits.
# The split alone, per 100 MB: 0.89 -> 0.72 s (usage on every line), 0.90 ->
# 0.67 (generated), 0.88 -> 0.64 (real 2.1.332). Character ranges, not \d: \d
# is a Unicode category test.
_POSSESSIVE = "+" if sys.version_info >= (3, 11) else ""
_DROP_RE = re.compile(
    r"\x1b(?:"
    r"\[(?:[\x30-\x3b]{0,128}" + _POSSESSIVE + r"(?:"
    r"[\x40\x44\x49\x4b-\x63\x65\x67-\x7e]"  # a final that is not kept
    r"|[<=>?][\x30-\x3f]{0,127}[\x20-\x2f]{0,16}[\x40-\x7e]?"  # private parameters
    r"|[\x20-\x2f]{1,16}[\x40-\x7e]?"  # intermediates
    r"|(?![\x20-\x7e]))"  # abandoned: a control, non-ASCII or the end follows
    r"|[\x30-\x3b]{128})"  # abandoned: too many parameters
    r"|[\]PX^_][^\x07\x1b]{0,4096}(?:\x07|\x1b\\)?"  # OSC, DCS, SOS, PM, APC
    r"|(?![\[\]PX^_DEM8c])[\x20-\x2f]{0,16}[\x30-\x7e]?"  # charset selects, ESC 7, lone ESC
    r")"
)
# Pass 2: after pass 1 every ESC left starts a kept sequence. Group 2 is set
# for cursor-forward only, group 1 holds its count. One pass with a callback is
# cheaper than a literal pass for line ends plus one for cursor-forward.
_KEPT_RE = re.compile(r"\x1b(?:\[([0-9]*)[\x30-\x3b]*(?:(C)|(G)|[HfABEFdJ])|[DEM8c])")
# CHA (CSI n G) to a column past 1, which _kept makes one space: its count,
# the digits _KEPT_RE's group 1 takes, is two digits or more, or one of 2-9.
# Claude Code's renderer writes one between words (bench/real_output.py's
# usage-every-line text: 158,000 _kept calls per 4 MB, most of them these).
_CHA_WITHIN_RE = re.compile(r"\x1b\[(?:[0-9]{2,}|[2-9])[\x30-\x3b]*G")
# The prefix of a sequence that the next character could still extend.
_UNFINISHED_RE = re.compile(
    r"\x1b(?:"
    r"\[[\x30-\x3b]{0,128}(?:[<=>?][\x30-\x3f]{0,127}[\x20-\x2f]{0,16}|[\x20-\x2f]{1,16})?"
    r"|[\]PX^_][^\x07\x1b]{0,4096}"
    r"|[\x20-\x2f]{0,16}"
    r")"
)
_OPEN_STRING_RE = re.compile(r"\x1b[\]PX^_][^\x07\x1b]{0,4096}")
# C0 controls other than TAB, LF, VT, FF, CR, ESC; DEL; C1 controls.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x9f]")
# The same as bytes, without BEL (it ends most OSC strings, so it is looked for
# after pass 1) and without C1 (two bytes in UTF-8, looked for apart).
_CONTROL_BYTES = bytes([*range(0x07), 0x08, *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x7F])
_C1_UTF8_RE = re.compile(rb"\xc2[\x80-\x9f]")
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines splits at
# Cursor-forward count as printed ("", "0", "07", "12", ...) -> its spaces.
# Filled as counts are seen; only counts of up to 3 digits are kept (<= 1111).
_SPACES: dict[str, str] = {}


def _kept(m: re.Match[str]) -> str:
    """A line end for a cursor move, spaces for a cursor-forward.

    CHA (``CSI n G``, to column n) to column 1 starts the line over, like CR;
    to any other column it is a jump within the line, which Claude Code's
    renderer uses between words: one space.
    """
    if m[3] is not None:
        return "\n" if m[1] in ("", "0", "1") else " "
    if m[2] is None:
        return "\n"
    count = m[1]
    spaces = _SPACES.get(count)
    if spaces is None:
        spaces = " " * max(1, min(int(count or "1"), _CUF_MAX))
        if len(count) <= 3:
            _SPACES[count] = spaces
    return spaces


def _clean(text: str, controls: bool) -> str:
    """Text of complete sequences without escapes and controls; line ends kept.

    ``controls`` says whether the text may hold controls other than BEL.
    """
    if "\x1b" in text:
        text = "".join(_DROP_RE.split(text))  # a little faster than sub("")
        if "\x1b" in text:
            # The most common cursor moves, without a Python call per match:
            # each literal below is a whole kept sequence (it starts at an ESC,
            # and one ESC starts each), and what _kept makes of it.
            text = text.replace("\x1b[C", " ")
            if "\x1b" in text:
                text = text.replace("\x1b[1C", " ").replace("\x1b[1B", "\n")
                if "\x1b[" in text:
                    text = _CHA_WITHIN_RE.sub(" ", text)
                if "\x1b" in text:
                    text = _KEPT_RE.sub(_kept, text)
    if controls or "\x07" in text:
        text = _CONTROL_RE.sub("", text)
    if "\t" in text:
        text = text.replace("\t", " ")
    return text


class Scanner:
    """Turns a terminal's output bytes into clean text lines, chunk by chunk."""

    def __init__(self, max_line: int = 16384) -> None:
        if max_line < 1:
            raise ValueError("max_line must be at least 1")
        self._max = max_line
        self._undecoded = b""  # an unfinished UTF-8 sequence at the end of the last chunk
        self._tail = ""  # the unfinished escape sequence at the end of the last chunk
        self._tail_controls = False
        self._parts: list[str] = []  # the clean text of the line not yet ended
        self._plen = 0

    def feed(self, data: bytes) -> list[str]:
        """The complete clean lines that ``data`` ends (possibly none)."""
        if self._undecoded:
            data = self._undecoded + data
        # What codecs' incremental decoder does, without its Python frame.
        text, used = _utf8_decode(data, "replace", False)
        self._undecoded = data[used:]
        # Looking for controls in bytes is ~5x faster than a regex over the text.
        controls = len(data.translate(None, _CONTROL_BYTES)) != len(data) or (
            b"\xc2" in data and _C1_UTF8_RE.search(data) is not None
        )
        if self._tail:
            text = self._tail + text
            controls = controls or self._tail_controls
            self._tail = ""
        if not text:
            return []
        cut = _unfinished_start(text)
        if cut < len(text):
            self._tail = text[cut:]
            self._tail_controls = controls and _CONTROL_RE.search(self._tail) is not None
            text = text[:cut]
        return self._lines(_clean(text, controls))

    @property
    def partial(self) -> str:
        """The clean text of the line not yet ended."""
        return "".join(self._parts)

    @property
    def pending(self) -> bool:
        """True while the next chunk continues what this one began (a line, an
        escape sequence or a UTF-8 character)."""
        return bool(self._parts or self._tail or self._undecoded)

    def reset(self) -> None:
        """Forget the unfinished line: the next chunk starts a new one.

        Feeding from just after a CR or LF after a reset gives the lines feed()
        would give from there, unless that CR or LF sits inside an escape
        string (an OSC title holding a newline).
        """
        self._undecoded = b""
        self._tail = ""
        self._tail_controls = False
        self._parts = []
        self._plen = 0

    def skip(self, data: bytes) -> None:
        """Consume ``data`` whose lines nobody needs, far cheaper than feed().

        Only the text after its last LF is read (the next chunk may continue
        that line); the partial line and everything before that LF are dropped
        (see reset()).
        """
        i = data.rfind(b"\n")
        if i < 0:
            self.feed(data)
            return
        self.reset()
        self.feed(data[i + 1:])

    def flush(self) -> list[str]:
        """End of stream: the pending partial line, if it is not empty."""
        text = self._tail + _utf8_decode(self._undecoded, "replace", True)[0]
        controls = self._tail_controls
        if _OPEN_STRING_RE.fullmatch(text):
            # A string (ESC P, ESC ], ...) the stream ended in was never one:
            # a lone "ESC P" in a log must not hide the lines after it.
            text = text[2:]
            controls = True
        self._undecoded = b""
        self._tail = ""
        self._tail_controls = False
        out = self._lines(_clean(text, controls)) if text else []
        if self._plen:
            last = "".join(self._parts).rstrip()
            if last:
                out.append(last)
        self._parts = []
        self._plen = 0
        return out

    def _lines(self, text: str) -> list[str]:
        if not text:
            return []
        # splitlines: LF, CR, CRLF, VT, FF in one pass (and U+2028/U+2029; the
        # other characters it splits at are controls, gone by now).
        segments = text.splitlines()
        last = "" if text[-1] in _LINE_BREAKS else segments.pop()
        if not segments:
            if last:
                self._parts.append(last)
                self._plen += len(last)
                if self._plen >= self._max:
                    return self._cut_partial()
            return []
        m = self._max
        longest = len(text) + self._plen  # no line can be longer: skips measuring them
        if self._plen:
            segments[0] = "".join(self._parts) + segments[0]
        self._parts = [last] if last else []
        self._plen = len(last)
        if longest >= m and max(map(len, segments)) >= m:
            segments = [s[k:k + m] for s in segments for k in range(0, len(s), m)]
        out = list(filter(None, map(str.rstrip, segments)))
        if self._plen >= m:
            out.extend(self._cut_partial())
        return out

    def _cut_partial(self) -> list[str]:
        """Emit the full ``max_line`` pieces of the partial line, keep the rest."""
        line = "".join(self._parts)
        m = self._max
        full = len(line) - len(line) % m
        rest = line[full:]
        self._parts = [rest] if rest else []
        self._plen = len(rest)
        return [p for p in (line[k:k + m].rstrip() for k in range(0, full, m)) if p]


def _unfinished_start(text: str) -> int:
    """Where the escape sequence that the next chunk could still extend starts.

    ``len(text)`` when the text ends outside any escape sequence.
    """
    n = len(text)
    i = text.rfind("\x1b", max(0, n - _TAIL_WINDOW))
    if i < 0:
        return n
    if i == n - 1:
        # A lone ESC at the end may be the first half of the ST ending a string.
        j = text.rfind("\x1b", max(0, i - _TAIL_WINDOW), i)
        if j >= 0 and _OPEN_STRING_RE.fullmatch(text, j, i):
            return j
        return i
    if _UNFINISHED_RE.fullmatch(text, i):
        return i
    return n


def clean_lines(data: bytes) -> list[str]:
    """All clean lines of ``data``, read as a whole stream."""
    scanner = Scanner()
    return scanner.feed(data) + scanner.flush()
