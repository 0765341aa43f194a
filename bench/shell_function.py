#!/usr/bin/env python3
"""What the shell's `claude` costs: the function (and the wrapper it runs) against
the unwrapped program and `claudewrap run` directly, side by side in one run.

`claude` here is a tiny program that exits with a given status (0, 1, 2, 126,
127): before issue 14 the function started claudewrap a second time after 1, 2,
126 and 127 to ask whether it could start. Each way runs in one interactive bash
(the snippet loaded), timed inside the shell, so bash's own start is not counted.

claudewrap runs as a user's pip install runs it: bench/passthrough.py's clean
venv (no site .pth file of this machine's: some load certifi or editable-install
finders at every Python start-up, ~60 ms here). The interpreter's own start and
that of the console script pip writes (which imports re) are printed beside it:
what claudewrap itself adds is the difference.

    python bench/shell_function.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from passthrough import clean_install  # one copy of the helper

ROOT = Path(__file__).resolve().parent.parent
STATUSES = (0, 1, 2, 126, 127)


def measure(work: Path, runs: int) -> dict[tuple[str, int], float]:
    """Median ms of each way for each status."""
    bin_dir = work / "bin"
    bin_dir.mkdir()
    (bin_dir / "claude").write_text('#!/bin/sh\nexit "$1"\n')
    (bin_dir / "claude").chmod(0o755)
    python, console_script = clean_install(work)
    (bin_dir / "claudewrap").symlink_to(console_script)
    ways = {
        "unwrapped": "command claude {s}",
        "function": "__claudewrap_claude {s}",
        "claudewrap run": "claudewrap run -- {s}",
        # The floor: the interpreter, and the console script's own `import re`.
        "python": f"{python} -c 'import sys; sys.exit({{s}})'",
        "python re": f"{python} -c 'import re, sys; sys.exit({{s}})'",
    }
    lines = [f"source {ROOT / 'shell' / 'claudewrap.bash'}"]
    for _ in range(runs):
        for name, cmd in ways.items():
            for s in STATUSES:
                lines.append(f"t0=$EPOCHREALTIME; {cmd.format(s=s)} </dev/null >/dev/null 2>&1;"
                             f" t1=$EPOCHREALTIME; echo \"{name}|{s}|$t0|$t1\"")
    env = dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin",
               HOME=str(work), CLAUDEWRAP_JOURNAL=str(work / "journal.jsonl"),
               XDG_CONFIG_HOME=str(work / "config"), XDG_DATA_HOME=str(work / "data"))
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "CLAUDEWRAP_CLAUDE"):
        env.pop(name, None)
    out = subprocess.run(["bash", "--norc", "--noprofile", "-c", "\n".join(lines)], env=env,
                         capture_output=True, text=True, check=True, timeout=1800).stdout
    times: dict[tuple[str, int], list[float]] = {}
    for row in out.splitlines():
        name, s, t0, t1 = row.split("|")
        times.setdefault((name, int(s)), []).append((float(t1) - float(t0)) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="runs of each way and status")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        med = measure(Path(tmp), args.runs)
    print(f"`claude STATUS` through the shell (median of {args.runs}, ms; bash, one shell):")
    print(f"  {'status':>6}  {'unwrapped':>9}  {'function':>9}  {'claudewrap run':>14}"
          f"  {'function added':>14}  {'function/run':>12}  {'python':>6}  {'python re':>9}")
    for s in STATUSES:
        u, f, r = med[("unwrapped", s)], med[("function", s)], med[("claudewrap run", s)]
        p, pr = med[("python", s)], med[("python re", s)]
        print(f"  {s:>6}  {u:9.1f}  {f:9.1f}  {r:14.1f}  {f - u:14.1f}  {f / r:12.2f}x"
              f"  {p:6.1f}  {pr:9.1f}")
    print("  (target: the function and wrapper add <= 40 ms whatever the status; the function"
          " itself, beyond `claudewrap run`, about nothing; `python re` is the floor of any"
          " pip console script)")


if __name__ == "__main__":
    main()
