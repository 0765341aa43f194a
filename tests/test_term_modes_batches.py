"""TermModes keeps reads and looks at them 32 KiB at a time (or when asked
for its resets): what it finds does not depend on where the reads were cut,
nor on where it looked (after every read, or once for many)."""

from __future__ import annotations

import random

from claudewrap.wrap.term_modes import _KEEP, TermModes

SWITCHES = [b"\x1b[?1049h", b"\x1b[?1049l", b"\x1b[?25l", b"\x1b[?25h", b"\x1b[?1000;1006h",
            b"\x1b[?1000l", b"\x1b[?1006l", b"\x1b[?2004h", b"\x1b[?2004l", b"\x1b=", b"\x1b>",
            b"\x1b[?1h", b"\x1b[?1l", b"\x1b[?2026h", b"\x1b[?2026l", b"\x1b[?47h"]
TEXT = [b"x = 1 > 0? ", b"\x1b[1;31mred\x1b[0m ", b"what?\r\n", b"\x1b[2J\x1b[H", b"\xe2\x94\x80"]


def stream(rng: random.Random, size: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while total < size:
        parts.append(rng.choice(SWITCHES) if rng.random() < 0.2 else rng.choice(TEXT) * 20)
        total += len(parts[-1])
    return b"".join(parts)


def resets_of(data: bytes, cuts: list[int], look_at: set[int]) -> bytes:
    """Fed in reads cut at ``cuts``; resets() (which looks at what is kept)
    also asked after the reads whose index is in ``look_at``."""
    modes = TermModes()
    start = 0
    for i, cut in enumerate([*cuts, len(data)]):
        modes.feed(data[start:cut])
        start = cut
        if i in look_at:
            modes.resets()
    return modes.resets()


def test_looking_after_every_read_or_once_finds_the_same() -> None:
    rng = random.Random(14)
    for _ in range(30):
        data = stream(rng, rng.randint(50, 3000))
        whole = resets_of(data, [], set())
        cuts = sorted(rng.sample(range(len(data)), min(len(data) - 1, rng.randint(1, 40))))
        assert resets_of(data, cuts, set(range(len(cuts) + 1))) == whole
        assert resets_of(data, cuts, set()) == whole
        assert resets_of(data, cuts, set(rng.sample(range(len(cuts) + 1), 3))) == whole


def test_more_than_one_keep_of_output_cut_at_every_read() -> None:
    rng = random.Random(2)
    data = stream(rng, 3 * _KEEP)
    whole = resets_of(data, [], set())
    # pty-sized reads, and reads cut one byte before and after each switch near a keep's end
    cuts = list(range(4095, len(data), 4095))
    assert resets_of(data, cuts, set()) == whole
    for edge in (_KEEP, 2 * _KEEP):
        k = data.find(b"\x1b", edge - 64)
        for cut in range(k - 1, k + 10):
            assert resets_of(data, [cut], set()) == whole, cut
            assert resets_of(data, [cut - _KEEP // 2, cut], set()) == whole, cut
    # the last switch decides, even when it came in the last read kept
    modes = TermModes()
    modes.feed(b"\x1b[?1049h" + b"." * _KEEP)
    modes.feed(b"\x1b[?1049l\x1b[?1000h")
    assert modes.resets() == b"\x1b[?1000l"


def test_the_last_keypad_switch_among_many_lookalikes() -> None:
    # ">" and "=" without an ESC before them, fewer and more than the looks
    # at single bytes that come before the two-byte search
    for filler in (b"a > b = c ", b"=>" * 200, b">" * 5000, b"x" * 300):
        for first, last, left_on in ((b"\x1b>", b"\x1b=", True), (b"\x1b=", b"\x1b>", False)):
            modes = TermModes()
            modes.feed(first + filler * 3 + last + filler * 3)
            assert modes.resets() == (b"\x1b>" if left_on else b""), (filler[:10], first)
