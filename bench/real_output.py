#!/usr/bin/env python3
"""The wrapper on what Claude Code really prints, side by side with script(1).

bench/passthrough.py's text holds no ":" and no "{", so it only measures the
path that skips parsing. This one uses real bytes and text like them (issue 14
item 2), and prints, in one run:

* throughput ratios claudewrap/script and claudewrap/direct (`cat FILE` on a
  pty) on (a) each captured interactive session in ../shared/captures (or
  $CLAUDEWRAP_CAPTURES) looped to --mb, (b) generated Claude-Code-like text
  (colours, cursor moves, box drawing, spinner redraws, sentences with ":" and
  "{...}", paths, JSON), (c) that text with a usage line on every line (up to
  4,000 distinct records), (d) passthrough.py's text with usage words
  ("tokens:", "cost", ...) on every line;
* CPU seconds per 100 MB (child and wrapper together, from wait4; the
  wrapper's own is that less the direct run's);
* the same for the relay alone (``run_claude(capture=False)``, what ``run
  --no-capture`` does, started as ``claudewrap run --`` is, without click:
  the option sent it through click, 15-20 ms more start-up than the others;
  what the parser costs is the difference);
* the same for a Python pty copy loop that does nothing else (no modes, no
  parse, no signals; bench/parser_offload.py's ``copy`` way): the floor any
  relay written in Python stands on; and
  the lowest and highest round's claudewrap/script, to show the machine's swing;
* how many bytes the child's pty holds for its reader (~4 KiB: a relay that
  spends time between reads holds the child up by as much);
* the fixed cost of a run (100 KB of real output, enough to load the parser),
  which is part of every ratio: at --mb 30 a run takes ~0.35 s;
* keystroke round trip through a raw echo while output flows at --flow-mbps
  (a writer in the same pty), direct, through script(1) and wrapped, each
  key to all three in turn: p50/p99 and what the wrapper adds (and script).

Throughput rounds are interleaved (direct, script, wrapper, direct, ...) and
ratios are the median of each round's own ratio: the machine is shared.

    python bench/real_output.py [--mb 100] [--rounds 3] [--samples 400] [--before REV]

``--before REV`` also runs the checkout at git REV (a clean venv of its own)
in the same rounds: its ratio to script is printed beside this one's, and its
keystrokes go in turn with the others.
"""

from __future__ import annotations

import argparse
import os
import pty
import random
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from passthrough import (  # one copy of the helpers
    USAGE_WORDS,
    clean_install,
    make_payload,
    pct,
    run_in_pty,
)

ROOT = Path(__file__).resolve().parent.parent
COPY_LOOP = Path(__file__).resolve().with_name("parser_offload.py")  # its "copy" way
CAPTURES = Path(os.environ.get("CLAUDEWRAP_CAPTURES", ROOT.parent / "shared" / "captures"))
KEY = b"\x01"  # the keystroke: a byte no payload holds, so its echo is found in the flood


def session_bytes(typescript: Path) -> bytes:
    """What the session wrote, without script(1)'s own first and last lines."""
    raw = typescript.read_bytes()
    start = raw.index(b"\n") + 1 if raw.startswith(b"Script started") else 0
    end = raw.rfind(b"\nScript done")
    return raw[start:end + 1 if end >= 0 else len(raw)]


RELAY_SCRIPT = """#!{python}
import sys
from claudewrap.main import exit_now
from claudewrap.wrap import runner
exit_now(runner.run_claude(sys.argv[1:], {options}).exit_status)
"""


