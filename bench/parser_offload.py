#!/usr/bin/env python3
"""Would taking the parser off the relay's path make the wrapper faster? (issue 14 item 2)

Side by side, interleaved rounds, on each captured interactive session in
../shared/captures (or $CLAUDEWRAP_CAPTURES) looped to --mb:

* ``script``  script(1), the baseline;
* ``copy``    a bare Python copy loop (blocking read, write, nothing else):
              the floor of any relay written in Python;
* ``copy+burn``  that loop doing ``sum(range(250))`` after each read (~1 us;
              the time is printed): what the smallest work per read costs;
* ``copy+modes``  that loop following the terminal modes as the relay must
              (claudewrap.wrap.term_modes: what the child left on is switched
              back when it ends);
* ``relay``   claudewrap's relay without a tap (launcher.run, terminal modes
              followed, as ``run --no-capture`` does);
* ``inproc``  the relay with the Capture parsing on its own thread, as
              ``claudewrap run`` does (journal writes left out: write=False);
* ``ring``    the relay copying every read into a shared-memory ring (no
              system call), a forked process running the same Capture on it;
* ``ring-idle``  the same, that process at SCHED_IDLE (runs only on a core
              nothing else wants);
* ``ring-drop``  the ring, the process dropping what it reads: what moving
              the bytes to another process costs by itself;
* ``no-places``  ``inproc`` with the place search (patterns.RawStarts) finding
              nothing: all a parser that cost nothing would leave.

Printed: script/x (median of each round's own ratio), CPU seconds per 100 MB
of the whole run (child and wrapper, and the parser process for the ring
ways), the same less a plain ``cat`` on the pty's (``own``: what script(1) or
the wrapper itself costs), the CPU seconds the whole machine was busy per 100
MB (``machine``, from /proc/stat: with the kernel's pty work and the reader),
and the records each parsing way found (they must agree; ``no-places`` finds
none).

Where the CPU goes decides the ratio: during the flood the child's writes
through the pty, the kernel's pty work and the reader keep two cores busy, so
every CPU second a relay adds costs wall time, wherever it runs; and once the
relay no longer keeps up with the child, both wait for each other in turn and
the machine spends more on the switches than the relay's own work costs
(``machine`` against ``own``).

    python bench/parser_offload.py [--mb 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import mmap
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
WAYS = ("copy", "copy+burn", "copy+modes", "relay", "inproc", "ring", "ring-idle", "ring-drop", "no-places")
RING = 8 << 20  # bytes; the relay waits for room when the parser is this far behind
HEADER = struct.Struct("QQQ")  # written, done, read


BURN = 250  # copy+burn: sum(range(BURN)) after each read


def copy_loop(path: str, extra: str = "") -> int:
    """cat on a pty of its own, copied to ours in raw mode (as script(1) and the
    relay do); ``extra`` "modes": each read also goes to a TermModes, "burn":
    each read is followed by sum(range(BURN))."""
    import pty
    import termios
    import tty

    saved = termios.tcgetattr(0)
    pid, fd = pty.fork()
    if pid == 0:
        termios.tcsetattr(0, termios.TCSANOW, saved)  # the child's pty: the terminal's settings
        os.execvp("cat", ["cat", path])
    tty.setraw(0)
    read, write = os.read, os.write
    try:
        if extra == "burn":
            while data := read(fd, 65536):
                write(1, data)
                sum(range(BURN))
        elif extra == "modes":
            from claudewrap.wrap.term_modes import TermModes

            follow = TermModes().feed
            while data := read(fd, 65536):
                write(1, data)
                follow(data)
        else:
            while data := read(fd, 65536):
                write(1, data)
    except OSError:  # EIO: the child closed the pty
        pass
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)
    return os.waitpid(pid, 0)[1]


class RingTap:
    """The relay's tap: each read copied into a shared ring; a forked process parses it."""

    def __init__(self, mode: str, report: str) -> None:
        self.mm = mmap.mmap(-1, RING + HEADER.size)
        self.written = 0
        self.pid = os.fork()
        if self.pid == 0:
            try:
                self._parse(mode, report)
            finally:
                os._exit(0)

    def _parse(self, mode: str, report: str) -> None:
        if mode == "ring-idle":
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        cap = None
        if mode != "ring-drop":
            from claudewrap.wrap.capture import Capture

            cap = Capture(session="bench", write=False)
        mm, done_at = self.mm, 0
        while True:
            written, done, _ = HEADER.unpack_from(mm, RING)
            if written > done_at:
                while done_at < written:
                    start = done_at % RING
                    size = min(written - done_at, RING - start, 1 << 16)
                    if cap is not None:
                        cap.feed(mm[start:start + size])
                    done_at += size
                struct.pack_into("Q", mm, RING + 16, done_at)
            elif done:
                break
            else:
                if cap is not None:
                    cap.idle()
                time.sleep(0.001)
        if cap is not None:
            cap.idle()
        Path(report).write_text(str(len(cap.records) if cap is not None else -1))

    def feed(self, chunk: bytes) -> None:
        mm, size = self.mm, len(chunk)
        for _ in range(100_000):  # at most ~50 s behind
            if self.written + size - struct.unpack_from("Q", mm, RING + 16)[0] <= RING:
                break
            time.sleep(0.0005)
        start = self.written % RING
        first = min(size, RING - start)
        mm[start:start + first] = chunk if first == size else chunk[:first]
        if first < size:
            mm[0:size - first] = chunk[first:]
        self.written += size
        struct.pack_into("Q", mm, RING, self.written)

    def idle(self) -> None:
        pass

    def close(self) -> None:
        struct.pack_into("QQ", self.mm, RING, self.written, 1)
        os.waitpid(self.pid, 0)


