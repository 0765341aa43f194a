"""Generate a realistic claudewrap journal (and the same usage as Claude Code transcripts).

    python bench/gen_journal.py OUT.jsonl --records 1000000 --seed 1 [--transcripts DIR]

The usage is a seeded list of API requests grouped in sessions over a year.
Each session is written to the journal the way one source would record it:

- ``pty`` deltas with the printed cost (``claude -p --output-format json`` runs);
- ``pty`` running totals, some re-printed unchanged (a redrawn ``/cost`` block);
- ``transcript`` deltas with request ids;
- ``otel`` deltas with request ids, half of them also imported from the
  transcript (same request id: must count once).

With ``--transcripts DIR`` every request is also written once as a Claude Code
transcript line (``DIR/projects/<slug>/<session>.jsonl``), so that other tools
(ccusage) can summarise the same usage. A few corrupt journal lines are mixed in.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from claudewrap.plain import plain
from claudewrap.store.records import UsageRecord
from claudewrap.usage.pricing import default_table

MODELS = ["claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805",
          "claude-haiku-4-5-20251001", "claude-sonnet-4-20250514", "claude-3-5-haiku-20241022"]
PROJECTS = [f"project-{i:02d}" for i in range(24)]
HOSTS = ["laptop", "workstation", "ci-runner"]
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
# The naive read the benches measure readers against: json.loads of every line
# (a line that is not JSON skipped, as readers skip and count it: the generated
# journals hold a few, as real ones do).
NAIVE_READ = ("import json, sys\n"
              "with open(sys.argv[1], 'rb') as fh:\n"
              "    for line in fh:\n"
              "        try:\n"
              "            json.loads(line)\n"
              "        except ValueError:\n"
              "            pass\n")


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class Request:
    __slots__ = ("cache_read", "cache_write", "input", "model", "output", "rid", "ts")

    def __init__(self, rng: random.Random, ts: datetime, model: str, n: int) -> None:
        self.ts = ts
        self.model = model
        self.input = rng.randint(1, 4000)
        self.output = rng.randint(1, 3000)
        self.cache_read = rng.choice((0, rng.randint(1000, 200_000)))
        self.cache_write = rng.choice((0, 0, rng.randint(100, 30_000)))
        self.rid = f"req_{n:024x}"


@plain
class Shape:
    """When sessions start (``span`` seconds from ``start``, default START), how many
    requests they make, how far apart (seconds), and a time no request passes."""

    start: datetime | None = None
    span: int = 365 * 86400
    size: tuple[int, int] = (5, 150)
    gap: tuple[int, int] = (3, 240)
    until: datetime | None = None
    first: int = 0  # session numbers (and so request ids) start after this one


YEAR = Shape()


def today_shape(now: datetime, hours: float = 16) -> Shape:
    """A heavy day (a team's shared journal, a long agentic day): sessions of 100
    to 800 requests, 2 to 60 s apart, started in the ``hours`` before ``now``, none
    past it; their request ids are not the year's."""
    return Shape(start=now - timedelta(hours=hours), span=int(hours * 3600), size=(100, 800),
                 gap=(2, 60), until=now, first=10_000_000)


def sessions(seed: int, shape: Shape = YEAR
             ) -> Iterator[tuple[str, str, dict[str, Any], list[Request]]]:
    """(kind, session id, attribution, requests), forever."""
    rng = random.Random(seed)
    n = shape.first
    origin = START if shape.start is None else shape.start
    while True:
        n += 1
        kind = rng.choices(("pty-delta", "pty-total", "transcript", "otel"),
                           weights=(40, 20, 25, 15))[0]
        start = origin + timedelta(seconds=rng.randint(0, shape.span))
        size = rng.randint(*shape.size)
        models = [rng.choice(MODELS)] + ([rng.choice(MODELS)] if rng.random() < 0.3 else [])
        reqs: list[Request] = []
        when = start
        for _ in range(size):
            when += timedelta(seconds=rng.randint(*shape.gap), milliseconds=rng.randint(0, 999))
            if shape.until is not None and when > shape.until:
                break
            reqs.append(Request(rng, when, rng.choice(models), n * 1000 + len(reqs)))
        if not reqs:
            continue
        project = rng.choice(PROJECTS)
        attribution: dict[str, Any] = {"project": project, "cwd": f"/home/dev/src/{project}",
                       "host": rng.choice(HOSTS), "tmux_pane": f"%{rng.randint(0, 40)}"}
        if rng.random() < 0.3:
            attribution["tags"] = {"agent": rng.choice(("coordinator", "worker", "reviewer"))}
        yield kind, f"{seed:04x}-{n:08x}", attribution, reqs


def journal_lines(kind: str, session: str, attribution: dict[str, Any], reqs: list[Request],
                  rng: random.Random) -> Iterator[str]:
    table = default_table()

    def rec(**kw: Any) -> str:
        r = UsageRecord(session=session, **kw)
        for key, value in attribution.items():
            setattr(r, key, value)
        return r.to_json()

    if kind == "pty-delta":
        for q in reqs:
            cost = table.cost(q.model, q.input, q.output, q.cache_read, q.cache_write)
            yield rec(ts=_iso(q.ts), source="pty", model=q.model, input_tokens=q.input,
                      output_tokens=q.output, cache_read_tokens=q.cache_read,
                      cache_write_tokens=q.cache_write, cost_usd=round(cost or 0, 6),
                      pattern="json-result")
    elif kind == "pty-total":
        sums: dict[str, list[int]] = {}
        for q in reqs:
            s = sums.setdefault(q.model, [0, 0, 0, 0])
            s[0] += q.input
            s[1] += q.output
            s[2] += q.cache_read
            s[3] += q.cache_write
            line = rec(ts=_iso(q.ts), source="pty", kind="total", model=q.model,
                       input_tokens=s[0], output_tokens=s[1], cache_read_tokens=s[2],
                       cache_write_tokens=s[3], pattern="cost-block")
            yield line
            if rng.random() < 0.1:  # the TUI redrew the same block
                yield line
    else:
        for q in reqs:
            common = {"model": q.model, "input_tokens": q.input, "output_tokens": q.output,
                      "cache_read_tokens": q.cache_read, "cache_write_tokens": q.cache_write,
                      "request_id": q.rid, "claude_session": session}
            yield rec(ts=_iso(q.ts), source=kind, pattern=kind, **common)
            if kind == "otel" and rng.random() < 0.5:
                yield rec(ts=_iso(q.ts + timedelta(seconds=1)), source="transcript",
                          pattern="transcript", **common)


def transcript_line(session: str, attribution: dict[str, Any], q: Request) -> str:
    return json.dumps({
        "parentUuid": None, "isSidechain": False, "userType": "external",
        "cwd": attribution["cwd"], "sessionId": session, "version": "2.1.233",
        "gitBranch": "main", "type": "assistant", "uuid": f"u-{q.rid}",
        "timestamp": _iso(q.ts), "requestId": q.rid,
        "message": {"model": q.model, "id": f"msg_{q.rid[4:]}", "type": "message",
                    "role": "assistant", "content": [{"type": "text", "text": "ok"}],
                    "stop_reason": "end_turn",
                    "usage": {"input_tokens": q.input, "output_tokens": q.output,
                              "cache_creation_input_tokens": q.cache_write,
                              "cache_read_input_tokens": q.cache_read}},
    }, separators=(",", ":"))


def generate(out: IO[str], records: int, seed: int, transcripts: Path | None = None,
             corrupt_every: int = 200_000, shape: Shape = YEAR) -> dict[str, int]:
    """Write whole sessions until at least ``records`` journal lines; return the true totals."""
    rng = random.Random(seed + 1)
    totals = {"input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0,
              "cache_write_tokens": 0, "requests": 0, "records": 0}
    written = 0
    for kind, session, attribution, reqs in sessions(seed, shape):
        if written >= records:
            break
        for line in journal_lines(kind, session, attribution, reqs, rng):
            out.write(line + "\n")
            written += 1
            if corrupt_every and written % corrupt_every == 0:
                out.write('{"ts":"2026-01-01T00:00:00.000Z","session":\n')  # a torn line
        for q in reqs:
            totals["input_tokens"] += q.input
            totals["output_tokens"] += q.output
            totals["cache_read_tokens"] += q.cache_read
            totals["cache_write_tokens"] += q.cache_write
            totals["requests"] += 1
        if transcripts is not None:
            folder = transcripts / "projects" / attribution["cwd"].replace("/", "-")
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / f"{session}.jsonl", "a", encoding="utf-8") as t:
                t.writelines(transcript_line(session, attribution, q) + "\n" for q in reqs)
    totals["records"] = written
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--transcripts", type=Path)
    parser.add_argument("--append", action="store_true", help="append to OUT")
    parser.add_argument("--today", type=float, metavar="HOURS",
                        help="a heavy day instead of a year: sessions of the last HOURS"
                             " hours (today_shape), e.g. --append --today 16 --records 50000")
    args = parser.parse_args()
    shape = YEAR if args.today is None else today_shape(datetime.now(timezone.utc), args.today)
    with open(args.out, "a" if args.append else "w", encoding="utf-8") as out:
        totals = generate(out, args.records, args.seed, args.transcripts,
                          corrupt_every=200_000 if args.today is None else 0, shape=shape)
    print(json.dumps(totals))


if __name__ == "__main__":
    main()
