"""Every reader of the journal, warm, on journals of 10k, 100k and 1M records (issue 16).

    python bench/readers.py [--quick] [--records 10000,100000] [--dir /tmp/cwbench-readers]
                            [--only metrics --only cost] [--against CHECKOUT]
                            [--shape year,today-heavy] [--today-records 50000]

For each size: a realistic journal (bench/gen_journal.py, seed 1: a year of
sessions that ends the day before the run), copied fresh. With ``--shape
today-heavy`` the same year then has a heavy day appended (a team's shared
journal, a long agentic day: ``--today-records`` records of sessions of 100 to
800 requests 2 to 60 s apart, started in the last 16 hours; gen_journal.today_shape),
and the readers run in a time zone where it is 20:00 or so, so that "today"
holds all of it: what `status` walks every few seconds. Then each reader
run once (it builds its caches), then 1,000 records dated in the
last few minutes appended; then each reader run once more (warm-up: it reads
the new lines) and timed as the best of three, each in a fresh process, with
its peak RSS (resource.getrusage of the children). `serve` is started before
the append and warmed with a scrape; the scrape after the append is timed (it
reads the 1,000 new lines), then the best of three scrapes after 100 more.

Two baselines are measured in the same run: the interpreter's bare start
(``python -c pass``) and a naive ``json.loads`` of every journal line. Targets
(issue 16): usage, usage --json, status, cost --session <= start + 100 ms;
monitor --once and metrics <= start + 300 ms; every reader <= 200 MB.
Times on these shared machines swing about 2x between runs: read the ratios.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import gen_journal
from gen_journal import NAIVE_READ, generate
from passthrough import clean_install

# The generated year ends a day before the run (its sessions start in the 365 days
# before that): a journal with records dated in the future would put a month of
# them in "today".
YEAR_START = (datetime.now(timezone.utc) - timedelta(days=367)).replace(
    hour=0, minute=0, second=0, microsecond=0)
gen_journal.START = YEAR_START

READERS: list[tuple[str, list[str], float]] = [  # name, arguments, target over start (s)
    ("usage", ["usage"], 0.1),
    ("usage --json", ["usage", "--json"], 0.1),
    ("status --format tmux", ["status", "--format", "tmux"], 0.1),
    ("cost --session last", ["cost", "--session", "last"], 0.1),
    ("monitor --once", ["monitor", "--once"], 0.3),
    ("metrics", ["metrics"], 0.3),
]
RSS_TARGET = 200.0  # MB
SHAPES = ("year", "today-heavy")
TODAY_HOURS = 16
_TIMED = ("import resource, subprocess, sys, time\n"
          "t = time.perf_counter()\n"
          "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
          "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
          "print(time.perf_counter() - t, ru.ru_maxrss / 1024, ru.ru_utime + ru.ru_stime)\n")

Timing = tuple[float, float, float]  # best wall time (s), peak RSS (MB), best CPU time (s)


def timed(python: str, argv: list[str], env: dict[str, str], runs: int) -> Timing:
    """The best wall time of ``argv`` over ``runs`` fresh processes, the peak RSS (MB)
    and the best CPU time (user + system: what other work on shared cores inflates
    least)."""
    best = (float("inf"), 0.0, float("inf"))
    for _ in range(runs):
        done = subprocess.run([python, "-c", _TIMED, *argv], env=env, capture_output=True,
                              check=False,
                              text=True)
        if done.returncode:
            raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr}")
        out = done.stdout.split()
        t, rss, cpu = float(out[0]), float(out[1]), float(out[2])
        best = (min(best[0], t), max(best[1], rss), min(best[2], cpu))
    return best


def recent_records(n: int, seed: int) -> str:
    """``n`` realistic journal lines (other sessions and requests than the base's),
    dated in the last few minutes in the order they are written."""
    buf = io.StringIO()
    generate(buf, n, seed=seed, corrupt_every=0)
    lines = buf.getvalue().splitlines()[:n]
    now = datetime.now(timezone.utc)
    out = []
    for k, line in enumerate(lines):
        obj = json.loads(line)
        when = now - timedelta(seconds=240 * (len(lines) - k) / len(lines))
        obj["ts"] = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
        if obj.get("request_id"):
            # The generator numbers requests from 0 on each call: ids of its own
            # here would be those of the base journal's first months (a request
            # seen again months later: a full read drops it, a warm read, which
            # looks among ids of the last days only, does not).
            obj["request_id"] = f"req_recent{seed:x}_{obj['request_id'][4:]}"
        out.append(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
    return "".join(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(url: str) -> float:
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as resp:
        resp.read()
    return time.perf_counter() - t


def peak_rss(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def serve_bench(script: str, journal: Path, env: dict[str, str], seed: int
                ) -> tuple[float, float, float]:
    """(scrape after 1,000 new records, best scrape after 100 more, peak RSS MB)."""
    port = free_port()
    proc = subprocess.Popen([script, "serve", "--port", str(port), "--journal", str(journal)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        for _ in range(600):  # up to a minute to start and read the journal
            try:
                scrape(url)
                break
            except OSError:
                time.sleep(0.1)
        scrape(url)
        with open(journal, "a", encoding="utf-8") as out:
            out.write(recent_records(1000, seed))
        after = scrape(url)
        best = float("inf")
        for k in range(3):
            with open(journal, "a", encoding="utf-8") as out:
                out.write(recent_records(100, seed + 1 + k))
            best = min(best, scrape(url))
        return after, best, peak_rss(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


Install = tuple[str, str, str]  # label, python, console script


def heavy_day(records: int) -> tuple[str, str]:
    """(``records`` journal lines of a heavy day ending now, the TZ in which it is
    about 20:00 now: today began before the day's first session)."""
    now = datetime.now(timezone.utc)
    buf = io.StringIO()
    generate(buf, records, seed=7, corrupt_every=0,
             shape=gen_journal.today_shape(now, TODAY_HOURS))
    offset = (20 - now.hour + 12) % 24 - 12  # local time - UTC, hours
    return buf.getvalue(), f"CWT{-offset}"  # POSIX: the hours to add to local time for UTC


def bench_size(records: int, work: Path, installs: list[Install], runs: int,
               readers: list[tuple[str, list[str], float]] = READERS, serve: bool = True,
               shape: str = "year", today_records: int = 50_000
               ) -> dict[str, dict[str, Timing]]:
    """Each install on its own copy of the journal, reader by reader side by side."""
    base = work / f"year-{YEAR_START:%Y%m%d}-{records}.jsonl"
    if not base.exists():
        t = time.perf_counter()
        with open(base, "w", encoding="utf-8") as out:
            generate(out, records, seed=1)
        print(f"  generated {base} in {time.perf_counter() - t:.0f} s", flush=True)
    day, tz = heavy_day(today_records) if shape == "today-heavy" else ("", "UTC")
    envs = []
    for k, _ in enumerate(installs):
        run_dir = work / f"run-{records}-{k}"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir()
        (run_dir / "cache").mkdir()  # (as ~/.cache: pricing.py caches only in one that exists)
        journal = run_dir / "journal.jsonl"
        shutil.copyfile(base, journal)  # (the base stays as it is: others may read it)
        with open(journal, "a", encoding="utf-8") as fh:
            fh.write(day)
        env = dict(os.environ, CLAUDEWRAP_JOURNAL=str(journal), TZ=tz, COLUMNS="100",
                   XDG_CONFIG_HOME=str(run_dir / "config"),
                   XDG_DATA_HOME=str(run_dir / "data"),
                   # Each install its own cache folder (the parsed prices, pricing.py): in
                   # a shared one, the two installs' runs made each other's stale, and
                   # every reader parsed the TOML again (~10 ms of a `status`).
                   XDG_CACHE_HOME=str(run_dir / "cache"))
        for name in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "CLAUDEWRAP_SESSION"):
            env.pop(name, None)
        envs.append(env)
    out: dict[str, dict[str, Timing]] = {label: {} for label, _, _ in installs}
    python = installs[0][1]
    journal0 = envs[0]["CLAUDEWRAP_JOURNAL"]
    start = timed(python, [python, "-c", "pass"], envs[0], 5)
    naive = timed(python, [python, "-c", NAIVE_READ, journal0], envs[0], 1)
    cold: dict[str, dict[str, Timing]] = {label: {} for label, _, _ in installs}
    for name, args, _ in readers:  # cold: each builds its caches
        for (label, py, script), env in zip(installs, envs):
            cold[label][name] = timed(py, [script, *args], env, 1)
    new = recent_records(1000, 1000 + records % 997)
    for env in envs:
        with open(env["CLAUDEWRAP_JOURNAL"], "a", encoding="utf-8") as fh:
            fh.write(new)
    for name, args, _ in readers:
        for (label, py, script), env in zip(installs, envs):
            timed(py, [script, *args], env, 1)  # warm-up: reads the new lines
            out[label][name] = timed(py, [script, *args], env, runs)
    for (label, _, script), env in zip(installs, envs):
        if serve:
            after, best, rss = serve_bench(script, Path(env["CLAUDEWRAP_JOURNAL"]), env, 2000)
            out[label]["serve scrape (1,000 new)"] = (after, rss, math.nan)
            out[label]["serve scrape (100 new)"] = (best, rss, math.nan)
        if "usage" in cold[label]:
            out[label]["cold usage"] = cold[label]["usage"]
        out[label]["python start"] = start
        out[label]["naive json.loads"] = naive
    for k, _ in enumerate(installs):
        shutil.rmtree(work / f"run-{records}-{k}", ignore_errors=True)
    return out


def cell(name: str, got: Timing, start: Timing, naive: float, targets: dict[str, float]) -> str:
    t, rss, cpu = got
    if name in ("python start", "naive json.loads"):
        return f"{t * 1000:,.0f} ms (cpu {cpu * 1000:,.0f})"
    text = f"{t * 1000:,.0f} ms" if name.startswith("serve") else (
        f"{t * 1000:,.0f} ms = start+{(t - start[0]) * 1000:,.0f}"
        f" (cpu start+{(cpu - start[2]) * 1000:,.0f})")
    text += f", {t / naive:.2f}x naive, {rss:.0f} MB"
    over = []
    if name in targets and t - start[0] > targets[name]:
        over.append(f"over start+{targets[name] * 1000:.0f}")
    if rss > RSS_TARGET:
        over.append("over 200 MB")
    return text + (f" ({', '.join(over)})" if over else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", "--records", dest="sizes", default="10000,100000,1000000",
                        help="journal sizes (records), comma-separated")
    parser.add_argument("--only", action="append", metavar="READER",
                        help="only the readers whose name starts with READER (repeatable;"
                             " 'serve' for the scrapes), e.g. --only metrics --only cost")
    parser.add_argument("--quick", action="store_true", help="10k and 100k records only")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/cwbench-readers"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shape", default="year",
                        help="journal shapes, comma-separated: year (a year of sessions),"
                             " today-heavy (the year and a heavy day that ends now)")
    parser.add_argument("--today-records", type=int, default=50_000, metavar="N",
                        help="today-heavy: the day's records (default 50,000)")
    parser.add_argument("--against", type=Path, metavar="CHECKOUT",
                        help="another checkout (e.g. git archive of an older commit), run side"
                             " by side with this one on its own copy of each journal")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    venvs = [Path(tempfile.mkdtemp(prefix="cw-r-")) for _ in range(2 if args.against else 1)]
    try:
        run(args, venvs)
    finally:  # the venvs made for this run (not left in /tmp for ever)
        for venv in venvs:
            shutil.rmtree(venv, ignore_errors=True)


