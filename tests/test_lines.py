"""The journal line decoders agree: json for a few lines (usage/lines.py's
_decode_small, which spares a warm read the msgspec import) and msgspec's typed
decoder for many. Every line, valid or not, is taken or refused by both alike,
with the same values and types."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from claudewrap.store.records import MAX_COST_USD, MAX_TOKENS
from claudewrap.usage import lines

FAST = lines._fast_decoder()

ODD = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False),
                st.text(max_size=3), st.just([]), st.just({}), st.just({"a": 1}),
                st.integers(MAX_TOKENS - 1, MAX_TOKENS + 1), st.just(1e400),
                st.just(float(MAX_COST_USD)), st.just(-0.0), st.just(2**70))
COUNT = st.one_of(st.integers(0, 10**6), st.just(1.0), ODD)
NAME = st.one_of(st.none(), st.text(max_size=5), ODD)
FIELD = {
    "ts": st.one_of(st.just("2026-11-30T10:00:00.000Z"), ODD),
    "session": st.one_of(st.text(max_size=4), ODD),
    "source": st.one_of(st.sampled_from(["pty", "otel", "transcript"]), ODD),
    "kind": st.one_of(st.sampled_from(["delta", "total", "weird"]), ODD),
    "model": NAME, "project": NAME, "host": NAME, "tmux_pane": NAME, "screen_session": NAME,
    "request_id": NAME, "claude_session": NAME, "agent": NAME, "command": NAME,
    "input_tokens": COUNT, "output_tokens": COUNT, "cache_read_tokens": COUNT,
    "cache_write_tokens": COUNT,
    "cost_usd": st.one_of(st.floats(0, 10, allow_nan=False), st.integers(0, 3), ODD),
    "cost_estimated": st.one_of(st.booleans(), ODD), "approximate": st.one_of(st.booleans(), ODD),
    "tags": st.one_of(st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
                      st.dictionaries(st.text(max_size=2), ODD, max_size=2), ODD),
    "v": ODD, "cwd": NAME, "pattern": NAME, "tmux_session": NAME, "extra": ODD,
}
RECORD = st.fixed_dictionaries(
    {"ts": FIELD["ts"], "session": FIELD["session"]},
    optional={k: v for k, v in FIELD.items() if k not in ("ts", "session")})


def encode(d: dict[str, Any]) -> bytes:
    text = json.dumps(d, ensure_ascii=False, separators=(",", ":"))
    return text.replace("Infinity", "1e400").encode("utf-8", "surrogatepass")


def both(block: bytes) -> tuple[Any, Any]:
    out = []
    for decode in (FAST, lines._decode_small):
        try:
            out.append([[(type(getattr(r, f)), getattr(r, f)) for f in lines._FIELDS]
                        for r in decode(block)])
        except ValueError:
            out.append("refused")
    return out[0], out[1]


@settings(max_examples=1500, deadline=None)
@given(st.lists(RECORD, min_size=1, max_size=4))
def test_both_decoders_take_and_refuse_the_same_lines(records: list[dict[str, Any]]) -> None:
    block = b"".join(encode(d) + b"\n" for d in records)
    fast, small = both(block)
    assert fast == small, block


def test_the_odd_spellings_are_decided_alike() -> None:
    good = b'{"ts":"2026-11-30T10:00:00.000Z","session":"s"'
    for tail in (b"}", b',"input_tokens":1.0}', b',"input_tokens":1e3}', b',"cost_usd":NaN}',
                 b',"cost_usd":Infinity}', b',"cost_usd":-0.0}', b',"model":"\\ud800"}',
                 b',"x":{"\\udc00":1}}', b',"model":"\\ud83d\\ude00"}',
                 b',"model":"a","model":null}', b',"model":"a","model":3}', b"}\r",
                 b' , "tags" : { "k" : "v" } } ', b',"input_tokens":-0}', b',"kind":null}',
                 b'}\xff', b',"model":"\xc3\xa9"}', b',"input_tokens":true}',
                 b',"cost_usd":1}', b',"tags":{"a":null}}'):
        for block in (good + tail + b"\n", good + tail + b"\n\n" + good + b"}\n",
                      b"\xef\xbb\xbf" + good + tail + b"\n", b"  \n" + good + tail + b"\n"):
            fast, small = both(block)
            assert fast == small, block


def test_a_small_block_does_not_load_msgspec() -> None:
    import subprocess
    import sys

    code = ("import sys; from claudewrap.usage.lines import decode_lines; "
            "r = decode_lines(b'{\"ts\":\"t\",\"session\":\"s\",\"input_tokens\":3}\\n'); "
            "print(r[0].input_tokens, 'msgspec' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["3", "False"]


def test_a_cold_read_switches_to_msgspec_after_the_first_blocks() -> None:
    """The rollup reads 128 KiB blocks: json only for the first 256 KiB a process
    decodes (a warm read's new lines), msgspec for the rest of a cold read (json
    for every block made a cold `usage` of 1M records 4x slower)."""
    import subprocess
    import sys

    code = ("import sys; from claudewrap.usage.lines import decode_lines\n"
            "line = b'{\"ts\":\"t\",\"session\":\"s\",\"input_tokens\":3}\\n'\n"
            "block = line * (128 * 1024 // len(line))\n"
            "seen = []\n"
            "for _ in range(4):\n"
            "    decode_lines(block); seen.append('msgspec' in sys.modules)\n"
            "print(seen)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[False, False, True, True]"  # two blocks: < 256 KiB
