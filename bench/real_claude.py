#!/usr/bin/env python3
"""What the wrapper adds to a real `claude` run: the real Claude Code CLI (each
pinned version the tests install in .cache/claude-code) on a fake Anthropic API
on 127.0.0.1 (tests/fake_api.py), side by side in one run (issue 14 item 3).

bench/shell_function.py times the shell function and the wrapper around a tiny
`claude` that exits at once. A real Claude Code makes the wrapper do what that
one never does: serve its OpenTelemetry exports, parse its output, read its
session transcript at the end, write the records. This times, on a pty, turn
by turn, `claude -p hi` (one API call, a short answer):

* ``direct``   the CLI alone;
* ``wrapped``  `claudewrap run -- -p hi`, as the shell's `claude` runs it
               (claudewrap from a clean venv, as a user's pip install);
* ``no otel``  the same without the OpenTelemetry receiver (``--no-otel``,
               started as ``run --`` is, without click): what Claude Code's
               own telemetry, which the wrapper turns on, costs is the difference;
* ``relay``    the pty relay alone (``--no-capture``, started the same way);
* ``before``   the same at git REV (``--before REV``), its own clean venv.

Printed per version: the median of each way, what the wrapper adds (its median
less direct's), and each wrapped run's journal checked against what the fake
API answered (one record with those tokens: a run that captured nothing would
be faster and wrong).

Then the interactive CLI in bash on a pty (``--exits N`` runs, 0 skips it):
from Enter on ``/exit`` to the shell's prompt, what the user waits for at the
end of every session, direct, wrapped and ``before``.

    python bench/real_claude.py [--runs 11] [--exits 5] [--before REV]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

import claude_code  # the tests' pinned installs and environment
from fake_api import FakeAnthropic, Usage
from passthrough import clean_install, run_in_pty
from real_output import relay_script

USAGE = Usage(input_tokens=1234, output_tokens=56, cache_read_tokens=7890, text="pong " * 40)


def checked(journal: Path, runs: int) -> str:
    """'ok' when the journal holds ``runs`` distinct requests with USAGE's tokens."""
    requests: dict[str, dict[str, int]] = {}
    if journal.exists():
        for line in journal.read_text().splitlines():
            record = json.loads(line)
            rid = record.get("request_id") or record.get("message_id")
            if rid:
                requests[rid] = record
    wrong = [r for r in requests.values()
             if (r.get("input_tokens"), r.get("output_tokens"), r.get("cache_read_tokens"))
             != (USAGE.input_tokens, USAGE.output_tokens, USAGE.cache_read_tokens)]
    if len(requests) != runs or wrong:
        return f"WRONG: {len(requests)} requests recorded for {runs} runs, {len(wrong)} wrong"
    return f"ok ({runs} runs, each its request with the API's tokens)"


def exit_wait(command: str, env: dict[str, str], cwd: Path) -> float:
    """ms from Enter on /exit to the prompt of the bash that ran ``command``."""
    import pexpect

    prompt = "PROMPT> "
    child = pexpect.spawn("bash", ["--norc", "--noprofile", "-i"], env=dict(env, PS1=prompt),
                          cwd=str(cwd), dimensions=(30, 100), timeout=30)
    try:
        child.expect_exact(prompt)
        child.sendline(command)
        child.expect(claude_code.READY)
        time.sleep(1.5)  # the prompt box is live
        child.send("/exit")
        child.expect(claude_code.drawn("/exit"))
        time.sleep(0.3)
        started = time.perf_counter()
        child.send("\r")
        child.expect_exact(prompt)
        return (time.perf_counter() - started) * 1000
    finally:
        child.close(force=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=11, help="runs of each way")
    ap.add_argument("--exits", type=int, default=5, help="interactive /exit runs of each way")
    ap.add_argument("--before", metavar="REV", help="also time the checkout at git REV")
    args = ap.parse_args()
    versions = [(v, p) for v in claude_code.VERSIONS if (p := claude_code.find(v)) is not None]
    if not versions:
        raise SystemExit(f"no pinned Claude Code installed: {claude_code.INSTALL_HINT}")
    work = Path(tempfile.mkdtemp(prefix="cw-real-claude-"))
    api = FakeAnthropic(usage=USAGE).start()
    try:
        _, cw = clean_install(work / "now")
        relay = relay_script(cw)
        no_otel = relay_script(cw, "otel=False", "claudewrap-no-otel")
        old_cw = None
        if args.before:
            old = work / "old"
            old.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
            _, old_cw = clean_install(old, root=old)
        print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
              f"{args.runs} runs of each way, turn by turn; ms, medians")
        for version, claude in versions:
            home = work / f"home-{version}"
            project = home / "project"
            project.mkdir(parents=True)
            claude_code.seed_home(home, [project], version)
            env = claude_code.claude_env(dict(os.environ), api.url, home)
            for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "CLAUDEWRAP_JOURNAL"):
                env.pop(name, None)
            env.update(TERM="xterm-256color", CLAUDEWRAP_CLAUDE=str(claude))
            ways = {"direct": [str(claude), "-p", "hi"], "wrapped": [cw, "run", "--", "-p", "hi"],
                    "no otel": [no_otel, "-p", "hi"], "relay": [relay, "-p", "hi"]}
            if old_cw:
                ways["before"] = [old_cw, "run", "--", "-p", "hi"]
            journals = {k: home / f"{k}.jsonl" for k in ways}
            ms: dict[str, list[float]] = {k: [] for k in ways}
            os.chdir(project)
            for way, argv in ways.items():  # warm-up: bytecode, page cache, Claude Code's caches
                run_in_pty(argv, dict(env, CLAUDEWRAP_JOURNAL=str(home / "warm.jsonl")))
            for _ in range(args.runs):
                for way, argv in ways.items():
                    took, _, _ = run_in_pty(argv, dict(env, CLAUDEWRAP_JOURNAL=str(journals[way])))
                    ms[way].append(took * 1000)
            direct = statistics.median(ms["direct"])
            print(f"Claude Code {version}: direct {direct:.0f}")
            for way in ways:
                if way == "direct":
                    continue
                median = statistics.median(ms[way])
                check = "" if way == "relay" else f"   journal: {checked(journals[way], args.runs)}"
                print(f"  {way:8s} {median:5.0f}  adds {median - direct:4.0f}{check}")
            if args.exits:
                typed = {"direct": str(claude), "wrapped": f"{cw} run --"}
                if old_cw:
                    typed["before"] = f"{old_cw} run --"
                waits: dict[str, list[float]] = {k: [] for k in typed}
                for _ in range(args.exits):
                    for way, command in typed.items():
                        waits[way].append(exit_wait(command, dict(
                            env, CLAUDEWRAP_JOURNAL=str(home / "exits.jsonl")), project))
                direct = statistics.median(waits["direct"])
                print(f"  interactive, Enter on /exit to the shell's prompt: direct {direct:.0f}"
                      + "".join(f", {way} {statistics.median(w):.0f} (adds "
                                f"{statistics.median(w) - direct:.0f})"
                                for way, w in waits.items() if way != "direct"))
        print("target: the wrapper adds <= 40 ms to every claude (issue 14 item 3)")
    finally:
        api.stop()
        os.chdir(ROOT)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
