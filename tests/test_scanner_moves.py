"""The scanner's cleaning turns the common cursor moves (CSI 1 C, CSI 1 B,
CSI n G past column 1) into text without a Python call per sequence: the
same text as one callback per kept sequence (_KEPT_RE with _kept) gives."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from claudewrap.parse.scanner import _CONTROL_RE, _DROP_RE, _KEPT_RE, _clean, _kept, clean_lines


def reference(text: str, controls: bool) -> str:
    """_clean as it was: every kept sequence through _kept."""
    if "\x1b" in text:
        text = "".join(_DROP_RE.split(text))
        if "\x1b" in text:
            text = _KEPT_RE.sub(_kept, text)
    if controls or "\x07" in text:
        text = _CONTROL_RE.sub("", text)
    return text.replace("\t", " ")


PIECES = ["\x1b[", "\x1b[C", "\x1b[1C", "\x1b[12C", "\x1b[1B", "\x1b[B", "\x1b[2B", "\x1b[G",
          "\x1b[1G", "\x1b[0G", "\x1b[01G", "\x1b[00G", "\x1b[2G", "\x1b[9G", "\x1b[10G",
          "\x1b[123G", "\x1b[1;5G", "\x1b[2;5G", "\x1b[12;5G", "\x1b[;3G", "\x1b[:2G", "G", "C",
          "B", "1", "2", ";", "[", "\x1b", "x", " ", "\n", "\r", "\x1b[5;1H", "\x1b[38;5;1m",
          "\x1b]0;t\x07", "\x1b[?25l", "\x1bM", "\x07", "\t", "é"]


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30), st.booleans())
def test_cleaning_is_the_kept_sequences_one_by_one(pieces: list[str], controls: bool) -> None:
    text = "".join(pieces)
    assert _clean(text, controls) == reference(text, controls)


def test_claude_like_screens() -> None:
    rng = random.Random(3)
    for _ in range(200):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(50, 400)))
        assert _clean(text, True) == reference(text, True)
    raw = "\x1b[38;5;246m\x1b[3GTokens:\x1b[1C12,345\x1b[12Ginput\x1b[K\r\x1b[1B\x1b[1Gnext\x1b[2;1Hrow"
    assert clean_lines(raw.encode()) == [" Tokens: 12,345 input", "next", "row"]
