"""Capture reads only the lines that can hold usage (issue 14 item 2): what it
records must still be what a full parse of every line records, on real Claude
Code output and on the places where skipping could go wrong (a keyword cut
between batches, a line longer than a batch, a redraw with new numbers)."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from claudewrap.parse.patterns import Matcher
from claudewrap.parse.scanner import Scanner
from claudewrap.wrap.capture import BATCH_BYTES, Capture

CAPTURES = Path(__file__).parent / "captures"  # copies of ../shared/captures' sessions
SESSIONS = sorted(CAPTURES.glob("*/interactive_session.typescript"))
# The first line stays the same when the numbers below it change.
PANEL = (b"\x1b[1B \x1b[3G\x1b[1mEstimated cost:\x1b[22m         $0.3392\x1b[K\r"
         b"\x1b[1B \x1b[3G\x1b[1mTotal duration (API):\x1b[22m   0s\x1b[K\r"
         b"\x1b[1B  \x1b[1mUsage by model:\x1b[22m\x1b[K\r\x1b[2C\x1b[1B\x1b[1mclaude-opus-5-5:"
         b"\x1b[27G\x1b[22m%d\x1b[32Ginput,\x1b[39G12.0k\x1b[45Goutput,\x1b[53G0\x1b[55Gcache"
         b"\x1b[61Gread,\x1b[67G0\x1b[69Gcache\x1b[75Gwrite\x1b[81G($0.%04d)\x1b[K\r"
         b"\x1b[1B \x1b[3G\xe2\x86\x90/\xe2\x86\x92 to switch \xc2\xb7 Esc to close\x1b[K\r")


def noise(rng: random.Random, size: int) -> bytes:
    """Claude-Code-like screen text: colons, braces, cursor moves, no usage."""
    words = [b"note:", b"src/app.py:42", b'x{"id": 1}', b"\x1b[12Gword", b"x\x1b[1Cy",
             "\u2500\u2500".encode(), b"\x1b[38;5;246mgrey\x1b[39m", b"usage", b"model"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + (b"\r\x1b[1B" if rng.random() < 0.2 else b" ")
    return bytes(out)


def full_parse(data: bytes) -> list[tuple[object, ...]]:
    """Every line cleaned and matched: what Capture must agree with."""
    scanner, matcher = Scanner(), Matcher()
    events = matcher.feed(scanner.feed(data)) + matcher.feed(scanner.flush()) + matcher.flush()
    seen: list[tuple[object, ...]] = []
    for event in events:
        if event.values_key() not in seen:
            seen.append(event.values_key())
    return seen


def captured(data: bytes, cuts: list[int]) -> list[tuple[object, ...]]:
    cap = Capture(session="t", write=False)
    pos = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        cap.feed(data[pos:cut])
        pos = cut
    assert cap.close() is None
    return [(r.kind, r.model, r.input_tokens, r.output_tokens, r.cache_read_tokens,
             r.cache_write_tokens, r.cost_usd, r.request_id) for r in cap.records]


@settings(max_examples=10, deadline=None)
@given(which=st.sampled_from(SESSIONS), loops=st.integers(1, 12), data=st.data())
def test_real_sessions_cut_anywhere_record_what_a_full_parse_records(
        which: Path, loops: int, data: st.DataObject) -> None:
    raw = which.read_bytes() * loops
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=40))
    expected = full_parse(raw)
    assert expected  # the session's /cost panel
    assert captured(raw, cuts) == expected
    assert captured(raw, list(range(0, len(raw), 4096))) == expected  # as a pty reads


def test_redrawn_panel_with_new_numbers_is_recorded_again() -> None:
    rng = random.Random(3)
    data = b"".join(noise(rng, 20_000) + b"\r" + PANEL % (1000 + n // 2, n // 2 * 100)
                    for n in range(8))  # each panel twice, then with new numbers
    records = captured(data, [])
    assert [r[2] for r in records] == [1000, 1001, 1002, 1003]
    assert records == full_parse(data)


@settings(max_examples=20, deadline=None)
@given(at=st.integers(0, 12), seed=st.integers(0, 1000))
def test_keyword_cut_between_batches_is_found(at: int, seed: int) -> None:
    head = noise(random.Random(seed), BATCH_BYTES) + b"\r\n"
    line = b"\x1b[1mTokens:\x1b[22m 1234 input, 56 output\r\nreply\r\n"
    cap = Capture(session="t", write=False)
    cap.feed(head + line[:at])  # one batch ends inside "Tokens:"
    cap.feed(line[at:] + noise(random.Random(seed + 1), 3000))
    cap.close()
    assert [(r.input_tokens, r.output_tokens) for r in cap.records] == [(1234, 56)]


def test_json_result_longer_than_a_batch_is_recorded() -> None:
    long_text = "x" * (3 * BATCH_BYTES)
    result = ('{"type":"result","result":"' + long_text + '","session_id":"s",'
              '"total_cost_usd":0.5,"usage":{"input_tokens":7,"output_tokens":1}}\n').encode()
    data = noise(random.Random(5), 70_000) + b"\r\n" + result + noise(random.Random(6), 9000)
    records = captured(data, list(range(0, len(data), 4096)))
    assert [(r[2], r[3], r[6]) for r in records] == [(7, 1, 0.5)]


def test_line_without_line_ends_longer_than_a_batch_costs_no_memory() -> None:
    cap = Capture(session="t", write=False)
    for _ in range(64):  # a TUI that only moves the cursor: no CR, no LF
        cap.feed(b"\x1b[5;1Hhello:\x1b[38;5;1m{x}\x1b[6;9Hworld " * 1000)
    assert len(cap._carry) <= 1 << 16
    cap.feed(b"\r\nTokens: 9 input, 8 output\r\nok\r\n")
    cap.close()
    assert [(r.input_tokens, r.output_tokens) for r in cap.records] == [(9, 8)]
