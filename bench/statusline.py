#!/usr/bin/env python3
"""How long `claudewrap statusline` takes, next to the interpreter alone.

    python bench/statusline.py [--runs 20] [--records 100000] [--site|--venv] [--root CHECKOUT]
    python bench/statusline.py --breakdown [--runs 10] [--records 100000]

Claude Code runs the status-line command after each message (at most every
300 ms); the goal is at most 50 ms of work beyond the interpreter's start.
Side by side, each started as a new process with the captured status-line
input (2.1.332) on stdin, plus ``rate_limits`` as subscribers get them:

- ``python -c pass``: the interpreter's start;
- ``python -c "import json,sys; json.load(sys.stdin)"``: the least a status line does;
- ``claudewrap statusline`` (as its console script starts it), on an empty
  journal and on a journal of ``--records`` records (bench/gen_journal.py)
  with a warm rollup: once with the same cost each call (nothing to record,
  today's cost from the state file) and once with a new cost each call (one
  journal record and today's cost from the rollup each call); and an API-key
  user's redraw (no ``rate_limits``).

As Claude Code runs it: no CLAUDEWRAP_JOURNAL or CLAUDEWRAP_CONFIG, the journal
and config.toml where the user's folders ($XDG_DATA_HOME, $XDG_CONFIG_HOME, in a
temporary folder) put them. Each interpreter starts with ``-S`` and the
site-packages folders on PYTHONPATH, as a plain ``pip install`` starts it: the
.pth hooks of an editable install (and of a sandbox) import pathlib, re,
typing, tempfile... at start-up, which would count them in the baseline rather
than in claudewrap. ``--site`` starts them as they are. ``--root`` times another
checkout's claudewrap (the one before a change: ``git worktree add``).

Prints the median and the fastest wall time of each and the median CPU time
(user + system), in milliseconds. ``--breakdown`` prints instead where the CPU
time of one new-cost call goes (in-process, the steps in the order
claudewrap.sources.statusline takes them, each step's imports with it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import site
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INPUT = Path("/work/shared/captures/claude-code-2.1.332/statusline_inputs.json")
SAMPLE = {"session_id": "bench-session", "model": {"id": "claude-opus-5-5",
                                                   "display_name": "Opus 5.5"},
          "workspace": {"current_dir": str(ROOT), "project_dir": str(ROOT)},
          "cost": {"total_cost_usd": 0.339184}}
CONSOLE = "import sys; from claudewrap.main import main; sys.exit(main())"
# One new-cost call, step by step (see --breakdown): CPU milliseconds of each.
STEPS = r"""
import time, sys, os
marks = [("start", time.process_time())]
def mark(name):
    marks.append((name, time.process_time()))
import claudewrap.sources.statusline as s; mark("the statusline module and its imports")
raw = sys.stdin.buffer.read(); data = s.parse_input(raw)
from claudewrap.store.config import journal_file
journal = journal_file(None); state = s._load(s._state_file(journal)); mark("input, journal path, state file")
import claudewrap.store.journal; mark("import store.journal, store.records")
s.record_cost(journal, data, state, os.environ); mark("append the record")
import claudewrap.usage.limits; mark("import usage.limits")
windows = s.record_limits(journal, data); mark("record the windows")
import claudewrap.usage.state; mark("import usage.state (lines, rule, filters)")
import claudewrap.usage.rollup, claudewrap.usage.report; mark("import usage.rollup, report, pricing")
from claudewrap.usage.pricing import default_table, user_prices_file
user_prices_file(); mark("prices path (platformdirs)")
table = default_table(); mark("price table (parsed prices.json; tomllib when stale)")
from claudewrap.usage.rollup import load_state
st = load_state(journal); mark("load_state")
from claudewrap.usage.report import make_report
make_report(st, count_sessions=False, table=table); mark("make_report")
s.render(data, (1.0, False, False), windows, now=time.time(), color=True); mark("render")
s.user_command(os.environ); mark("user's own command? (config.toml)")
s._save(s._state_file(journal), state); mark("save the state file (new cost)")
import json  # after the last mark: the status line itself does not import json
print(json.dumps([(n, 1000 * (b - a)) for (_, a), (n, b) in zip(marks, marks[1:])]))
"""


def sample() -> dict[str, Any]:
    try:
        data = json.loads(INPUT.read_text())[-1]
    except (OSError, ValueError, IndexError):
        return dict(SAMPLE)
    return data if isinstance(data, dict) else dict(SAMPLE)


def subscriber(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the ``rate_limits`` a Pro/Max subscriber's input has."""
    now = int(time.time())
    return {**data, "rate_limits": {
        "five_hour": {"used_percentage": 42, "resets_at": now + 6000},
        "seven_day": {"used_percentage": 17, "resets_at": now + 4 * 86400}}}


def python(site_hooks: bool, venv: str | None = None) -> list[str]:
    """The interpreter, started as a plain install starts it unless ``site_hooks``;
    with ``venv``, that clean venv's interpreter as it starts (its site, no hooks)."""
    if venv is not None:
        return [venv]
    return [sys.executable] if site_hooks else [sys.executable, "-S"]