def pty_holds(path: Path, pause: float = 0.001, reads: int = 50) -> int:
    """How many bytes a pty holds for its reader while the child floods it:
    the median read after the reader looked away for ``pause`` s (the child
    waits once that is full, so a relay that does anything between reads
    holds the child up by as much)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("cat", ["cat", str(path)])
    sizes = []
    try:
        for _ in range(reads):
            time.sleep(pause)
            try:
                sizes.append(len(os.read(fd, 1 << 20)))
            except OSError:  # the child has written it all (EIO)
                break
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)
    return int(statistics.median(sizes or [0]))


def relay_script(cw: str, options: str = "capture=False", name: str = "claudewrap-relay") -> str:
    """Beside the console script ``cw``: `claudewrap run --no-capture -- ARGS`
    (or the run_claude ``options`` given, e.g. ``otel=False`` for --no-otel)
    as main._run starts `claudewrap run -- ARGS` (no click)."""
    path = Path(cw).with_name(name)
    python = Path(cw).read_text().splitlines()[0][2:]
    path.write_text(RELAY_SCRIPT.format(python=python, options=options))
    path.chmod(0o755)
    return str(path)


def write_looped(path: Path, block: bytes, megabytes: float) -> None:
    with open(path, "wb") as fh:
        written = 0
        while written < megabytes * 1_000_000:
            fh.write(block)
            written += len(block)


WORDS = ("the", "function", "returns", "a", "list", "of", "lines", "parser", "reads", "each",
         "test", "module", "import", "path", "error", "value", "config", "option", "render",
         "terminal", "screen", "buffer", "stream", "chunk", "now", "I'll", "update", "file")
PATHS = ("src/app.py:42", "/home/dev/proj/claudewrap/scanner.py:118", "tests/test_x.py:7",
         "README.md", "package.json:3")


def claude_like(rng: random.Random, usage_every_line: bool) -> bytes:
    """One screenful of what Claude Code's renderer writes, ~4-8 KB."""
    out: list[str] = []

    def sentence() -> str:
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 12))]
        r = rng.random()
        if r < 0.3:
            words.insert(rng.randint(0, len(words)), rng.choice(PATHS))
        elif r < 0.5:
            words.append(f'{{"name": "x", "id": {rng.randint(0, 999)}}}')
        elif r < 0.6:
            words.insert(0, "Note:")
        elif r < 0.65:
            words.insert(1, rng.choice(("model:", "usage:", "cost:")))  # prose that names them
        # Claude Code places words with cursor moves (CSI n G / CSI n C), not spaces.
        col, parts = 3, []
        for w in words:
            parts.append(f"\x1b[{col}G{w}" if rng.random() < 0.5 else f"{w}\x1b[1C")
            col += len(w) + 1
        colour = rng.choice(("\x1b[38;5;246m", "\x1b[38;2;215;119;87m", "\x1b[1m", "\x1b[39m"))
        return f"{colour}{''.join(parts)}\x1b[39m\x1b[22m\x1b[K"

    width = rng.randint(60, 118)
    out.append("\x1b[38;5;174m╭" + "─" * width + "╮\x1b[39m\r\x1b[1B")
    for _ in range(rng.randint(10, 30)):
        if usage_every_line:
            n = rng.randrange(1000)  # a few distinct values: a redraw of the same is one record
            out.append(rng.choice((
                f"\x1b[2mTokens: {n * 37:,} input, {n * 11} output\x1b[22m",
                f"  ⎿  Usage: ${n / 997:.4f} ({n * 53} tokens)",
                f"\x1b[1mCost:\x1b[22m ${n / 991:.4f}",
                f"\x1b[38;5;246m│ Tokens: {n}.{n % 10}k input, {n % 97} output │",
            )) + "\x1b[K\r\x1b[1B")
        r = rng.random()
        if r < 0.15:
            # A spinner redrawn in place: CR, erase, new frame.
            for frame in "✻✽✶✢·":
                out.append(f"\r\x1b[2K\x1b[38;2;215;119;87m{frame}\x1b[39m Thinking… "
                           f"({rng.randint(1, 59)}s · esc to interrupt)")
            out.append("\r\x1b[1B")
        elif r < 0.25:
            out.append("\x1b[38;5;174m│\x1b[39m " + sentence() + f"\x1b[{width + 2}G│\r\x1b[1B")
        else:
            out.append(sentence() + "\r\x1b[1B")
    out.append("\x1b[38;5;174m╰" + "─" * width + "╯\x1b[39m\r\x1b[1B")
    out.append("\x1b[2m  Opus 5.5 · /home/dev/proj · ? for shortcuts\x1b[22m\x1b[K\r\x1b[3A")
    return "".join(out).encode()