def run(args: argparse.Namespace, venvs: list[Path]) -> None:
    sizes = [10_000, 100_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    shapes = args.shape.split(",")
    if not set(shapes) <= set(SHAPES):
        raise SystemExit(f"--shape: one of {', '.join(SHAPES)}")
    columns = [(n, shape) for shape in shapes for n in sizes]
    installs: list[Install] = [("this", *clean_install(venvs[0]))]
    if args.against:
        installs.append(("against", *clean_install(venvs[1], args.against.resolve())))
    readers = [r for r in READERS if not args.only or r[0].startswith(tuple(args.only))]
    serve = not args.only or "serve" in args.only
    results = {}
    titles = {}
    for n, shape in columns:
        titles[n, shape] = f"{n:,} records" + (
            f" + {args.today_records:,} today" if shape == "today-heavy" else "")
        print(f"{titles[n, shape]} ...", flush=True)
        results[n, shape] = bench_size(n, args.dir, installs, args.runs, readers, serve, shape,
                                       args.today_records)
    names = ["python start", "naive json.loads", *(r[0] for r in readers),
             *(["serve scrape (1,000 new)", "serve scrape (100 new)"] if serve else []),
             *(["cold usage"] if any(r[0] == "usage" for r in readers) else [])]
    targets = {name: t for name, _, t in READERS}
    for label, _, _ in installs:
        title = "this checkout" if label == "this" else f"against {args.against}"
        print(f"\n{title}\n")
        print("| reader | " + " | ".join(titles[c] for c in columns) + " |")
        print("|" + " --- |" * (len(columns) + 1))
        for name in names:
            cells = [cell(name, results[c][label][name], results[c][label]["python start"],
                          results[c][label]["naive json.loads"][0], targets) for c in columns]
            print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\n(times: best of {args.runs} warm runs after 1,000 appended records; cold usage builds the"
          " rollup; serve: one process, RSS its peak; with --against, each reader's runs of"
          " the two checkouts alternate)")


if __name__ == "__main__":
    main()
