"""The relay parses in slices when it has nothing else to do (Capture.step,
issue 14 item 2), and RawStarts finds a batch's places in one go: what is
recorded must not depend on when step() is called, and the places found must
be the ones the definition names."""

from __future__ import annotations

import random
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from test_capture_sparse import PANEL, full_parse, noise

from claudewrap.parse.patterns import _RAW_UNICODE, RawStarts
from claudewrap.wrap.capture import BACKLOG_BYTES, BATCH_BYTES, Capture

CAPTURES = Path(__file__).parent / "captures"
SESSIONS = sorted(CAPTURES.glob("*/interactive_session.typescript"))


def sliced(data: bytes, reads: list[int], steps: list[int]) -> list[tuple[object, ...]]:
    """Records of ``data`` fed in reads of the given sizes, with step() called
    after the reads whose index is in ``steps`` (as the relay does when idle)."""
    cap = Capture(session="t", write=False)
    pos = 0
    i = 0
    while pos < len(data):
        size = reads[i % len(reads)]
        cap.feed(data[pos:pos + size])
        assert cap.backlog < BACKLOG_BYTES  # kept, never more than the backlog limit
        pos += size
        if i in steps:
            for _ in range(steps.count(i)):
                cap.step()
        i += 1
    assert cap.close() is None
    assert cap.backlog == 0
    return [(r.kind, r.model, r.input_tokens, r.output_tokens, r.cache_read_tokens,
             r.cache_write_tokens, r.cost_usd, r.request_id) for r in cap.records]


@settings(max_examples=15, deadline=None)
@given(which=st.sampled_from(SESSIONS), loops=st.integers(1, 8), data=st.data())
def test_real_sessions_parsed_in_slices_record_what_a_full_parse_records(
        which: Path, loops: int, data: st.DataObject) -> None:
    raw = which.read_bytes() * loops
    reads = data.draw(st.lists(st.integers(1, 5000), min_size=1, max_size=8))
    steps = data.draw(st.lists(st.integers(0, 400), max_size=60))
    expected = full_parse(raw)
    assert expected
    assert sliced(raw, reads, steps) == expected


def test_panels_with_new_numbers_between_noise_parsed_in_slices() -> None:
    rng = random.Random(3)
    parts = []
    for n in range(40):
        parts.append(noise(rng, rng.randint(100, 3 * BATCH_BYTES)))
        parts.append(b"\r\x1b[1B" + PANEL % (1000 + n, n))
    raw = b"".join(parts)
    expected = full_parse(raw)
    assert len(expected) == 40
    # Steps with 12-60 KiB kept (slices of BATCH_BYTES), a few bytes kept, none.
    for reads, steps in (([4095], list(range(0, 10_000, 3))), ([4095], list(range(0, 10_000, 7))),
                         ([1, 700, 4095, 4095, 4095], [0, 5, 6, 7, *range(20, 900, 9)]),
                         ([65536], list(range(100))), ([4095], [])):
        assert sliced(raw, reads, steps) == expected


# --- RawStarts against its definition -----------------------------------------

