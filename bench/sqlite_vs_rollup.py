"""SQLite or the rollup for the usage core's warm state? (issue 16)

    python bench/sqlite_vs_rollup.py [--records 100000] [--dir /tmp/cwbench-sqlite]

One realistic journal (bench/gen_journal.py: a year of sessions ending yesterday)
plus 1,000 records of the last minutes. Two ways to answer "what did today cost",
each timed as a whole fresh process (imports included), best of 3, beside the
interpreter's bare start:

- rollup: what claudewrap does today (claudewrap.usage.rollup.load_state: the
  saved state of the whole journal plus its new lines, then the report's today);
- sqlite: the journal's lines in an SQLite table (indexes on ts, session and
  claude_session); today's sessions found through the ts index, then every
  record of those sessions and of the sessions linked to them (by session or
  Claude session id, to a fixed point: the rule links units only that way) read
  back in journal order, fed to a fresh UsageState, and its today period.

Both must give the same cost (printed). Also printed: the time and size of each
store's build, and peak RSS. The sqlite side is what a per-reader query would
cost; it leaves out keeping the table in step with the journal (an insert per
new line, under the journal's lock).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import gen_journal
from readers import YEAR_START, recent_records

gen_journal.START = YEAR_START

_TIMED = ("import resource, subprocess, sys, time\n"
          "t = time.perf_counter()\n"
          "out = subprocess.run(sys.argv[1:], check=True, capture_output=True, text=True).stdout\n"
          "print(time.perf_counter() - t,"
          " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, out.strip())\n")

ROLLUP = """
import sys
from pathlib import Path
from claudewrap.usage.report import make_report
from claudewrap.usage.rollup import load_state
row = make_report(load_state(Path(sys.argv[1])), count_sessions=False).periods["today"]
print(round(row.cost_usd, 6), row.input_tokens)
"""

SQLITE = """
import json, sqlite3, sys
from datetime import datetime, timezone
from claudewrap.store.records import UsageRecord
from claudewrap.usage.report import make_report
from claudewrap.usage.state import UsageState
db = sqlite3.connect(sys.argv[1])
today = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
since = today.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
ids = set()
for s, c in db.execute("SELECT session, claude_session FROM records WHERE ts >= ?", (since,)):
    ids.add(s)
    if c:
        ids.add(c)
rows = {}
rids = set()
for _ in range(20):  # linked sessions and shared request ids to a fixed point (bounded)
    marks = ",".join("?" * len(ids))
    rmarks = ",".join("?" * len(rids))
    new, new_rids = set(), set()
    query = (f"SELECT offset, line, session, claude_session, request_id FROM records"
             f" WHERE session IN ({marks}) OR claude_session IN ({marks})")
    if rids:
        query += f" OR request_id IN ({rmarks})"
    for off, line, s, c, r in db.execute(query, [*ids, *ids, *rids]):
        rows[off] = line
        new.add(s)
        if c:
            new.add(c)
        if r:
            new_rids.add(r)
    if new <= ids and new_rids <= rids:
        break
    ids |= new
    rids |= new_rids
state = UsageState()
state.add_records(UsageRecord.from_dict(json.loads(rows[k])) for k in sorted(rows))
row = make_report(state, count_sessions=False).periods["today"]
print(round(row.cost_usd, 6), row.input_tokens, len(rows))
"""


def build_sqlite(journal: Path, db_path: Path) -> float:
    db_path.unlink(missing_ok=True)
    t = time.perf_counter()
    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE records (offset INTEGER PRIMARY KEY, ts TEXT, session TEXT,"
               " claude_session TEXT, request_id TEXT, line TEXT)")
    rows = []
    offset = 0
    with open(journal, "rb") as fh:
        for raw in fh:
            try:
                obj = json.loads(raw)
            except ValueError:
                offset += len(raw)
                continue
            if isinstance(obj, dict) and isinstance(obj.get("ts"), str):
                rows.append((offset, obj["ts"], obj.get("session"), obj.get("claude_session"),
                             obj.get("request_id"), raw.decode("utf-8", "replace")))
            offset += len(raw)
    db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)", rows)
    for col in ("ts", "session", "claude_session", "request_id"):
        db.execute(f"CREATE INDEX records_{col} ON records ({col})")
    db.commit()
    db.close()
    return time.perf_counter() - t


def timed(argv: list[str], env: dict[str, str], runs: int = 3) -> tuple[float, float, str]:
    best = (float("inf"), 0.0, "")
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _TIMED, *argv], env=env, check=True,
                             capture_output=True, text=True).stdout.split(maxsplit=2)
        t, rss, answer = float(out[0]), float(out[1]), out[2].strip() if len(out) > 2 else ""
        if t < best[0]:
            best = (t, max(best[1], rss), answer)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/cwbench-sqlite"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    journal = args.dir / f"journal-{args.records}.jsonl"
    t = time.perf_counter()
    with open(journal, "w", encoding="utf-8") as out:
        gen_journal.generate(out, args.records, seed=1)
    with open(journal, "a", encoding="utf-8") as out:
        out.write(recent_records(1000, seed=5))
    print(f"journal: {journal} ({journal.stat().st_size / 1e6:.0f} MB), generated in"
          f" {time.perf_counter() - t:.0f} s")
    env = dict(os.environ, TZ="UTC")
    for name in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "CLAUDEWRAP_JOURNAL"):
        env.pop(name, None)
    from claudewrap.usage import rollup

    rollup.cache_path(journal).unlink(missing_ok=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", ROLLUP, str(journal)], env=env, check=True,
                   capture_output=True)
    rollup_build = time.perf_counter() - t
    db_path = args.dir / f"journal-{args.records}.sqlite"
    sqlite_build = build_sqlite(journal, db_path)
    bare = timed(["true"], env)[0]
    start = min(timed([sys.executable, "-c", "pass"], env)[0] for _ in range(2))
    r = timed([sys.executable, "-c", ROLLUP, str(journal)], env)
    s = timed([sys.executable, "-c", SQLITE, str(db_path)], env)
    size_r = rollup.cache_path(journal).stat().st_size / 1e6
    size_s = db_path.stat().st_size / 1e6
    print(f"python start {start * 1000:.0f} ms (a bare process {bare * 1000:.0f} ms)")
    print(f"rollup: built in {rollup_build:.2f} s ({size_r:.1f} MB); today warm"
          f" {r[0] * 1000:.0f} ms = start + {(r[0] - start) * 1000:.0f} ms, {r[1]:.0f} MB;"
          f" today = {r[2]}")
    print(f"sqlite: built in {sqlite_build:.2f} s ({size_s:.1f} MB); today"
          f" {s[0] * 1000:.0f} ms = start + {(s[0] - start) * 1000:.0f} ms, {s[1]:.0f} MB;"
          f" today = {s[2]} (cost, input tokens, records read)")
    same = r[2].split()[:2] == s[2].split()[:2]
    print("same answer" if same else "ANSWERS DIFFER")


if __name__ == "__main__":
    main()
