#!/usr/bin/env python3
"""How long `claudewrap statusline` takes, next to the interpreter alone.

    python bench/statusline.py [--runs 20] [--records 100000]

Claude Code runs the status-line command after each message (at most every
300 ms); the goal is at most 50 ms of work beyond the interpreter's start.
Side by side, each started as a new process with the captured status-line
input (2.1.332) on stdin:

- ``python -c pass``: the interpreter's start;
- ``python -c "import json,sys; json.load(sys.stdin)"``: the least a status line does;
- ``claudewrap statusline`` (as its console script starts it), on an empty
  journal and on a journal of ``--records`` records (bench/gen_journal.py)
  with a warm rollup: once with the same cost each call (nothing to record,
  today's cost from the state file) and once with a new cost each call (one
  journal record and today's cost from the rollup each call).

Prints the median and the fastest wall time of each and the median CPU time
(user + system), in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INPUT = Path("/work/shared/captures/claude-code-2.1.332/statusline_inputs.json")
SAMPLE = {"session_id": "bench-session", "model": {"id": "claude-opus-5-5",
                                                   "display_name": "Opus 5.5"},
          "workspace": {"current_dir": str(ROOT), "project_dir": str(ROOT)},
          "cost": {"total_cost_usd": 0.339184}}
CONSOLE = "import sys; from claudewrap.main import main; sys.exit(main())"


def sample() -> dict[str, object]:
    try:
        data = json.loads(INPUT.read_text())[-1]
    except (OSError, ValueError, IndexError):
        return dict(SAMPLE)
    return data if isinstance(data, dict) else dict(SAMPLE)


def timed(argv: list[str], inputs: list[bytes], env: dict[str, str]
          ) -> list[tuple[float, float]]:
    """(wall, CPU) milliseconds of each run. CPU time (user + system of the child)
    says more than wall time on a busy machine."""
    out = []
    for data in inputs:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, input=data, env=env, stdout=subprocess.DEVNULL, check=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        out.append((wall * 1000, cpu * 1000))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    base = sample()
    same = [json.dumps(base).encode()] * args.runs

    def rising(offset: int) -> list[bytes]:
        items = []
        for n in range(args.runs):
            d = json.loads(json.dumps(base))
            d["cost"]["total_cost_usd"] = round(0.01 * (offset + n + 1), 6)
            items.append(json.dumps(d).encode())
        return items

    rows: list[tuple[str, list[tuple[float, float]]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
        env.pop("CLAUDEWRAP_STATUSLINE_COMMAND", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: compiled once, then cached
        env["CLAUDEWRAP_CONFIG"] = str(Path(tmp) / "none.toml")
        py = sys.executable
        rows.append(("python -c pass", timed([py, "-c", "pass"], same, env)))
        rows.append(("python -c 'json.load(sys.stdin)'",
                     timed([py, "-c", "import json,sys; json.load(sys.stdin)"], same, env)))
        cmd = [py, "-c", CONSOLE, "statusline"]
        empty = Path(tmp) / "empty.jsonl"
        env["CLAUDEWRAP_JOURNAL"] = str(empty)
        timed(cmd, same[:1], env)  # compiles what an edit left uncompiled
        rows.append(("statusline, empty journal, same cost", timed(cmd, same, env)))
        rows.append(("statusline, empty journal, new cost", timed(cmd, rising(0), env)))
        big = Path(tmp) / "big.jsonl"
        subprocess.run([py, str(ROOT / "bench" / "gen_journal.py"), str(big), "--records",
                        str(args.records), "--seed", "1"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        env["CLAUDEWRAP_JOURNAL"] = str(big)
        subprocess.run([py, "-m", "claudewrap", "usage"], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # warm the rollup
        label = f"{args.records // 1000}k records"
        rows.append((f"statusline, {label}, same cost", timed(cmd, same, env)))
        rows.append((f"statusline, {label}, new cost", timed(cmd, rising(1000), env)))
    width = max(len(name) for name, _ in rows)
    print(f"{'':{width}}  {'wall median':>11}  {'fastest':>8}  {'CPU median':>10}"
          f"  (ms, {args.runs} runs each)")
    for name, times in rows:
        wall, cpu = [t[0] for t in times], [t[1] for t in times]
        print(f"{name:{width}}  {statistics.median(wall):11.1f}  {min(wall):8.1f}"
              f"  {statistics.median(cpu):10.1f}")


if __name__ == "__main__":
    main()