def environment(tmp: Path, root: Path, site_hooks: bool, venv: bool = False) -> dict[str, str]:
    """As Claude Code runs the command: the user's folders, no CLAUDEWRAP_*."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLAUDEWRAP_", "TMUX", "STY", "XDG_"))}
    paths = [str(root)]
    if not site_hooks:  # what `site` would have put on sys.path, without its .pth hooks
        paths += dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"]])
    env.update({"PYTHONPATH": os.pathsep.join(paths), "NO_COLOR": "1", "HOME": str(tmp),
                "XDG_DATA_HOME": str(tmp / "data"), "XDG_CONFIG_HOME": str(tmp / "config"),
                "XDG_CACHE_HOME": str(tmp / "cache")})
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: compiled once, then cached
    if venv:
        env.pop("PYTHONPATH")  # the venv's .pth names the checkout and the dependencies
    (tmp / "cache").mkdir(exist_ok=True)  # a user's ~/.cache (the parsed prices live there)
    return env


def timed(argv: list[str], inputs: list[bytes], env: dict[str, str]
          ) -> list[tuple[float, float]]:
    """(wall, CPU) milliseconds of each run. CPU time (user + system of the child)
    says more than wall time on a busy machine."""
    out = []
    for data in inputs:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, input=data, env=env, stdout=subprocess.DEVNULL, check=True,
                       cwd=env["HOME"])  # not this checkout: -c puts the cwd first on sys.path
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        out.append((wall * 1000, cpu * 1000))
    return out


def rising(base: dict[str, Any], runs: int, offset: int) -> list[bytes]:
    """Inputs with a new session cost each."""
    items = []
    for n in range(runs):
        d = json.loads(json.dumps(base))
        d["cost"]["total_cost_usd"] = round(0.01 * (offset + n + 1), 6)
        items.append(json.dumps(d).encode())
    return items


def make_journal(py: list[str], env: dict[str, str], records: int) -> None:
    """``records`` records (bench/gen_journal.py) in the journal ``env`` uses, rollup warm."""
    journal = Path(env["XDG_DATA_HOME"]) / "claudewrap" / "journal.jsonl"
    journal.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([*py, str(ROOT / "bench" / "gen_journal.py"), str(journal), "--records",
                    str(records), "--seed", "1"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    subprocess.run([*py, "-m", "claudewrap", "usage"], env=env, check=True, cwd=env["HOME"],
                   stdout=subprocess.DEVNULL)  # warm the rollup


def breakdown(args: argparse.Namespace, base: dict[str, Any]) -> None:
    """Where the CPU time of a new-cost call goes, by step (median of ``--runs``)."""
    py = python(args.site)
    for records in (0, args.records):
        with tempfile.TemporaryDirectory() as tmp:
            env = environment(Path(tmp), args.root, args.site)
            if records:
                make_journal(py, env, records)
            runs = []
            for data in rising(base, args.runs, 1000):
                out = subprocess.run([*py, "-c", STEPS], input=data, env=env, check=True, cwd=env["HOME"],
                                     capture_output=True).stdout
                runs.append(json.loads(out))
        print(f"a new cost, {records // 1000}k records: CPU ms (median of {args.runs})")
        for i, (name, _) in enumerate(runs[0]):
            print(f"  {statistics.median(r[i][1] for r in runs):6.1f}  {name}")
        total = statistics.median(sum(t for _, t in r) for r in runs)
        print(f"  {total:6.1f}  in all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--site", action="store_true",
                        help="start interpreters with their site hooks (.pth files)")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the claudewrap checkout to time (default: this one)")
    parser.add_argument("--venv", action="store_true",
                        help="start a clean venv's interpreter, as `pip install` in a venv"
                             " gives it (its site, no .pth hooks), instead of -S")
    parser.add_argument("--breakdown", action="store_true",
                        help="where a new-cost call's CPU time goes, step by step")
    args = parser.parse_args()
    args.root = args.root.resolve()
    base = subscriber(sample())
    if args.breakdown:
        breakdown(args, base)
        return
    same = [json.dumps(base).encode()] * args.runs
    api_key = {k: v for k, v in base.items() if k != "rate_limits"}
    same_api = [json.dumps(api_key).encode()] * args.runs
    rows: list[tuple[str, list[tuple[float, float]]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        venv = None
        if args.venv:
            sys.path.insert(0, str(ROOT / "bench"))
            from passthrough import clean_install

            (Path(tmp) / "v").mkdir()
            venv = clean_install(Path(tmp) / "v", args.root)[0]
        py = python(args.site, venv)
        env = environment(Path(tmp), args.root, args.site, venv is not None)
        rows.append(("python -c pass", timed([*py, "-c", "pass"], same, env)))
        rows.append(("python -c 'json.load(sys.stdin)'",
                     timed([*py, "-c", "import json,sys; json.load(sys.stdin)"], same, env)))
        cmd = [*py, "-c", CONSOLE, "statusline"]
        timed(cmd, same_api[:1], env)  # compiles what an edit left uncompiled
        # (first: no limits file yet, as for a user who never had a subscription)
        rows.append(("statusline, empty journal, same cost, API key",
                     timed(cmd, same_api, env)))
        rows.append(("statusline, empty journal, same cost", timed(cmd, same, env)))
        rows.append(("statusline, empty journal, new cost", timed(cmd, rising(base, args.runs, 0),
                                                                 env)))
        make_journal(py, env, args.records)
        label = f"{args.records // 1000}k records"
        rows.append((f"statusline, {label}, same cost", timed(cmd, same, env)))
        rows.append((f"statusline, {label}, new cost", timed(cmd, rising(base, args.runs, 1000),
                                                            env)))
    width = max(len(name) for name, _ in rows)
    start = ("a clean venv, as pip installs it" if args.venv else
             "as installed with its site hooks" if args.site else "-S: a plain install's start")
    print(f"{args.root} ({start})")
    print(f"{'':{width}}  {'wall median':>11}  {'fastest':>8}  {'CPU median':>10}"
          f"  (ms, {args.runs} runs each)")
    for name, times in rows:
        wall, cpu = [t[0] for t in times], [t[1] for t in times]
        print(f"{name:{width}}  {statistics.median(wall):11.1f}  {min(wall):8.1f}"
              f"  {statistics.median(cpu):10.1f}")


if __name__ == "__main__":
    main()
