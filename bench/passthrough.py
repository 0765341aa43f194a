#!/usr/bin/env python3
"""Passthrough benchmark: the wrapper against the bare pty and util-linux script(1).

Everything is measured side by side in one run, on this machine, and printed
as ratios:

* throughput of ANSI-heavy output (default 200 MB) read from an outer pty, for
  (a) `cat FILE` directly, (b) `script -qfec "cat FILE" /dev/null`,
  (c) `claudewrap run -- FILE` with `CLAUDEWRAP_CLAUDE=/bin/cat` (scanner,
  patterns, journal and the OpenTelemetry receiver on);
* keystroke round-trip latency through a raw echo (`stty raw -echo; cat`),
  direct vs wrapped (p50/p99, and what the wrapper adds);
* start-up time added to a trivial command (`true`);
* peak RSS of the wrapper for a small and a large output (flat = good).

The wrapper runs as a user runs it: `claudewrap run -- ARGS` (what the shell's
`claude` calls) through a console script like the one pip writes, on a clean
interpreter: a venv made here whose site-packages holds no .pth file of this
machine's (some machines load certifi or editable-install finders at every
Python start-up), with this checkout and its installed dependencies on plain
path entries. The start-up of this interpreter as it is is printed beside it.

    python bench/passthrough.py [--mb 200] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import pty
import random
import resource
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CONSOLE_SCRIPT = """#!{python}
# -*- coding: utf-8 -*-
import re
import sys
from claudewrap.main import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""


# What `pip install claudewrap` puts in a venv (pyproject.toml's dependencies), by
# import name: the venv sees these and nothing else of this interpreter's packages.
DEPENDENCIES = ("click", "ptyprocess", "platformdirs", "prometheus_client", "msgspec", "regex",
                *(("tomli",) if sys.version_info < (3, 11) else ()))


def clean_install(work: Path, root: Path = ROOT) -> tuple[str, str]:
    """(python, claudewrap console script) of a venv like a user's, running the
    checkout at ``root``, with claudewrap's dependencies and only those: linked
    one by one from this interpreter's site-packages (a folder holding them all
    brought typing_extensions along, which msgspec then imports: ~10 ms of every
    reader that a user's venv does not pay)."""
    import importlib.util

    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    deps = work / "deps"
    deps.mkdir(exist_ok=True)
    for name in DEPENDENCIES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise SystemExit(f"{name} is not installed: pip install -e '.[test]'")
        origin = Path(spec.origin).resolve()
        source = origin.parent if spec.submodule_search_locations else origin
        link = deps / source.name
        if not link.exists():
            link.symlink_to(source)
    (site / "claudewrap-checkout.pth").write_text(f"{root}\n{deps}\n")
    python = str(venv / "bin" / "python")
    script = venv / "bin" / "claudewrap"
    script.write_text(CONSOLE_SCRIPT.format(python=python))
    script.chmod(0o755)
    return python, str(script)


PROSE = ["claude", "élan", "──", "⎿", "$0.55", "lorem", "ipsum", "dolor", "sit", "amet"]
# Every line holds a word the usage patterns look for: nothing can be skipped.
USAGE_WORDS = ["claude", "tokens:", "cost", "usage", "élan", "──", "$0.55", "input", "output"]


def make_payload(path: Path, megabytes: int, words: list[str] = PROSE) -> None:
    """ANSI-heavy TUI-like text: colours, cursor moves, OSC titles, UTF-8."""
    rng = random.Random(42)
    parts = []
    for _ in range(6000):
        line = []
        for _ in range(rng.randint(4, 14)):
            r = rng.random()
            if r < 0.35:
                line.append(f"\x1b[{rng.randint(0, 107)};{rng.randint(0, 255)}m")
            elif r < 0.45:
                line.append(f"\x1b[{rng.randint(1, 50)};{rng.randint(1, 200)}H")
            elif r < 0.48:
                line.append(f"\x1b]0;t{rng.randint(0, 99)}\x07")
            else:
                line.append(rng.choice(words) + " ")
        parts.append("".join(line) + "\r\n")
    block = "".join(parts).encode()
    with open(path, "wb") as fh:
        written = 0
        while written < megabytes * 1_000_000:
            fh.write(block)
            written += len(block)