def generated(megabytes: float, usage_every_line: bool, seed: int = 42) -> bytes:
    """About 2 MB of distinct screens (then looped to ``megabytes``)."""
    rng = random.Random(seed)
    parts: list[bytes] = []
    size = 0
    while size < min(megabytes, 2) * 1_000_000:
        parts.append(claude_like(rng, usage_every_line))
        size += len(parts[-1])
    return b"".join(parts)


FLOOD = """\
import os, sys, time
data = open(sys.argv[1], "rb").read()
rate = float(sys.argv[2]) * 1e6
step = 4096
t0 = time.monotonic()
sent = 0
parent = os.getppid()
while os.getppid() == parent:  # ends with the echo it runs beside
    for i in range(0, len(data), step):
        os.write(1, data[i:i + step])
        sent += step
        ahead = sent / rate - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
        if os.getppid() != parent:
            break
"""


def latency_under_flow(runs: list[tuple[list[str], dict[str, str]]],
                       samples: int) -> list[list[float]]:
    """Round trips (ms) of single keystrokes echoed while output flows, for
    each of ``runs`` (argv, env) at once: every key goes to each in turn (the
    first one alternating), and every terminal is drained all the while, so
    that what else the machine does falls on all of them alike (blocks of one
    after blocks of the other gave p99s that differed by up to 10 ms between
    two runs of the same code on a busy machine)."""
    procs = []
    for argv, env in runs:
        pid, fd = pty.fork()
        if pid == 0:
            os.execvpe(argv[0], argv, env)
        procs.append((pid, fd))
    fds = [fd for _, fd in procs]

    def drain(wait: float) -> list[int]:
        """Read what every terminal has within ``wait`` s; the fds whose output held KEY."""
        got = []
        for fd in select.select(fds, [], [], wait)[0]:
            if KEY in os.read(fd, 1 << 16):
                got.append(fd)
        return got

    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:  # let the flow start
        drain(0.05)
    times: list[list[float]] = [[] for _ in runs]
    for i in range(samples):
        order = range(len(fds)) if i % 2 == 0 else reversed(range(len(fds)))
        for k in order:
            t0 = time.perf_counter()
            os.write(fds[k], KEY)
            while True:
                if time.perf_counter() - t0 > 5:
                    raise SystemExit("no echo within 5 s")
                if fds[k] in drain(5):
                    break
            times[k].append((time.perf_counter() - t0) * 1000)
            # Keystrokes come at typing speed, not back to back.
            pause = time.perf_counter() + 0.005
            while time.perf_counter() < pause:
                drain(max(0.0, pause - time.perf_counter()))
    for pid, fd in procs:
        os.kill(pid, 15)
        while True:  # drain so that the children can end
            try:
                if not os.read(fd, 1 << 16):
                    break
            except OSError:
                break
        os.waitpid(pid, 0)
        os.close(fd)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--mb", type=float, default=100, help="MB per throughput run")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds")
    ap.add_argument("--samples", type=int, default=400, help="keystrokes per latency variant (0: none)")
    ap.add_argument("--flow-mbps", type=float, default=4.0, help="output rate while typing")
    ap.add_argument("--only", default="", help="comma list of payload names to run")
    ap.add_argument("--before", metavar="REV", help="also run the checkout at git REV")
    ap.add_argument("--no-latency", action="store_true", help="skip the keystroke test")
    args = ap.parse_args()
    if not shutil.which("script"):
        raise SystemExit("script(1) not found: apt-get install bsdutils")
    typescripts = sorted(CAPTURES.glob("*/interactive_session.typescript"))
    if not typescripts:
        raise SystemExit(f"no */interactive_session.typescript under {CAPTURES}:"
                         " set CLAUDEWRAP_CAPTURES to the captures folder")

    work = Path(tempfile.mkdtemp(prefix="cw-real-"))
    python, cw = clean_install(work)
    relay = relay_script(cw)
    old_cw = ""
    if args.before:
        old = work / "before"
        old.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before, "claudewrap"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        _, old_cw = clean_install(old, root=old)
    env = dict(os.environ, CLAUDEWRAP_JOURNAL=str(work / "j.jsonl"), TERM="xterm-256color")
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "CLAUDEWRAP_CLAUDE"):
        env.pop(name, None)
    cat = shutil.which("cat") or "/bin/cat"

    payloads: dict[str, Path] = {}
    for ts in typescripts:
        name = f"real {ts.parent.name.removeprefix('claude-code-')}"
        payloads[name] = work / f"{ts.parent.name}.bin"
        write_looped(payloads[name], session_bytes(ts), args.mb)
    payloads["generated"] = work / "generated.bin"
    write_looped(payloads["generated"], generated(args.mb, False), args.mb)
    payloads["usage every line"] = work / "usage.bin"
    write_looped(payloads["usage every line"], generated(args.mb / 4, True), args.mb / 4)
    # bench/passthrough.py's worst case: its words ("tokens:", "cost", ...) on every line.
    payloads["usage words"] = work / "words.bin"
    make_payload(payloads["usage words"], max(1, int(args.mb / 4)), USAGE_WORDS)
    if args.only:
        keep = {n.strip() for n in args.only.split(",")}
        payloads = {k: v for k, v in payloads.items() if k in keep}
        if not payloads:
            raise SystemExit(f"--only {args.only!r} names no payload; there are: real <version>,"
                             " generated, usage every line, usage words")

    wrapped = dict(env, CLAUDEWRAP_CLAUDE=cat)
    run_in_pty([cw, "run", "--", "/dev/null"], wrapped)  # warm-up: bytecode, page cache
    if old_cw:
        run_in_pty([old_cw, "run", "--", "/dev/null"], wrapped)
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, python "
          f"{sys.version.split()[0]}; {args.rounds} interleaved rounds, medians")
    small = work / "small.bin"
    write_looped(small, session_bytes(typescripts[-1]), 0.1)

    def ways(path: Path) -> dict[str, list[str]]:
        """Each way to show ``path``: its argv."""
        out = {
            "direct": [cat, str(path)],
            "script": ["script", "-qfec", f"{cat} {path}", "/dev/null"],
            "cw": [cw, "run", "--", str(path)],
            # The relay alone (--no-capture): what the parser adds is the difference.
            "relay": [relay, str(path)],
            # The floor of any relay in Python: parser_offload.py's bare copy loop.
            "copy loop": [python, str(COPY_LOOP), "--way", "copy", str(path), os.devnull],
        }
        if old_cw:
            out["before"] = [old_cw, "run", "--", str(path)]
        return out

    fixed = ways(small)
    start_ms: dict[str, list[float]] = {k: [] for k in fixed}
    for _ in range(7):
        for key, argv in fixed.items():
            start_ms[key].append(run_in_pty(argv, env if key in ("direct", "script") else wrapped)[0] * 1000)
    print("fixed cost of a run (100 KB of real output), ms: "
          + ", ".join(f"{k} {statistics.median(v):.0f}" for k, v in start_ms.items()))
    print(f"{'payload':18s} {'MB':>5s} {'direct':>8s} {'script':>8s} {'cw MB/s':>8s}"
          f" {'cw/script':>9s} {'cw/direct':>9s} {'CPU s/100MB: script':>20s} {'cw':>6s}"
          f" {'cw own':>7s} {'relay/script':>12s} {'own':>6s} {'loop/script':>11s}"
          + (f" {'before/script':>13s} {'own':>6s}" if old_cw else "") + "  cw/script rounds")
    for name, path in payloads.items():
        size = path.stat().st_size
        variants = ways(path)
        secs: dict[str, list[float]] = {k: [] for k in variants}
        cpu: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.rounds):
            for key, argv in variants.items():
                (work / "j.jsonl").unlink(missing_ok=True)
                t, got, usage = run_in_pty(argv, wrapped if key in ("cw", "relay", "before")
                                           else env)
                c = usage.ru_utime + usage.ru_stime
                assert got >= size, (name, key, got, size)
                secs[key].append(t)
                cpu[key].append(c * 100e6 / size)
        med = {k: statistics.median(v) for k, v in secs.items()}
        ratio_s = statistics.median(s / c for s, c in zip(secs["script"], secs["cw"]))
        ratio_d = statistics.median(d / c for d, c in zip(secs["direct"], secs["cw"]))
        ratio_r = statistics.median(s / r for s, r in zip(secs["script"], secs["relay"]))
        ratio_l = statistics.median(s / r for s, r in zip(secs["script"], secs["copy loop"]))
        rounds = sorted(s / c for s, c in zip(secs["script"], secs["cw"]))
        mcpu = {k: statistics.median(v) for k, v in cpu.items()}
        print(f"{name:18s} {size / 1e6:5.0f} {size / med['direct'] / 1e6:8.1f}"
              f" {size / med['script'] / 1e6:8.1f} {size / med['cw'] / 1e6:8.1f}"
              f" {ratio_s:9.3f} {ratio_d:9.3f} {mcpu['script']:20.2f} {mcpu['cw']:6.2f}"
              f" {mcpu['cw'] - mcpu['direct']:7.2f} {ratio_r:12.3f} {mcpu['relay'] - mcpu['direct']:6.2f}"
              f" {ratio_l:11.3f}"
              + (f" {statistics.median(s / b for s, b in zip(secs['script'], secs['before'])):13.3f}"
                 f" {mcpu['before'] - mcpu['direct']:6.2f}" if old_cw else "")
              + f"  {rounds[0]:.2f}-{rounds[-1]:.2f}")
    print("targets: cw/script >= 0.9 on real output, >= 0.25 with usage on every line (c, d)")
    print("loop: a Python pty copy loop that does nothing else (no modes, no parse), the floor"
          " of any relay in Python; rounds: the lowest and highest round's cw/script")
    print(f"the child's pty holds {pty_holds(next(iter(payloads.values())))} bytes for its reader"
          " (the median read after 1 ms away): the child waits once they are there")

    # Keystrokes while output flows: a writer in the background of the same
    # terminal, a raw echo in front; direct and wrapped side by side, each key
    # to both in turn.
    if args.no_latency or args.samples < 1:
        shutil.rmtree(work, ignore_errors=True)
        return
    flow = work / "flow.bin"
    write_looped(flow, session_bytes(typescripts[-1]), 2)
    (work / "flood.py").write_text(FLOOD)
    shell = (f"stty raw -echo; {python} {work / 'flood.py'} {flow} {args.flow_mbps} &"
             " exec cat")
    sh_env = dict(env, CLAUDEWRAP_CLAUDE="/bin/sh")
    # script(1) beside them: what any relay through a pty of its own adds.
    runs = [(["sh", "-c", shell], env),
            (["script", "-qfec", shell, "/dev/null"], env),
            ([cw, "run", "--", "-c", shell], sh_env)]
    if old_cw:
        runs.append(([old_cw, "run", "--", "-c", shell], sh_env))
    direct, script_ms, wrapped_ms, *before_ms = latency_under_flow(runs, args.samples)
    print(f"\nkeystroke round trip while {args.flow_mbps:g} MB/s of real output flows"
          f" ({len(direct)} keys each, sent to each in turn, ms):")
    print(f"  direct   p50 {pct(direct, .5):.3f}  p99 {pct(direct, .99):.3f}")
    print(f"  script   p50 {pct(script_ms, .5):.3f}  p99 {pct(script_ms, .99):.3f}")
    print(f"  wrapped  p50 {pct(wrapped_ms, .5):.3f}  p99 {pct(wrapped_ms, .99):.3f}")
    if before_ms:
        print(f"  before   p50 {pct(before_ms[0], .5):.3f}  p99 {pct(before_ms[0], .99):.3f}"
              f"   ({args.before})")
    print(f"  added    p50 {pct(wrapped_ms, .5) - pct(direct, .5):.3f}  "
          f"p99 {pct(wrapped_ms, .99) - pct(direct, .99):.3f}   (target p99 <= 1 ms;"
          f" script adds p50 {pct(script_ms, .5) - pct(direct, .5):.3f}"
          f" p99 {pct(script_ms, .99) - pct(direct, .99):.3f})")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
