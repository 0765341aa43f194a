#!/usr/bin/env python3
"""What the shell's `claude` costs: the function (and the wrapper it runs) against
the unwrapped program and `claudewrap run` directly, side by side in one run.

`claude` here is a tiny program that exits with a given status (0, 1, 2, 126,
127): before issue 14 the function started claudewrap a second time after 1, 2,
126 and 127 to ask whether it could start. Each way runs in one bash (or zsh,
--shell) with the snippet loaded, timed inside the shell, so the shell's own
start is not counted.

claudewrap runs as a user's pip install runs it: bench/passthrough.py's clean
venv (no site .pth file of this machine's: some load certifi or editable-install
finders at every Python start-up, ~60 ms here). The interpreter's own start and
that of the console script pip writes (which imports re) are printed beside it:
what claudewrap itself adds is the difference.

`claude` writes the time it started ($EPOCHREALTIME) to a file, so each way's
time splits into "to start" (the shell's command to claude running: what the
user waits for before claude's first output) and "after" (claude's exit to the
shell having its prompt back). `--before REV` times the checkout at git
revision REV beside this one (its own clean venv), in the same shell, turn by
turn. `--pty` runs the shell in a pty (script(1)) so the wrapper takes its pty
path, as for an interactive `claude`; else stdin and stdout are /dev/null (the
pipe path). `--tmux` sets $TMUX and $TMUX_PANE to a private tmux server's
pane, as for a `claude` typed inside tmux: the wrapper then asks tmux for the
session name (`tmux display-message`), which before issue 14 it waited for
before claude started.

    python bench/shell_function.py [--runs 15] [--before REV] [--pty] [--tmux] [--shell zsh]
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


Times = dict[tuple[str, int], tuple[float, float, float]]


def measure(work: Path, runs: int, before: str | None = None, pty: bool = False,
            tmux: dict[str, str] | None = None, shell_name: str = "bash") -> Times:
    """Median ms (total, to start, after) of each way for each status."""
    bin_dir = work / "bin"
    bin_dir.mkdir()
    stamp = work / "stamp"
    (bin_dir / "claude").write_text('#!/bin/bash\necho "$EPOCHREALTIME" > "$BENCH_STAMP"\n'
                                    'exit "$1"\n')
    (bin_dir / "claude").chmod(0o755)
    python, console_script = clean_install(work)
    (bin_dir / "claudewrap").symlink_to(console_script)
    ways = {
        "unwrapped": "command claude {s}",
        "function": "__claudewrap_claude {s}",
        "claudewrap run": "claudewrap run -- {s}",
    }
    if before:
        old = work / "before"
        old.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", before, "claudewrap"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        _, old_script = clean_install(old, root=old)
        ways[f"run {before}"] = f"{old_script} run -- {{s}}"
    # The floor: the interpreter, and the console script's own `import re`.
    ways["python"] = f"{python} -c 'import sys; sys.exit({{s}})'"
    ways["python re"] = f"{python} -c 'import re, sys; sys.exit({{s}})'"
    results = work / "results"
    redirect = "" if pty else " </dev/null >/dev/null 2>&1"
    lines = [f"source {ROOT / 'shell' / f'claudewrap.{shell_name}'}"]
    if shell_name == "zsh":  # $EPOCHREALTIME; in a script the function runs the same sh script
        lines.insert(0, "zmodload zsh/datetime")
    for _ in range(runs):
        for s in STATUSES:
            for name, cmd in ways.items():  # each way in turn: the machine's load shared
                lines.append(f"rm -f {stamp}; t0=$EPOCHREALTIME; {cmd.format(s=s)}{redirect};"
                             f" t1=$EPOCHREALTIME; ts=$t1; [ -s {stamp} ] && read -r ts < {stamp};"
                             f" echo \"{name}|{s}|$t0|$ts|$t1\" >> {results}")
    env = dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin", BENCH_STAMP=str(stamp),
               HOME=str(work), CLAUDEWRAP_JOURNAL=str(work / "journal.jsonl"),
               XDG_CONFIG_HOME=str(work / "config"), XDG_DATA_HOME=str(work / "data"),
               **(tmux or {}))
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "CLAUDEWRAP_CLAUDE"):
        env.pop(name, None)
    script = work / "loop.bash"
    script.write_text("\n".join(lines) + "\n")
    shell = (["zsh", "-f", str(script)] if shell_name == "zsh"
             else ["bash", "--norc", "--noprofile", str(script)])
    if pty:  # a terminal for stdin and stdout: the wrapper's pty path
        shell = ["script", "-qec", " ".join(shell), "/dev/null"]
    subprocess.run(shell, env=env, stdin=subprocess.DEVNULL if not pty else None,
                   capture_output=True, check=True, timeout=1800)
    times: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    for row in results.read_text().splitlines():
        name, s, t0, ts, t1 = row.split("|")
        a, b, c = float(t0), float(ts), float(t1)
        times.setdefault((name, int(s)), []).append(((c - a) * 1000, (b - a) * 1000,
                                                     (c - b) * 1000))
    return {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v),
                statistics.median(x[2] for x in v)) for k, v in times.items()}


def private_tmux(name: str) -> dict[str, str]:
    """$TMUX and $TMUX_PANE of a pane of a new private tmux server ``name``."""
    base = ["tmux", "-L", name, "-f", "/dev/null"]
    subprocess.run([*base, "new-session", "-d", "-s", "bench", "sleep 3600"], check=True,
                   timeout=15)
    socket, pane = subprocess.run(
        [*base, "display-message", "-p", "#{socket_path} #{pane_id}"], check=True,
        capture_output=True, text=True, timeout=15).stdout.split()
    return {"TMUX": f"{socket},0,0", "TMUX_PANE": pane}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="runs of each way and status")
    ap.add_argument("--before", metavar="REV", help="also time the checkout at git REV")
    ap.add_argument("--pty", action="store_true", help="in a pty: the wrapper's pty path")
    ap.add_argument("--tmux", action="store_true", help="as inside tmux (a private server)")
    ap.add_argument("--shell", choices=("bash", "zsh"), default="bash",
                    help="the shell and its snippet (zsh: the sh script its `claude` runs)")
    args = ap.parse_args()
    server = f"cwbench{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        tmux_env = None
        if args.tmux:
            tmux_env = private_tmux(server)
        try:
            med = measure(Path(tmp), args.runs, args.before, args.pty, tmux_env, args.shell)
        finally:
            if args.tmux:
                subprocess.run(["tmux", "-L", server, "kill-server"], capture_output=True,
                               check=False)
    where = ("a pty" if args.pty else "stdin and stdout /dev/null") + (
        ", inside tmux" if args.tmux else "")
    print(f"`claude STATUS` through the shell (median of {args.runs}, ms; {args.shell}, one shell,"
          f" {where}):")
    print(f"  {'status':>6}  {'unwrapped':>9}  {'function':>9}  {'claudewrap run':>14}"
          f"  {'function added':>14}  {'function/run':>12}  {'python':>6}  {'python re':>9}")
    for s in STATUSES:
        u, f, r = med[("unwrapped", s)][0], med[("function", s)][0], med[("claudewrap run", s)][0]
        p, pr = med[("python", s)][0], med[("python re", s)][0]
        print(f"  {s:>6}  {u:9.1f}  {f:9.1f}  {r:14.1f}  {f - u:14.1f}  {f / r:12.2f}x"
              f"  {p:6.1f}  {pr:9.1f}")
    print("  (target: the function and wrapper add <= 40 ms whatever the status; the function"
          " itself, beyond `claudewrap run`, about nothing; `python re` is the floor of any"
          " pip console script)")
    names = ["function", "claudewrap run"] + ([f"run {args.before}"] if args.before else [])
    print("Added to `claude`, split at claude's start (ms, medians over every status;"
          " `to start`: until claude runs, `after`: from its exit to the prompt):")
    print(f"  {'way':>22}  {'total':>7}  {'to start':>8}  {'after':>7}")
    for name in names:
        added = [tuple(w - u for w, u in zip(med[(name, s)], med[("unwrapped", s)]))
                 for s in STATUSES]
        total, start, after = (statistics.median(a[i] for a in added) for i in range(3))
        print(f"  {name:>22}  {total:7.1f}  {start:8.1f}  {after:7.1f}")


if __name__ == "__main__":
    main()
