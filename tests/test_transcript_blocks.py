"""Transcripts read in blocks (transcripts._read_file) give what a plain line-by-line
read gives: the same requests, commands, agents and sessions, wherever a block ends,
whatever the lines' shapes, with and without max_bytes; and `import` writes the
same journal lines as record_line of those requests."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from claudewrap.sources import transcripts
from claudewrap.store.journal import read_records

SESSION = "aaaaaaaa-2222-3333-4444-555555555555"


def reference(files: list[Path], max_bytes: int | None = None) -> dict[str, transcripts.Request]:
    """The plain reading: every line in order, parse_line (the tolerant reader)
    for each usage line, a turn per prompt line."""
    found: dict[str, transcripts.Request] = {}
    for path in files:
        main = path.parent.name != "subagents"
        sub_agent, command = (None, None) if main else transcripts._subagent_context(path)
        turn = transcripts._Turn()
        data = path.read_bytes()
        if max_bytes is not None and len(data) > max_bytes:
            data = data[len(data) - max_bytes:]
            data = data[data.find(b"\n") + 1:] if b"\n" in data else b""
        pieces = data.split(b"\n")  # as iterating over the file gives them
        for line in [p + b"\n" for p in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else []):
            if b'"usage"' not in line or b'"assistant"' not in line:
                if main:
                    turn.other_line(line)
                continue
            req = transcripts.parse_line(line)
            if req is None:
                continue
            req.command = turn.request(line, req.request_id) if main else command
            if req.agent == transcripts.UNNAMED_AGENT and sub_agent is not None:
                req.agent = sub_agent
            if req.claude_session is None:
                req.claude_session = path.stem if "agent-" not in path.stem else None
            old = found.get(req.request_id)
            if old is None or req.better_than(old):
                found[req.request_id] = req
    return found


def usage_line(rng: random.Random, rid: str, **extra: Any) -> str:
    usage: dict[str, Any] = {"input_tokens": rng.randint(0, 5000),
                             "output_tokens": rng.randint(0, 3000),
                             "cache_read_input_tokens": rng.randint(0, 100_000),
                             "cache_creation_input_tokens": rng.randint(0, 9000)}
    if rng.random() < 0.02:  # an odd value: the whole block goes to the tolerant reader
        usage["input_tokens"] = rng.choice([10.0, -5, "7", None, 10**12])
    content: list[dict[str, Any]] = [{"type": "text", "text": "x" * rng.randint(0, 3000)}]
    if rng.random() < 0.05:
        content.append({"type": "tool_use", "id": f"tu_{rid}", "name": "Skill",
                        "input": {"skill": rng.choice(["review", "deploy"])}})
    line = {"type": "assistant", "isSidechain": False, "sessionId": SESSION,
            "cwd": rng.choice(["/work/p", "/work/q", None]),
            "timestamp": rng.choice(["2026-08-20T10:21:56.220Z", "2026-08-20T10:21:57+00:00"]),
            "requestId": rid,
            "message": {"model": rng.choice(["claude-opus-4-8", "claude-haiku-4-5[1m]",
                                             "<synthetic>"]),
                        "id": f"msg_{rid}", "role": "assistant", "content": content,
                        "usage": usage},
            **extra}
    if rng.random() < 0.1:
        del line["requestId"]
    return json.dumps(line, separators=(",", ":") if rng.random() < 0.9 else (", ", ": "))


def other_line(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.3:
        return json.dumps({"type": "user", "message": {"role": "user", "content": rng.choice([
            "<command-name>/review</command-name> go", "<command-name>/ship</command-name>",
            "typed " + "y" * rng.randint(0, 2000)])}}, separators=(",", ":"))
    if pick < 0.4:
        return json.dumps({"type": "user", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t"}]}}, separators=(",", ":"))
    if pick < 0.5:
        return "{torn line"
    if pick < 0.55:
        return ""
    if pick < 0.6:  # "usage" in a user's words: not an assistant line
        return json.dumps({"type": "user", "message": {"role": "user",
                                                       "content": "what is my usage"}},
                          separators=(",", ":"))
    return json.dumps({"type": "progress", "data": "z" * rng.randint(0, 5000)})


def write_files(root: Path, seed: int) -> list[Path]:
    rng = random.Random(seed)
    folder = root / "-work-p"
    (folder / SESSION / "subagents").mkdir(parents=True)
    main = folder / f"{SESSION}.jsonl"
    lines = []
    size = 0
    n = 0
    while size < 3 << 20:  # three blocks and more
        if seed % 2 == 0 and rng.random() < 0.0005:  # lines longer than a block
            lines.append(json.dumps({"type": "user", "message": {
                "role": "user", "content": "<command-name>/big</command-name>" + "b" * (
                    rng.randint(1, 3) << 20)}}, separators=(",", ":")))
            n += 1
            lines.append(usage_line(rng, f"req_{n}").replace('"text":"', '"text":"' + "c" * (
                rng.randint(1, 3) << 20), 1))
        elif rng.random() < 0.5:
            n += rng.random() < 0.7  # a request's blocks repeat its id
            lines.append(usage_line(rng, f"req_{n}"))
        else:
            lines.append(other_line(rng))
        size += len(lines[-1]) + 1
    main.write_text("\n".join(lines) + ("\n" if seed % 2 else ""))  # the last line ends or not
    sub = folder / SESSION / "subagents" / "agent-7.jsonl"
    sub.write_text("\n".join(usage_line(rng, f"req_{rng.randint(0, n + 5)}", isSidechain=True,
                                        **({"attributionAgent": "Explore"}
                                           if rng.random() < 0.5 else {}))
                             for _ in range(300)) + "\n")
    (folder / SESSION / "subagents" / "agent-7.meta.json").write_text(
        json.dumps({"agentType": "reviewer", "toolUseId": "tu_req_3"}))
    return [main, sub]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_blocks_read_as_the_plain_reading(tmp_path: Path, seed: int) -> None:
    files = write_files(tmp_path, seed)
    assert transcripts.read_requests(files) == reference(files)
    for max_bytes in (1000, 1 << 20, (1 << 20) + 12345, 5 << 20):
        assert transcripts.read_requests(files, max_bytes=max_bytes) == reference(
            files, max_bytes), max_bytes


def test_import_writes_record_line_of_each_request(tmp_path: Path) -> None:
    files = write_files(tmp_path, 5)
    journal = tmp_path / "j.jsonl"
    result = transcripts.import_paths([tmp_path], journal)
    want = reference(files[:1])
    for rid, req in reference(files[1:]).items():
        want.setdefault(rid, req)  # the session's file first: a replay finds it taken
    assert result.added == len(want)
    got = journal.read_bytes().splitlines(keepends=True)
    recs = {r.request_id: r for r in read_records(journal)}
    assert set(recs) == set(want)
    for line in got:
        rid = json.loads(line)["request_id"]
        req = want[rid]
        project = transcripts._project_of(req.cwd) if req.cwd else None
        assert line == transcripts.record_line(req, recs[rid].host, project)