def run_in_pty(argv: list[str], env: dict[str, str]) -> tuple[float, int, resource.struct_rusage]:
    """Run argv on a fresh pty, read everything; (seconds, bytes, the child's rusage)."""
    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env)
    total = 0
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        total += len(chunk)
    _, _, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    os.close(fd)
    return elapsed, total, usage


def latency(argv: list[str], env: dict[str, str], samples: int) -> list[float]:
    """Round-trip time of single keystrokes through a raw echo, in ms."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env)
    time.sleep(0.5)
    # Drain whatever start-up printed, then ping-pong one byte at a time.
    while select.select([fd], [], [], 0.2)[0]:
        os.read(fd, 4096)
    times = []
    for i in range(samples):
        key = bytes([97 + i % 26])
        t0 = time.perf_counter()
        os.write(fd, key)
        got = b""
        while key not in got:
            if not select.select([fd], [], [], 5)[0]:
                raise SystemExit("no echo within 5 s")
            got += os.read(fd, 4096)
        times.append((time.perf_counter() - t0) * 1000)
    os.write(fd, b"\x04")
    os.kill(pid, 15)
    os.waitpid(pid, 0)
    os.close(fd)
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--mb", type=int, default=200, help="MB of output per throughput run")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved throughput rounds")
    ap.add_argument("--samples", type=int, default=2000, help="keystrokes for latency")
    args = ap.parse_args()
    if not shutil.which("script"):
        raise SystemExit("script(1) not found: apt-get install bsdutils")

    work = Path(tempfile.mkdtemp(prefix="cw-bench-"))
    python, cw = clean_install(work)
    env = dict(os.environ, CLAUDEWRAP_JOURNAL=str(work / "j.jsonl"), TERM="xterm-256color")
    # As installed by pip: modules load from compiled bytecode (a warm-up run
    # below writes it if this checkout has none yet).
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "CLAUDEWRAP_CLAUDE"):
        env.pop(name, None)

    def wrapped(claude: str) -> dict[str, str]:
        return dict(env, CLAUDEWRAP_CLAUDE=claude)

    payload = work / "payload.txt"
    make_payload(payload, args.mb)
    small = work / "small.txt"
    make_payload(small, max(1, args.mb // 10))
    size = payload.stat().st_size
    cat = shutil.which("cat") or "/bin/cat"
    true = shutil.which("true") or "/bin/true"
    run_in_pty([cw, "run", "--"], wrapped(true))  # warm-up: bytecode, page cache
    variants = {
        "pty direct": ([cat, str(payload)], env),
        "script -qfec": (["script", "-qfec", f"{cat} {payload}", "/dev/null"], env),
        "claudewrap run": ([cw, "run", "--", str(payload)], wrapped(cat)),
    }
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}; "
          f"payload {size / 1e6:.0f} MB ANSI-heavy")
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (argv, venv) in variants.items():  # interleaved: same conditions for all
            secs, got, _ = run_in_pty(argv, venv)
            assert got >= size, (name, got, size)
            times[name].append(secs)
    print(f"\nthroughput ({args.rounds} interleaved rounds; MB/s best / median):")
    for name, secs in times.items():
        print(f"  {name:16s} {size / min(secs) / 1e6:8.1f} {size / statistics.median(secs) / 1e6:8.1f}")
    # Each round's ratio compares runs made moments apart; their median is
    # steadier than a ratio of two bests taken at different moments.
    paired = [s / c for s, c in zip(times["script -qfec"], times["claudewrap run"])]
    direct_paired = [d / c for d, c in zip(times["pty direct"], times["claudewrap run"])]
    print(f"  ratio claudewrap / script : median {statistics.median(paired):.3f} "
          f"(rounds {min(paired):.2f}-{max(paired):.2f}); of bests "
          f"{min(times['script -qfec']) / min(times['claudewrap run']):.3f}   (target >= 0.95)")
    print(f"  ratio claudewrap / direct : median {statistics.median(direct_paired):.3f}")

    # Worst case: usage words on every line, so every byte goes through the parser.
    worst = work / "worst.txt"
    make_payload(worst, max(1, args.mb // 4), USAGE_WORDS)
    wsize = worst.stat().st_size
    w_script: list[float] = []
    w_cw: list[float] = []
    for _ in range(args.rounds):
        w_script.append(run_in_pty(["script", "-qfec", f"{cat} {worst}", "/dev/null"], env)[0])
        w_cw.append(run_in_pty([cw, "run", "--", str(worst)], wrapped(cat))[0])
    w_ratio = statistics.median(s / c for s, c in zip(w_script, w_cw))
    print(f"  worst case, usage words on every line ({wsize / 1e6:.0f} MB): script "
          f"{wsize / min(w_script) / 1e6:.1f} MB/s, claudewrap {wsize / min(w_cw) / 1e6:.1f} MB/s,"
          f" ratio (median) {w_ratio:.3f}")

    # Alternate blocks of keystrokes, direct and wrapped, so that whatever
    # else the machine does falls on both alike.
    echo = ["sh", "-c", "stty raw -echo; exec cat"]
    direct: list[float] = []
    wrapped_ms: list[float] = []
    block = max(100, args.samples // 4)
    for _ in range(4):
        direct += latency(echo, env, block)
        wrapped_ms += latency([cw, "run", "--", *echo[1:]], wrapped("/bin/sh"), block)
    print(f"\nkeystroke round trip ({len(direct)} keys each, in 4 alternating blocks, ms):")
    print(f"  direct   p50 {pct(direct, .5):.3f}  p99 {pct(direct, .99):.3f}")
    print(f"  wrapped  p50 {pct(wrapped_ms, .5):.3f}  p99 {pct(wrapped_ms, .99):.3f}")
    print(f"  added    p50 {pct(wrapped_ms, .5) - pct(direct, .5):.3f}  "
          f"p99 {pct(wrapped_ms, .99) - pct(direct, .99):.3f}   (target p99 <= 1 ms)")

    here = dict(env, PYTHONPATH=str(ROOT))
    starts: dict[str, list[float]] = {"direct": [], "script": [], "claudewrap": [],
                                      "python -c pass": [], "this python": [],
                                      "this python: claudewrap": []}
    for _ in range(21):
        starts["direct"].append(run_in_pty([true], env)[0])
        starts["script"].append(run_in_pty(["script", "-qfec", true, "/dev/null"], env)[0])
        starts["claudewrap"].append(run_in_pty([cw, "run", "--"], wrapped(true))[0])
        starts["python -c pass"].append(run_in_pty([python, "-c", "pass"], env)[0])
        starts["this python"].append(run_in_pty([sys.executable, "-c", "pass"], here)[0])
        starts["this python: claudewrap"].append(run_in_pty(
            [sys.executable, "-m", "claudewrap", "run", "--"], dict(here, CLAUDEWRAP_CLAUDE=true))[0])
    med = {k: statistics.median(v) * 1000 for k, v in starts.items()}
    print("\nstart-up of `true` (median of 21, ms):")
    for k in ("direct", "script", "claudewrap", "python -c pass"):
        print(f"  {k:16s} {med[k]:7.1f}")
    print(f"  added by claudewrap: {med['claudewrap'] - med['direct']:.1f} ms   (target <= 40 ms)"
          f"; of it the bare interpreter {med['python -c pass'] - med['direct']:.1f} ms")
    print(f"  this machine's own interpreter ({sys.executable}, with its site .pth files):"
          f" python -c pass {med['this python']:.1f}, python -m claudewrap run "
          f"{med['this python: claudewrap']:.1f}")

    rss_small = run_in_pty([cw, "run", "--", str(small)], wrapped(cat))[2].ru_maxrss
    rss_large = run_in_pty([cw, "run", "--", str(payload)], wrapped(cat))[2].ru_maxrss
    print(f"\npeak RSS of the wrapper: {rss_small / 1024:.1f} MB for {small.stat().st_size / 1e6:.0f} MB"
          f" output, {rss_large / 1024:.1f} MB for {size / 1e6:.0f} MB   (target <= 40 MB, flat)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
