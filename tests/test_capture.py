"""Capture: batching and the skip of output that cannot hold usage must give
exactly the events a full parse gives, however the output is chunked."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from claudewrap.parse.patterns import Matcher
from claudewrap.parse.scanner import Scanner
from claudewrap.wrap.capture import BATCH_BYTES, Capture

BLOCK = (b"\x1b[1mTotal cost:\x1b[22m            $%d.55\r\n"
         b"Usage by model:\r\n"
         b"   claude-sonnet-4-6:  1.2k input, %d output, 940.0k cache read, 50.0k cache write ($%d.55)\r\n"
         b"\r\n")
SEED = b"Tokens: %d input, 5 output\r\nCost: $0.0%d\r\n"
JSON = b'{"type":"result","session_id":"s","total_cost_usd":0.5,"usage":{"input_tokens":%d,"output_tokens":1}}\n'


def tui_noise(rng: random.Random, size: int) -> bytes:
    words = [b"hello", b"world", "\u00e9t\u00e9".encode(), "\u2500\u2500".encode(), b"lorem",
             b"ipsum", b"\xe2\x8e\xbf", b"note:", b"x{y}"]
    out = bytearray()
    while len(out) < size:
        r = rng.random()
        if r < 0.3:
            out += b"\x1b[%d;%dm" % (rng.randint(0, 107), rng.randint(0, 255))
        elif r < 0.35:
            out += b"\x1b[%d;%dH" % (rng.randint(1, 50), rng.randint(1, 200))
        elif r < 0.45:
            out += b"\r\n"
        else:
            out += rng.choice(words) + b" "
    return bytes(out)


def stream(seed: int) -> bytes:
    rng = random.Random(seed)
    parts = []
    for i in range(8):
        parts.append(tui_noise(rng, rng.choice([100, 5000, BATCH_BYTES + 17, 2 * BATCH_BYTES])))
        parts.append(b"\r\n" + rng.choice([BLOCK % (i, i + 100, i), SEED % (i + 1, i % 10),
                                             JSON % (i + 7)]))
    return b"".join(parts)


def full_parse(data: bytes) -> list[tuple[object, ...]]:
    scanner, matcher = Scanner(), Matcher()
    events = matcher.feed(scanner.feed(data)) + matcher.feed(scanner.flush()) + matcher.flush()
    seen, out = set(), []
    for e in events:
        if e.values_key() not in seen:
            seen.add(e.values_key())
            out.append(e.values_key())
    return out


def captured(data: bytes, cuts: list[int], idle_every: int) -> list[tuple[object, ...]]:
    cap = Capture(session="t", write=False)
    pos = 0
    for n, cut in enumerate(sorted(set(cuts)) + [len(data)]):
        cap.feed(data[pos:cut])
        pos = cut
        if idle_every and n % idle_every == 0:
            cap.idle()
    assert cap.close() is None
    return [(r.kind, r.model, r.input_tokens, r.output_tokens, r.cache_read_tokens,
             r.cache_write_tokens, r.cost_usd, r.request_id) for r in cap.records]


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), data=st.data())
def test_batched_and_skipping_capture_equals_full_parse(seed: int, data: st.DataObject) -> None:
    raw = stream(seed)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=60))
    idle_every = data.draw(st.integers(0, 5))
    expected = full_parse(raw)
    assert len(expected) == 8
    assert captured(raw, cuts, idle_every) == expected


def test_output_without_trigger_words_is_skipped_not_parsed() -> None:
    cap = Capture(session="t", write=False)
    rng = random.Random(1)
    cap.feed(tui_noise(rng, 4 * BATCH_BYTES))
    cap.idle()
    assert cap._scanner is not None
    # The scanner kept only its place: the partial line after the last LF.
    assert len(cap._scanner.partial) < 2000
    cap.feed(b"Tokens: 3 input, 4 output\r\nok\r\n")
    cap.close()
    assert [(r.input_tokens, r.output_tokens) for r in cap.records] == [(3, 4)]


PRELOAD = """
import sys, time
from claudewrap.wrap.capture import Capture
cap = Capture(session="s", write=False)
cap.preload(("claudewrap.sources.transcripts",), delay=0.05)
if sys.argv[1] == "ends at once":
    cap.close()
time.sleep(0.5)
print(sorted(m for m in ("claudewrap.parse.patterns", "claudewrap.sources.transcripts")
             if m in sys.modules))
"""


def test_preload_loads_while_claude_runs_and_not_after_it_ended() -> None:
    # Once claude runs, the parser and what the end of the run reads load in a
    # thread after a short delay, so they are in when claude exits; a claude
    # that ended before the delay loads nothing (close() imports what it needs).
    import subprocess
    import sys

    def loaded(case: str) -> str:
        out = subprocess.run([sys.executable, "-c", PRELOAD, case], capture_output=True,
                             text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert loaded("runs") == "['claudewrap.parse.patterns', 'claudewrap.sources.transcripts']"
    assert loaded("ends at once") == "[]"
