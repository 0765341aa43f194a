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
_KEYPAD = re.compile(rb"\x1b[=>]")
_PRIVATE = re.compile(rb"\x1b\[\?([0-9;]*)([hl])")
_TAIL = re.compile(rb"\x1b(?:\[(?:\?[0-9;]{0,%d})?)?\Z" % _MAX_PENDING)
_MODES: dict[bytes, tuple[int, ...]] = {}  # parameters seen -> the followed modes in them


def _modes(params: bytes) -> tuple[int, ...]:
    """The followed modes of ``CSI ? params h|l`` (memoised: a TUI repeats a few)."""
    modes = tuple(int(p) for p in params.split(b";") if p and len(p) <= 5
                  and int(p) in _FOLLOWED)
    if len(_MODES) < 1024:
        _MODES[params] = modes
    return modes


class TermModes:
    """Follows a child's output; :meth:`resets` is what switches back what it left on."""

    __slots__ = ("_keypad", "_on", "_pending")

    def __init__(self) -> None:
        self._on: set[int] = set()  # followed modes away from their default
        self._keypad = False  # application keypad (ESC =)
        self._pending = b""  # the start of a sequence cut by the end of a read

    def feed(self, data: bytes) -> None:
        """Note the mode changes in ``data`` (the next bytes the child wrote)."""
        if self._pending:
            data = self._pending + data
            self._pending = b""
        # A one-byte search runs at memchr speed; only where there is a '?' does a
        # regex look for CSI ? Pm h|l. Claude Code 2.1.332 writes such a sequence
        # many times a frame: a byte-by-byte parse of each took ~25% of the
        # wrapper's CPU (bench/real_output.py); one findall per read and memoised
        # parameters: 146 -> 80 ms per 9 MiB of its session in 4 KiB reads.
        q = data.find(b"?")
        if q >= 0:
            on = self._on
            for params, final in _PRIVATE.findall(data, max(0, q - 2)):
                modes = _MODES.get(params)
                if modes is None:
                    modes = _modes(params)
                if not modes:
                    continue
                set_it = final == b"h"
                for mode in modes:
                    if set_it != (mode == _CURSOR):
                        on.add(mode)
                    else:
                        on.discard(mode)
        if b"=" in data or b">" in data:
            switches = _KEYPAD.findall(data)
            if switches:
                self._keypad = switches[-1] == b"\x1b="
        # An ESC, ESC [ or ESC [ ? Pm at the very end may start a sequence the next
        # read finishes.
        tail = _TAIL.search(data, max(0, len(data) - _MAX_PENDING - 3))
        if tail is not None:
            self._pending = tail.group()

    def resets(self) -> bytes:
        """The sequences that switch back every followed mode still on (b"" if none)."""
        out = []
        for mode in _ORDER:
            if mode in self._on:
                out.append(b"\x1b[?%dh" % mode if mode == _CURSOR else b"\x1b[?%dl" % mode)
            if mode == _KEYPAD_AFTER and self._keypad:
                out.append(b"\x1b>")
        return b"".join(out)


__all__ = ["TermModes"]
