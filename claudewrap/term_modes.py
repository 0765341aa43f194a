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
_MAX_MISSES = 8  # '?' not after ESC [ in one read before searching for ESC [ ? instead
_KEYPAD = re.compile(rb"\x1b[=>]")


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
        # One-byte searches run at memchr speed; a two-byte one (ESC [ ?, ESC =)
        # at about 2 ns a byte, ESC being everywhere in TUI output, so each is
        # made only where its rare byte is there. Per MiB in 4 KiB reads: 0.5 ms
        # for bench/passthrough.py's TUI text, 2 ms for coloured source code
        # (two rfind() for the keypad: 3.5 ms); the relay with its tap: ~30 ms.
        i = data.find(b"?")
        misses = 0
        while i >= 0:
            if i >= 2 and data[i - 1] == 0x5B and data[i - 2] == 0x1B:  # ESC [ ?
                i = self._private(data, i + 1)
                if i < 0:
                    break
            else:
                misses += 1
                if misses > _MAX_MISSES:  # many '?' in text: search for ESC [ ? itself
                    i = data.find(b"\x1b[?", i)
                    i = i + 2 if i >= 0 else -1
                    continue
            i = data.find(b"?", i + 1)
        if b"=" in data or b">" in data:
            switches = _KEYPAD.findall(data)
            if switches:
                self._keypad = switches[-1] == b"\x1b="
        if not self._pending:
            # An ESC or ESC [ at the very end may start a sequence the next read finishes.
            if data.endswith(b"\x1b"):
                self._pending = b"\x1b"
            elif data.endswith(b"\x1b["):
                self._pending = b"\x1b["

    def _private(self, data: bytes, start: int) -> int:
        """Apply ``CSI ? Pm h|l`` whose parameters begin at ``start``; where it ends
        (-1: it runs past the end of ``data`` and is kept for the next read)."""
        end = start
        size = len(data)
        while end < size and (0x30 <= data[end] <= 0x39 or data[end] == 0x3B):  # digits and ;
            end += 1
        if end == size:
            if end - start < _MAX_PENDING:
                self._pending = data[start - 3:]
            return -1
        final = data[end]
        if final in (0x68, 0x6C):  # h, l
            on = final == 0x68
            for param in data[start:end].split(b";"):
                if not param or len(param) > 5:
                    continue
                mode = int(param)
                if mode in _FOLLOWED:
                    if on != (mode == _CURSOR):
                        self._on.add(mode)
                    else:
                        self._on.discard(mode)
        return end

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
