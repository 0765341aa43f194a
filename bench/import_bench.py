"""How fast `claudewrap import` reads Claude Code transcripts, beside two baselines.

    python bench/import_bench.py [--requests 200000] [--dir /tmp/cwimport] [--no-ccusage]

1. Writes N requests as Claude Code transcripts (bench/gen_journal.py's sessions,
   one file per session, DIR/transcripts-N/projects/<slug>/<session>.jsonl), once.
2. In one run, each in a fresh process, wall time and peak RSS of:
   - `claudewrap import --journal <empty journal> DIR/transcripts-N/projects`;
   - a naive stdlib read: `json.loads` of every line of the same files;
   - `ccusage daily --json --offline` (20.0.24, installed with npm into DIR/npm),
     with CLAUDE_CONFIG_DIR at the transcripts and an empty HOME;
   and the ratios. A second import into the same journal must add nothing.

Targets (issue 16): import no slower than ccusage, peak RSS <= 200 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from gen_journal import sessions, transcript_line

# The bar (issue 16): 20.0.24 is the newest whose per-platform native package the
# registry here has (20.0.26's is missing); 18.0.11, plain JavaScript, took 251 s
# and 12.6 GB on a year of transcripts and is no longer what people run.
CCUSAGE = "ccusage@20.0.24"

# Runs a command and prints its wall time and the peak RSS (MB) of the children.
_TIMER = ("import resource, subprocess, sys, time\n"
          "t = time.perf_counter()\n"
          "done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
          "took = time.perf_counter() - t\n"
          "sys.stderr.buffer.write(done.stderr)\n"
          "sys.stdout.buffer.write(done.stdout)\n"
          "print('\\n@@', done.returncode, took,"
          " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n")

_NAIVE = ("import json, pathlib, sys\n"
          "n = 0\n"
          "for f in sorted(pathlib.Path(sys.argv[1]).rglob('*.jsonl')):\n"
          "    with open(f, 'rb') as fh:\n"
          "        for line in fh:\n"
          "            json.loads(line)\n"
          "            n += 1\n"
          "print(n)\n")


class Run:
    def __init__(self, out: str, took: float, rss: float) -> None:
        self.out, self.took, self.rss = out, took, rss


def timed(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Wall time and peak RSS of ``argv`` in a fresh process; exits on failure."""
    done = subprocess.run([sys.executable, "-c", _TIMER, *argv], env=env, cwd=cwd,
                          capture_output=True, text=True, check=True)
    out, _, tail = done.stdout.rpartition("\n@@ ")
    rc, took, rss = tail.split()
    if rc != "0":
        sys.exit(f"{argv[0]} failed ({rc}): {done.stderr.strip()[-500:]}")
    return Run(out, float(took), float(rss))


def write_transcripts(folder: Path, requests: int) -> tuple[int, int, int]:
    """N requests as transcripts; (requests, files, bytes). Whole sessions: may pass N a little."""
    n = files = size = 0
    for _kind, session, attribution, reqs in sessions(7):
        if n >= requests:
            break
        reqs = reqs[:requests - n]
        sub = folder / "projects" / attribution["cwd"].replace("/", "-")
        sub.mkdir(parents=True, exist_ok=True)
        data = "".join(transcript_line(session, attribution, q) + "\n" for q in reqs)
        (sub / f"{session}.jsonl").write_text(data, encoding="utf-8")
        n += len(reqs)
        files += 1
        size += len(data)
    return n, files, size


def ccusage(transcripts: Path, npm_dir: Path, home: Path) -> Run | str:
    """`ccusage daily --json --offline` over the transcripts, or why it cannot run."""
    binary = npm_dir / "node_modules" / ".bin" / "ccusage"
    if not binary.exists():
        if shutil.which("npm") is None:
            return "npm not found"
        npm_dir.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", CCUSAGE],
                              check=False, cwd=npm_dir, capture_output=True, text=True)
        if done.returncode != 0 or not binary.exists():
            return f"npm install {CCUSAGE} failed: {done.stderr.strip()[-300:]}"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CLAUDE_CONFIG_DIR=str(transcripts), HOME=str(home))
    try:
        return timed([str(binary), "daily", "--json", "--offline"], env=env, cwd=npm_dir)
    except subprocess.CalledProcessError as exc:
        return f"ccusage failed: {exc.stderr.strip()[-300:]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/cwimport"))
    parser.add_argument("--no-ccusage", action="store_true")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    transcripts = args.dir / f"transcripts-{args.requests}"
    done_mark = transcripts / "done.json"
    if not done_mark.exists():
        shutil.rmtree(transcripts, ignore_errors=True)
        t = time.perf_counter()
        n, files, size = write_transcripts(transcripts, args.requests)
        done_mark.write_text(json.dumps({"requests": n, "files": files, "bytes": size}))
        print(f"generated in {time.perf_counter() - t:.1f} s")
    info = json.loads(done_mark.read_text())
    print(f"transcripts: {transcripts} ({info['requests']:,} requests in {info['files']:,}"
          f" files, {info['bytes'] / 1e6:.0f} MB)")

    env = dict(os.environ, CLAUDE_CONFIG_DIR=str(args.dir / "no-config"))
    env.pop("CLAUDEWRAP_JOURNAL", None)
    bare = min(timed([sys.executable, "-c", "pass"]).took for _ in range(3))
    naive = timed([sys.executable, "-c", _NAIVE, str(transcripts / "projects")])
    journal = args.dir / "journal.jsonl"
    journal.unlink(missing_ok=True)
    cw = [sys.executable, "-m", "claudewrap", "import", "--journal", str(journal),
          str(transcripts / "projects")]
    first = timed(cw, env=env)
    again = timed(cw, env=env)
    with open(journal, "rb") as fh:
        lines = sum(1 for _ in fh)
    print(f"python start:          {bare:7.2f} s")
    print(f"naive json.loads:      {naive.took:7.2f} s  {naive.rss:6.0f} MB"
          f"  ({int(naive.out.split()[-1]):,} lines)")
    print(f"claudewrap import:     {first.took:7.2f} s  {first.rss:6.0f} MB"
          f"  = {first.took / naive.took:.2f}x naive  ({first.out.strip()})")
    print(f"  again (adds nothing): {again.took:6.2f} s  {again.rss:6.0f} MB"
          f"  ({again.out.strip()}; journal {lines:,} records)")
    if lines != info["requests"]:
        print(f"  WRONG: {lines:,} records for {info['requests']:,} requests")
    if args.no_ccusage:
        return
    result = ccusage(transcripts, args.dir / "npm", args.dir / "empty-home")
    if isinstance(result, str):
        print(f"ccusage: not compared: {result}")
        return
    totals = json.loads(result.out).get("totals", {})
    print(f"ccusage daily --json:  {result.took:7.2f} s  {result.rss:6.0f} MB"
          f"  = {result.took / naive.took:.2f}x naive;"
          f" claudewrap import / ccusage = {first.took / result.took:.2f}x"
          f" (ccusage input tokens {int(totals.get('inputTokens', 0)):,})")


if __name__ == "__main__":
    main()