def machine_busy() -> float:
    """CPU seconds the machine has been busy (all cores, kernel work too), or 0."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait


def one_way(way: str, path: str, report: str) -> int:
    """Run ``cat path`` one way (in the pty the bench gave us); its wait status."""
    if way.startswith("copy"):
        return copy_loop(path, way.partition("+")[2])
    from claudewrap.wrap import launcher

    tap = None
    if way == "no-places":
        from claudewrap.parse import patterns

        class NoPlaces:  # this process's stand-in: Capture._parse imports RawStarts per batch
            def __init__(self, raw: bytes) -> None:
                pass

            def next(self, pos: int) -> int:
                return -1

        patterns.RawStarts = NoPlaces  # type: ignore[misc,assignment]
    if way in ("inproc", "no-places"):
        from claudewrap.wrap.capture import Capture

        tap = Capture(session="bench", write=False)
    elif way.startswith("ring"):
        tap = RingTap(way, report)
    result = launcher.run(["cat", path], tap)
    if isinstance(tap, RingTap):
        tap.close()
    elif tap is not None:
        tap.idle()
        Path(report).write_text(str(len(tap.records)))
    return result.exit_status


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--mb", type=float, default=100, help="MB per run")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--way", help=argparse.SUPPRESS)
    ap.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.way:
        sys.exit(one_way(args.way, *args.args) and 1)

    sys.path.insert(0, str(HERE.parent))
    from passthrough import clean_install, run_in_pty
    from real_output import CAPTURES, session_bytes, write_looped

    if not shutil.which("script"):
        raise SystemExit("script(1) not found: apt-get install bsdutils")
    typescripts = sorted(CAPTURES.glob("*/interactive_session.typescript"))
    if not typescripts:
        raise SystemExit(f"no captured sessions under {CAPTURES}")
    work = Path(tempfile.mkdtemp(prefix="cw-offload-"))
    try:
        python, _ = clean_install(work)
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
        env["TERM"] = "xterm-256color"
        cat = shutil.which("cat") or "/bin/cat"
        subprocess.run([python, "-c", "import claudewrap.wrap.capture"], check=True)  # bytecode
        import timeit

        burn = min(timeit.repeat(f"sum(range({BURN}))", number=10000, repeat=5)) / 10000
        print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, python "
              f"{sys.version.split()[0]}; {args.rounds} interleaved rounds, medians;"
              f" copy+burn's work {burn * 1e6:.1f} us per read")
        print(f"{'payload':14s} {'way':10s} {'script/x':>8s} {'CPU s/100MB':>11s} {'own':>6s}"
              f" {'machine':>7s} {'records':>7s}")
        for ts in typescripts:
            name = f"real {ts.parent.name.removeprefix('claude-code-')}"
            payload = work / "payload.bin"
            write_looped(payload, session_bytes(ts), args.mb)
            size = payload.stat().st_size
            argv = {"cat": [cat, str(payload)],
                    "script": ["script", "-qfec", f"{cat} {payload}", "/dev/null"]}
            for way in WAYS:
                argv[way] = [python, str(HERE), "--way", way, str(payload), str(work / f"{way}.n")]
            secs: dict[str, list[float]] = {k: [] for k in argv}
            cpu: dict[str, list[float]] = {k: [] for k in argv}
            busy: dict[str, list[float]] = {k: [] for k in argv}
            for _ in range(args.rounds):
                for way, command in argv.items():
                    before = machine_busy()
                    took, got, usage = run_in_pty(command, env)
                    busy[way].append((machine_busy() - before) * 100e6 / size)
                    if got < size:
                        raise SystemExit(f"{way}: {got} of {size} bytes came through")
                    secs[way].append(took)
                    cpu[way].append((usage.ru_utime + usage.ru_stime) * 100e6 / size)
            plain = statistics.median(cpu["cat"])
            for way in argv:
                if way == "cat":
                    continue
                ratio = statistics.median(s / x for s, x in zip(secs["script"], secs[way]))
                report = work / f"{way}.n"
                records = report.read_text() if report.exists() else ""
                used = statistics.median(cpu[way])
                print(f"{name:14s} {way:10s} {ratio:8.3f} {used:11.2f} {used - plain:6.2f}"
                      f" {statistics.median(busy[way]):7.2f} {records if records != '-1' else '':>7s}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
