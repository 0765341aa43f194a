"""The terminal modes a child switched on and left on, and how to switch them back.

A full-screen program that is killed or crashes leaves the terminal as it had
set it: in the alternate screen, the cursor hidden, the mouse reported as
escape sequences, pasted text wrapped in markers (issue 13 item 12). The
wrapper sees every byte the child writes, so it follows the DEC private modes
(``CSI ? Pm h`` / ``CSI ? Pm l``) and the keypad mode (``ESC =`` / ``ESC >``)
that matter for a shell, and when the child ends writes the sequences that
switch back what is still on — something script(1) does not do. A child that
switched everything back itself gets nothing extra.

It runs on the relay's hot path, so it looks for two things only: ``?`` (a
one-byte search, memchr speed; a hit counts when ``ESC [`` comes before it) and
``ESC =`` / ``ESC >`` where there is a ``=`` or ``>`` (the last one decides).
Sequences split across reads are kept until the next one. A terminal reset
(``ESC c``) is not followed: after one, the resets written are harmless.
"""

from __future__ import annotations

import re

# What each followed mode does when set (h); the cursor (25) is the one that is
# on by default, so what is "left on" there is its reset (l: hidden).
_MOUSE = (1000, 1002, 1003, 1006, 1015)  # clicks, drags, all motion, SGR and urxvt encodings
_PASTE, _FOCUS, _CURSOR_KEYS = 2004, 1004, 1
_ALT_SCREENS = (1049, 1047, 47)
_CURSOR = 25
# Resets in this order: input modes first (no mouse report lands in the shell),
# then out of the alternate screen, the cursor shown last.
_ORDER = (*_MOUSE, _PASTE, _FOCUS, _CURSOR_KEYS, *_ALT_SCREENS, _CURSOR)
_FOLLOWED = frozenset(_ORDER)
_KEYPAD_AFTER = _CURSOR_KEYS  # ESC > goes right after the cursor keys' reset
_MAX_PENDING = 32  # an unfinished ESC [ ? longer than this is not a mode change
# Reads are kept and looked at this many bytes at a time (and in resets()):
# the modes matter only when the child has ended, and the searches below cost
# per call what a pty's ~4 KiB read and 32 KiB cost alike. Not more: a look is
# on the relay's path, and 256 KiB held keystrokes ~1 ms every 64 ms while
# 4 MB/s of Claude Code's output flowed (bench/real_output.py).
_KEEP = 1 << 15
# Every CSI ? Pm h|l, from its "?" on. It starts with the "?" (a look-behind
# checks the ESC [), which the regex engine looks for alone: Claude Code's
# output has an ESC every ~14 bytes and a "?" every ~260, and a pattern that
# started with the ESC (and named the followed modes in an alternation) took
# three times as long (0.48 -> 0.15 s per 100 MB of the looped 2.1.332
# session). What a sequence does is looked up once per distinct sequence
# (_effect, memoised: a TUI repeats a few).
_PRIVATE = re.compile(rb"\?(?<=\x1b\[\?)[0-9;]*[hl]")
_TAIL = re.compile(rb"\x1b(?:\[(?:\?[0-9;]{0,%d})?)?\Z" % _MAX_PENDING)
_EFFECTS: dict[bytes, tuple[tuple[int, bool], ...]] = {}  # sequence -> (mode, left on)


def _effect(sequence: bytes) -> tuple[tuple[int, bool], ...]:
    """What ``CSI ? params h|l`` (``sequence`` from its "?") does to the followed
    modes: (mode, away from its default) for each one it names."""
    set_it = sequence.endswith(b"h")
    effect = tuple((int(p), set_it != (int(p) == _CURSOR))
                   for p in sequence[1:-1].split(b";")
                   if p and len(p) <= 5 and int(p) in _FOLLOWED)
    if len(_EFFECTS) < 1024:
        _EFFECTS[sequence] = effect
    return effect