_ESCAPE = (rb"\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
           rb"|\x1b[\x20-\x2f]*[\x30-\x7e]?|[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
_BEFORE_COLON = re.compile(rb"(?:" + _ESCAPE + rb"|[ \t])*")
_ONE_ESCAPE = re.compile(_ESCAPE)
# What a keyword's patterns need right after its colon (and escapes, each read
# whole, and blanks): a number ("Tokens:"), "$" ("Usage:"), either ("Cost:"),
# nothing ("Model:"); or a character the scanner drops (a C1 control) or the
# patterns' \s or \d take (a Unicode blank or digit).
_NEXT = {b"cost": "0123456789$.", b"tokens": "0123456789", b"usage": "$"}
_UNICODE_NEXT = re.compile(r"[\s\d\x80-\x9f]")


def _needs_next(word: bytes, raw: bytes, at: int) -> bool:
    """Whether raw[at:] reads as escapes and blanks, a colon, then (for all
    keywords but "model") escapes and blanks up to a character that can go on
    ``word``'s pattern."""
    for colon in range(at, min(len(raw), at + 400)):
        if raw[colon] != 0x3A or not _BEFORE_COLON.fullmatch(raw, at, colon):
            continue
        if word not in _NEXT:
            return True
        pos = colon + 1
        while pos < len(raw):
            if raw[pos] in b" \t":
                pos += 1
                continue
            escape = _ONE_ESCAPE.match(raw, pos)
            if escape is None:
                break
            pos = escape.end()
        char = raw[pos:pos + 4].decode("utf-8", "replace")[:1]
        if char and (char in _NEXT[word] or (char > "\x7f" and _UNICODE_NEXT.match(char))):
            return True
    return False


_LINE_START = re.compile(rb"(?:^|[\n\r\x0b\x0c]|\x1b\[[0-9;]*[HfABEFdJ]|\x1b\[[01]?G|\x1b[DEM8c])"
                         rb"(?:" + _ESCAPE + rb")*\Z")


def defined_places(raw: bytes) -> list[int]:
    """Every offset, tested one by one: a keyword (any case) that only escapes,
    controls and blanks separate from a colon and that from what its pattern
    needs next (_needs_next), or a "{" that only escapes and controls separate
    from a line start (looked for in the 64 bytes before it)."""
    lowered = raw.lower()
    out = []
    for k in range(len(raw)):
        if raw[k:k + 1] == b"{":
            if _LINE_START.search(raw[max(0, k - 64):k]):
                out.append(k)
            continue
        for word in (b"cost", b"tokens", b"usage", b"model"):
            if lowered.startswith(word, k) and _needs_next(word, raw, k + len(word)):
                out.append(k)
    return out


def found_places(raw: bytes, step: int = 1) -> list[int]:
    starts = RawStarts(raw)
    out = []
    pos = 0
    while (k := starts.next(pos)) >= 0:
        out.append(k)
        pos = k + step
    return out


PIECES = [b"cost", b"COST", b"Tokens", b"usage", b"model", b"{", b":", b" ", b"\t", b"\x1b[",
          b"\x1b[1m", b"\x1b]0;t", b"\x07", b"\x1b\\", b"1", b"H", b"G", b"\n", b"\r", b"\x1b",
          b"x", b"\x01", b"0", b"\x1b[2G", b"\x1b[1G", b"\x1b[5;1H", b"\x1bc", b"\xe2\x94\x80",
          b"$", b".", b"7", b"\xc2\xa0"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40))
