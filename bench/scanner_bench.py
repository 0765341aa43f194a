"""Throughput of Scanner + Matcher on ANSI-heavy, TUI-like output.

Builds ~50 MB of what Claude Code's renderer writes (SGR colours around words,
cursor-forward instead of spaces, erase-line + cursor-up redraws, OSC titles,
cursor hide/show, box-drawing borders) with /cost blocks sprinkled in, feeds it
through Scanner and Matcher in 4 KiB and 64 KiB chunks, prints MB/s for each and
checks that every block's events were found.

    python bench/scanner_bench.py [--mb 50] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from claudewrap.parse.patterns import Matcher
from claudewrap.parse.scanner import Scanner
from claudewrap.store.records import UsageEvent

WORDS = [
    "the", "function", "returns", "a", "list", "of", "lines", "and", "the", "parser", "reads",
    "each", "one", "then", "writes", "tests", "for", "edge", "cases", "refactor", "module",
    "import", "path", "file", "error", "value", "check", "build", "run", "commit", "branch",
    "update", "config", "option", "message", "output", "render", "terminal", "screen",
    "cursor", "colour", "width", "height", "buffer", "stream", "chunk", "decode",
]
# Claude Code's themes are truecolor; some 256-colour and plain attributes.
COLOURS = (
    [b"\x1b[38;2;%d;%d;%dm" % rgb for rgb in ((215, 119, 87), (153, 153, 153), (78, 186, 101),
                                              (255, 107, 128), (177, 185, 249), (255, 193, 7))] * 2
    + [b"\x1b[38;5;%dm" % n for n in (33, 114, 174, 246)]
    + [b"\x1b[1m", b"\x1b[2m"]
)
RESETS = [b"\x1b[39m", b"\x1b[22m", b"\x1b[23m", b"\x1b[27m", b"\x1b[0m"]


def tui_line(rng: random.Random) -> bytes:
    """One rendered line: 80-200 visible characters, ~30% escape bytes."""
    target = rng.randint(80, 200)
    parts: list[bytes] = []
    width = 0
    if rng.random() < 0.3:
        parts.append("│ ".encode())
        width += 2
    while width < target:
        word = rng.choice(WORDS).encode()
        r = rng.random()
        if r < 0.11:
            parts.append(rng.choice(COLOURS) + word + rng.choice(RESETS))
        else:
            parts.append(word)
        gap = rng.random()
        if gap < 0.1:
            n = 1 if rng.random() < 0.5 else rng.randint(2, 20)
            parts.append(b"\x1b[C" if n == 1 else b"\x1b[%dC" % n)
            width += n
        else:
            parts.append(b" ")
            width += 1
        width += len(word)
    end = rng.random()
    if end < 0.6:
        parts.append(b"\x1b[K\r\n")
    elif end < 0.85:
        parts.append(b"\r\n\x1b[2K\x1b[1A\x1b[2K\x1b[G")
    elif end < 0.95:
        parts.append(b"\x1b[%d;1H" % rng.randint(1, 60))
    else:
        parts.append("\x1b]0;✳ Claude Code\x07\x1b[?25l\r\n\x1b[?25h".encode())
    return b"".join(parts)


Expected = tuple[str, int, int, int, int, float]


def cost_block(rng: random.Random, index: int) -> tuple[bytes, list[Expected]]:
    """A rendered /cost block with distinct numbers, and the events it must yield."""
    models = rng.sample(["claude-sonnet-4-6", "claude-opus-4-8[1m]", "claude-haiku-4-5"],
                        rng.randint(1, 2))
    label = rng.choice([b"Total cost:", b"Estimated cost:"])
    rows = b"".join(
        b"\x1b[2m%s:\x1b[22m\x1b[2C%d.%dk input, %d output, %d.0k cache read, "
        b"%d.0k cache write ($%d.%02d)\x1b[K\r\n"
        % (m.encode(), index, k, 100 + index, index * 3, k, index, k)
        for k, m in enumerate(models)
    )
    block = (
        b"\x1b[2K\x1b[1mSession\x1b[22m\r\n"
        b"\x1b[1m" + label + b"\x1b[22m\x1b[9C$%d.%02d\x1b[K\r\n" % (index, index % 100)
        + b"\x1b[1mTotal duration (API):\x1b[22m\x1b[2C6m 20s\r\n"
        b"\x1b[1mTotal code changes:\x1b[22m\x1b[4C0 lines added, 0 lines removed\r\n"
        b"\x1b[1mUsage by model:\x1b[22m\r\n" + rows
        + "\x1b[2m←/→ to switch · Esc to close\x1b[22m\r\n".encode()
    )
    expected = [
        (m.replace("[1m]", ""), index * 1000 + k * 100, 100 + index, index * 3000, k * 1000,
         round(index + k / 100, 2))
        for k, m in enumerate(models)
    ]
    return block, expected


def build(mb: float, seed: int) -> tuple[bytes, list[Expected]]:
    rng = random.Random(seed)
    pool = [tui_line(rng) for _ in range(4000)]
    avg = sum(map(len, pool)) / len(pool)
    count = int(mb * 1_000_000 / avg)
    lines = rng.choices(pool, k=count)
    expected: list[Expected] = []
    for index in range(1, 21):
        block, block_events = cost_block(rng, index)
        lines.insert(rng.randrange(len(lines)), block)
        expected += block_events
    return b"".join(lines), sorted(expected)


def found(events: list[UsageEvent]) -> list[Expected]:
    return sorted(
        (e.model or "", e.input_tokens, e.output_tokens, e.cache_read_tokens,
         e.cache_write_tokens, e.cost_usd if e.cost_usd is not None else -1.0)
        for e in events
    )


def run(data: bytes, chunk: int) -> tuple[float, list[UsageEvent]]:
    scanner = Scanner()
    matcher = Matcher()
    events: list[UsageEvent] = []
    start = time.perf_counter()
    for k in range(0, len(data), chunk):
        events += matcher.feed(scanner.feed(data[k:k + chunk]))
    events += matcher.feed(scanner.flush())
    events += matcher.flush()
    return time.perf_counter() - start, events


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=50.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    data, expected = build(args.mb, args.seed)
    text = data.decode()
    escapes = sum(map(len, re.findall(r"\x1b\[[0-9;?]*[@-~]|\x1b\][^\x07]*\x07", text)))
    print(f"input: {len(data) / 1e6:.1f} MB, {escapes / len(text):.0%} escape characters, "
          f"{len(expected)} events expected")
    ok = True
    for chunk in (4096, 65536):
        seconds, events = run(data, chunk)
        good = found(events) == expected
        ok = ok and good
        print(f"{chunk // 1024:>3} KiB chunks: {len(data) / 1e6 / seconds:6.1f} MB/s "
              f"({seconds:.2f} s), {len(events)} events{'' if good else ' MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