def _last_after_esc(data: bytes, byte: int) -> int:
    """Where the last ``ESC byte`` in ``data`` starts, or -1.

    Looks for the one byte (memchr speed) and checks the one before it: a
    two-byte search starting with ESC is ~10x slower in escape-dense output
    (0.3 s per 100 MB of Claude Code 2.1.332's, most of this module's cost).
    It looks at up to one per 256 bytes (Claude Code 2.1.332 writes a ">" every
    ~1,100 without an ESC before it; with 8 it went on to the two-byte search
    in every 256 KiB that feed() keeps: 0.22 -> 0.05 s per 100 MB).
    """
    k = data.rfind(byte)
    for _ in range(16 + (len(data) >> 8)):
        if k <= 0:
            return -1
        if data[k - 1] == 0x1B:
            return k - 1
        k = data.rfind(byte, 0, k)
    return data.rfind(bytes((0x1B, byte)), 0, k + 1)  # many of them: let C look


class TermModes:
    """Follows a child's output; :meth:`resets` is what switches back what it left on."""

    __slots__ = ("_kept", "_kept_size", "_keypad", "_on", "_pending")

    def __init__(self) -> None:
        self._on: set[int] = set()  # followed modes away from their default
        self._keypad = False  # application keypad (ESC =)
        self._pending = b""  # the start of a sequence cut by the end of a read
        self._kept: list[bytes] = []  # reads not looked at yet
        self._kept_size = 0

    def feed(self, data: bytes) -> None:
        """Note the mode changes in ``data`` (the next bytes the child wrote).

        Called after every read on the relay's path: only keeps them, and
        looks at what is kept once there are _KEEP bytes (or in resets())."""
        self._kept.append(data)
        self._kept_size += len(data)
        if self._kept_size >= _KEEP:
            self._look()

    def _look(self) -> None:
        """Follow the mode changes in what is kept."""
        kept = self._kept
        data = kept[0] if len(kept) == 1 else b"".join(kept)
        self._kept = []
        self._kept_size = 0
        if self._pending:
            data = self._pending + data
            self._pending = b""
        # A one-byte search runs at memchr speed; only where there is a '?'
        # does a regex look (bench/real_output.py: a byte-by-byte parse took
        # ~25% of the wrapper's CPU). Claude Code 2.1.332 writes CSI ? 2026 h/l
        # (synchronized output) twice a frame: Python code runs per distinct
        # sequence of a read, not per sequence.
        q = data.find(b"?")
        if q >= 0:
            found = _PRIVATE.findall(data, q)
            if found:
                # The last sequence that names a mode decides it: each distinct
                # sequence once, the last one first (C code does the ordering).
                on = self._on
                decided: set[int] = set()
                for sequence in dict.fromkeys(reversed(found)):
                    effect = _EFFECTS.get(sequence)
                    if effect is None:
                        effect = _effect(sequence)
                    for mode, left_on in effect:
                        if mode not in decided:
                            decided.add(mode)
                            if left_on:
                                on.add(mode)
                            else:
                                on.discard(mode)
        app, normal = _last_after_esc(data, 61), _last_after_esc(data, 62)  # ESC = / ESC >
        if app != normal:  # both -1 when there is none: the last switch decides
            self._keypad = app > normal
        # An ESC, ESC [ or ESC [ ? Pm at the very end may start a sequence the next
        # read finishes; no other ESC can follow it.
        n = len(data)
        last = data.rfind(b"\x1b", max(0, n - _MAX_PENDING - 3))
        if last >= 0:
            tail = _TAIL.match(data, last)
            if tail is not None:
                self._pending = tail.group()

    def resets(self) -> bytes:
        """The sequences that switch back every followed mode still on (b"" if none)."""
        if self._kept:
            self._look()
        out = []
        for mode in _ORDER:
            if mode in self._on:
                out.append(b"\x1b[?%dh" % mode if mode == _CURSOR else b"\x1b[?%dl" % mode)
            if mode == _KEYPAD_AFTER and self._keypad:
                out.append(b"\x1b>")
        return b"".join(out)


__all__ = ["TermModes"]