def test_raw_starts_are_the_defined_places(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    assert found_places(raw) == defined_places(raw)


def test_raw_starts_on_real_sessions_and_generated_noise() -> None:
    rng = random.Random(5)
    json_line = b'\r\n\x1b[2m{"type": "result", "total_cost_usd": 0.25}\x1b[22m\r\n'
    for raw in [s.read_bytes() for s in SESSIONS] + [
            noise(rng, 20_000) + PANEL % (5, 5) + json_line + noise(rng, 5_000) + json_line]:
        expected = defined_places(raw)
        assert expected
        assert found_places(raw) == expected
        # asked from further on, as Capture does after a region it has read
        assert found_places(raw, 97) == [k for k in _every_from(expected, 97)]


def test_unicode_blanks_digits_and_c1_controls_can_follow_a_keyword_colon() -> None:
    # Every code point that \\s or \\d takes, or the scanner drops, starts as
    # _RAW_UNICODE says; accented letters and box drawing do not.
    starts = re.compile(_RAW_UNICODE)
    for code in range(0x80, 0x110000):
        char = chr(code)
        if 0xD800 <= code < 0xE000 or not _UNICODE_NEXT.match(char):
            continue
        assert starts.match(char.encode()), hex(code)
    for text in ("é", "─", "│", "╭", "✻", "⎿", "…", "·"):
        assert not starts.match(text.encode()), text
    for raw, places in ((b"Tokens:\xc2\xa012 input", [0]), (b"Tokens: \xd9\xa3 input", [0]),
                        (b"tokens: \xc3\xa9lan", []), (b"cost:\x1b[1C\xe2\x94\x80", []),
                        (b"Cost:\xe2\x80\x83$1", [0]), (b"Usage: 5", []), (b"usage:$", [0]),
                        (b"Cost:\x1b[1Cunknown", []), (b"cost:\x1b]0;1\x07x", []),
                        (b"Tokens:\x1b[1C12\x1b[1Cinput", [0]), (b"cost\x1b[1m:\x1b[22m $1", [0])):
        assert found_places(raw) == defined_places(raw) == places, raw


def _every_from(places: list[int], step: int) -> list[int]:
    out: list[int] = []
    pos = 0
    for k in places:
        if k >= pos:
            out.append(k)
            pos = k + step
    return out


def test_prose_naming_the_keywords_is_skipped_and_usage_among_it_recorded() -> None:
    # "Cost: unknown" (Claude Code's CSI 1 C between words) and "tokens: élan"
    # are no place; the usage lines among them are read and recorded.
    prose = (b"\x1b[2mCost:\x1b[1Cunknown\x1b[22m\r\n the tokens: \xc3\xa9lan usage: none\r\n"
             b"Model:\x1b[1Copus\r\n") * 300
    usage = b"\x1b[1mCost:\x1b[22m\x1b[1C$0.55\r\n\x1b[2mTokens:\x1b[1C1,234 input, 56 output\r\n"
    raw = prose + usage + prose
    assert len(found_places(prose)) == 300  # only the "Model:" lines
    expected = full_parse(raw)
    assert [(r[0], r[2], r[3], r[6]) for r in expected] == [
        ("delta", 0, 0, 0.55), ("delta", 1234, 56, None)]
    assert sliced(raw, [4095], list(range(0, 100, 2))) == expected


def dense(rng: random.Random, size: int, first: int) -> bytes:
    """Usage on every line (Tokens lines waiting for a Cost line among them),
    numbers from ``first`` on, new and repeated."""
    out = bytearray()
    n = first
    while len(out) < size:
        n += rng.choice((0, 1, 1, 2))
        out += rng.choice((b"\x1b[2mTokens: %d input, %d output\x1b[22m\x1b[K\r\x1b[1B" % (n, n % 7),
                           b"  \xe2\x8e\xbf  Usage: $%d.25 (%d tokens)\x1b[K\r\x1b[1B" % (n, n),
                           b"\x1b[1mCost:\x1b[22m $%d.5\r\x1b[1B" % n,
                           b"x\x1b[1Cy\x1b[12Gword\r\x1b[1B"))
    return bytes(out)


def test_dense_usage_read_whole_and_sparse_text_between_record_what_a_full_parse_does() -> None:
    # Batches that RawStarts finds mostly usage in make the next ones read
    # whole (Capture._whole); noise, panels and a Tokens line whose Cost line
    # comes after the switch back lie between, at every batch edge the steps make.
    rng = random.Random(5)
    parts = []
    for n in range(12):
        parts.append(dense(rng, rng.randint(BATCH_BYTES // 2, 5 * BATCH_BYTES), 1000 * n))
        parts.append(b"\x1b[2mTokens: %d input, 1 output\x1b[22m\r\x1b[1B" % (n + 7))
        parts.append(noise(rng, rng.randint(100, 3 * BATCH_BYTES)))
        parts.append(b"Cost: $%d.5\r\x1b[1B" % n + b"\r\x1b[1B" + PANEL % (1000 + n, n))
    raw = b"".join(parts)
    expected = full_parse(raw)
    assert len(expected) > 1000
    for reads, steps in (([4095], list(range(0, 10_000, 3))), ([4095], list(range(0, 10_000, 7))),
                         ([1, 700, 4095, 4095, 4095], [0, 5, 6, 7, *range(20, 900, 9)]),
                         ([65536], list(range(100))), ([4095], [])):
        assert sliced(raw, reads, steps) == expected
    cap = Capture(session="t", write=False)
    whole = 0
    for pos in range(0, len(raw), 4095):
        cap.feed(raw[pos:pos + 4095])
        cap.step()
        whole = max(whole, cap._whole)
    assert whole  # the dense parts were read whole
