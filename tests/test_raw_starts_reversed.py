"""RawStarts finds keyword places from their colons in the reversed batch
(patterns._keyword_places), and searches forwards where an OSC string could
make one colon serve two keywords: the places are the defined ones either way,
OSC strings around, inside and between keywords included."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from test_capture_slices import defined_places, found_places

from claudewrap.parse.patterns import _RAW_SAMPLE, _keyword_places, _keyword_places_forwards

# Pieces that make keywords share colons: OSC strings (ended by BEL, ST or not
# at all) holding keywords and colons, CSI parameters with colons.
PIECES = [b"cost", b"Usage", b"tokens", b"MODEL", b":", b" ", b"\t", b"\x1b]", b"\x1b]0;",
          b"\x1b]8;;", b"\x07", b"\x1b\\", b"\x1b[38:5:1m", b"\x1b[", b"\x1b", b"m", b"x",
          b"\x01", b"{", b"\n", b"\x1b[1G", b"e", b"t", b"usag", b"co", b"1", b"$", b".",
          b"\x1b[3:", b"\xe2\x80\x83"]


# Before a batch, this many bytes without a colon make RawStarts read it from
# its colons whatever it holds (batches whose first 8 KiB are dense with
# colons are searched forwards).
PAD = b"x" * _RAW_SAMPLE


def keyword_places(raw: bytes) -> list[int]:
    return [k for k in defined_places(raw) if raw[k:k + 1] != b"{"]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30))
def test_places_from_colons_are_the_defined_places(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    assert found_places(raw) == defined_places(raw)
    expected = keyword_places(raw)
    assert _keyword_places_forwards(raw) == expected
    assert _keyword_places(PAD + raw) == [k + len(PAD) for k in expected]


def test_a_keyword_in_an_osc_string_before_another_on_the_same_colon() -> None:
    # "model" reaches the colon through the unfinished OSC holding "usage"
    for raw in (b"model\x1b]usage:", b"model\x1b]0;usage\x07:", b"\x1b]2;cost tokens:",
                b"x\x1b]8;;usage\x1b\\ model :", b"usage\x1b[38:2m:"):
        assert _keyword_places(raw) == defined_places(raw), raw
        assert _keyword_places(PAD + raw) == [k + len(PAD) for k in defined_places(raw)], raw


def test_long_random_batches() -> None:
    rng = random.Random(7)
    for _ in range(40):
        raw = b"".join(rng.choice(PIECES) for _ in range(rng.randint(100, 2000)))
        expected = keyword_places(raw)
        assert _keyword_places(raw) == expected
        assert _keyword_places(PAD + raw) == [k + len(PAD) for k in expected]


# What may stand before a "{": line ends, the cursor moves that start a line
# (and those that do not), escapes of every kind (OSC strings holding line ends,
# braces and ST), controls and text.
BRACE_LEAD = [b"\n", b"\r", b"\x0b", b"\x0c", b"\x1b[2;5H", b"\x1b[H", b"\x1b[1G", b"\x1b[G",
              b"\x1b[0G", b"\x1b[12G", b"\x1b[3B", b"\x1b[1C", b"\x1bD", b"\x1bc", b"\x1b8",
              b"\x1b[38;5;1m", b"\x1b[?25l", b"\x1b[", b"\x1b", b"\x1b]0;t\n{", b"\x1b]", b"\x07",
              b"\x1b\\", b"\\", b"]", b"[", b"\x1b(B", b"\x01", b"\x7f", b"x", b" ", b"1", b";",
              b"G", b"H", b"{", b"\xe2\x94\x80", b"\x1b[" + b"1;" * 40 + b"m"]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(BRACE_LEAD), max_size=40))
def test_a_brace_line_start_read_backwards_is_the_defined_one(pieces: list[bytes]) -> None:
    # RawStarts reads the 64 bytes before a "{" backwards
    # (_RAW_LINE_START_REVERSED_RE); the definition reads them forwards.
    raw = b"".join(pieces) + b"{"
    assert found_places(raw) == defined_places(raw)
    assert found_places(raw[1:] or b"{") == defined_places(raw[1:] or b"{")
