"""Claude Code's transcripts: `claudewrap import` and the end-of-run reconciliation."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from claude_code import claude_cli, claude_env, seed_home  # noqa: F401 - a fixture
from conftest import CW
from fake_api import FakeAnthropic, Usage

from claudewrap import transcripts
from claudewrap.journal import append_records, read_records
from claudewrap.records import UsageRecord

SESSION = "11111111-2222-3333-4444-555555555555"


def assistant(rid: str | None, out: int, *, msg: str | None = None,
              model: str = "claude-haiku-4-5-20251001", sidechain: bool = False,
              ts: str = "2026-08-20T10:21:56.220Z", **extra: Any) -> str:
    line = {
        "parentUuid": "p", "isSidechain": sidechain, "type": "assistant", "uuid": "u",
        "timestamp": ts, "cwd": "/work/proj", "sessionId": SESSION, "version": "2.1.233",
        "message": {"model": model, "id": msg or f"msg_{rid}", "type": "message",
                    "role": "assistant", "content": [{"type": "text", "text": "secret reply"}],
                    "usage": {"input_tokens": 10, "cache_creation_input_tokens": 9907,
                              "cache_read_input_tokens": 22820, "output_tokens": out,
                              "cache_creation": {"ephemeral_1h_input_tokens": 9907}}},
        **extra,
    }
    if rid is not None:
        line["requestId"] = rid
    return json.dumps(line)


def write_session(root: Path) -> Path:
    """A project folder with one session, a subagent file and noise."""
    folder = root / "-work-proj"
    (folder / SESSION / "subagents").mkdir(parents=True)
    main = folder / f"{SESSION}.jsonl"
    main.write_text("\n".join([
        json.dumps({"type": "user", "message": {"role": "user", "content": "secret prompt"},
                    "sessionId": SESSION}),
        # one request, streamed as several content blocks: 1, 1, 1130
        assistant("req_A", 1), assistant("req_A", 1), assistant("req_A", 1130),
        assistant("req_B", 42, model="claude-opus-4-8"),
        # a message id only (older versions)
        assistant(None, 7, msg="msg_only"),
        # an error Claude Code made up: not usage
        assistant("req_err", 0, model="<synthetic>", isApiErrorMessage=True),
        "{torn line",
        json.dumps({"type": "last-prompt", "lastPrompt": "secret prompt"}),
    ]) + "\n")
    # the subagent replays req_B (and has one request of its own)
    (folder / SESSION / "subagents" / "agent-1.jsonl").write_text("\n".join([
        assistant("req_B", 42, model="claude-opus-4-8", sidechain=True),
        assistant("req_C", 5, sidechain=True),
    ]) + "\n")
    return folder


def test_one_record_per_request_largest_snapshot_no_replays(tmp_path: Path) -> None:
    write_session(tmp_path)
    found = transcripts.read_requests(transcripts.transcript_files([tmp_path]))
    assert sorted(found) == ["msg_only", "req_A", "req_B", "req_C"]
    assert found["req_A"].output_tokens == 1130
    assert (found["req_A"].input_tokens, found["req_A"].cache_read_tokens,
            found["req_A"].cache_write_tokens) == (10, 22820, 9907)
    assert found["req_A"].model == "claude-haiku-4-5-20251001"
    assert not found["req_B"].sidechain and found["req_C"].sidechain
    assert {r.claude_session for r in found.values()} == {SESSION}


def test_import_is_idempotent_and_stores_no_text(tmp_path: Path, env: dict[str, str]) -> None:
    write_session(tmp_path / "projects")
    journal = Path(env["CLAUDEWRAP_JOURNAL"])

    def run(*args: str) -> str:
        out = subprocess.run([*CW, "import", *args], env=env, check=False, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert "added 4 records" in run(str(tmp_path / "projects"))
    recs = list(read_records(journal))
    assert {(r.source, r.kind, r.session, r.claude_session, r.cost_usd) for r in recs} == {
        ("transcript", "delta", SESSION, SESSION, None)}
    assert sum(r.output_tokens for r in recs) == 1130 + 42 + 7 + 5
    assert {r.project for r in recs} == {"proj"}
    text = journal.read_text()
    assert "secret" not in text
    assert "added 0 records" in run(str(tmp_path / "projects"))
    assert len(list(read_records(journal))) == 4


def test_import_skips_requests_otel_already_recorded(tmp_path: Path) -> None:
    write_session(tmp_path)
    journal = tmp_path / "j.jsonl"
    append_records(journal, [UsageRecord(ts="2026-08-20T10:21:56.000Z", session="w",
                                         source="otel", request_id="req_A", output_tokens=1130)])
    result = transcripts.import_paths([tmp_path], journal)
    assert result.added == 3
    added = [r.request_id for r in read_records(journal) if r.source == "transcript"]
    assert sorted(x or "" for x in added) == ["msg_only", "req_B", "req_C"]


def test_import_since_skips_older_requests(tmp_path: Path) -> None:
    folder = tmp_path / "-p"
    folder.mkdir()
    (folder / "s.jsonl").write_text("\n".join([
        assistant("req_old", 5, ts="2020-01-01T00:00:00.000Z"),
        assistant("req_new", 6, ts="2099-01-01T00:00:00.000Z"),
    ]) + "\n")
    result = transcripts.import_paths([tmp_path], tmp_path / "j.jsonl",
                                      since=time.mktime((2025, 1, 1, 0, 0, 0, 0, 0, -1)))
    assert [r.request_id for r in result.records or []] == ["req_new"]


def test_default_roots_follow_claude_config_dir(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        (d / "projects").mkdir(parents=True)
    assert transcripts.default_roots({"CLAUDE_CONFIG_DIR": f"{a}, {b}"}) == [a / "projects",
                                                                             b / "projects"]
    home = tmp_path / "home"
    (home / ".claude" / "projects").mkdir(parents=True)
    assert transcripts.default_roots({"HOME": str(home)}) == [home / ".claude" / "projects"]


def test_import_without_transcripts_says_where_it_looked(env: dict[str, str]) -> None:
    out = subprocess.run([*CW, "import"], env=env, check=False, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1
    assert "no Claude Code transcripts found" in out.stderr and ".claude/projects" in out.stderr


def test_reconcile_adds_only_what_otel_missed_and_only_from_this_run(tmp_path: Path) -> None:
    root = tmp_path / "config"
    folder = root / "projects" / "-work-proj"
    folder.mkdir(parents=True)
    now = time.time()
    recent = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now))
    (folder / f"{SESSION}.jsonl").write_text("\n".join([
        assistant("req_before", 9, ts="2020-01-01T00:00:00.000Z"),  # a resumed session's past
        assistant("req_seen", 1, ts=recent), assistant("req_seen", 30, ts=recent),
        assistant("req_missed", 1, ts=recent), assistant("req_missed", 40, ts=recent),
    ]) + "\n")
    journal = tmp_path / "j.jsonl"
    warning = transcripts.reconcile(
        session="wrap", attribution={"project": "mine", "tmux_pane": "%1"}, journal=str(journal),
        claude_sessions={SESSION}, known_request_ids={"req_seen"}, started=now - 1,
        env={"CLAUDE_CONFIG_DIR": str(root)})
    assert warning is None
    (rec,) = read_records(journal)
    assert (rec.request_id, rec.output_tokens, rec.session, rec.claude_session, rec.project,
            rec.tmux_pane, rec.source) == ("req_missed", 40, "wrap", SESSION, "mine", "%1",
                                           "transcript")


# ------------------------------------------------------------ the real CLI


def test_real_transcripts_import_exactly_once(env: dict[str, str], tmp_path: Path,
                                              claude_cli: Path) -> None:  # noqa: F811
    api = FakeAnthropic(usage=Usage(777, 88, 9999, 1111, text="ok")).start()
    try:
        home, work = tmp_path / "home", tmp_path / "proj"
        work.mkdir()
        seed_home(home, [work])
        cenv = claude_env(env, api.url, home)
        for prompt in ("one", "two"):
            done = subprocess.run([str(claude_cli), "-p", prompt], env=cenv, cwd=work,
                                  check=False, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
    finally:
        api.stop()
    out = subprocess.run([*CW, "import"], env=cenv, check=False, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    recs = list(read_records(Path(env["CLAUDEWRAP_JOURNAL"])))
    assert sorted(r.request_id or "" for r in recs) == sorted(a.request_id for a in api.answers)
    (model,) = api.totals()
    assert sum(r.input_tokens for r in recs) == api.totals()[model]["input_tokens"]
    assert sum(r.output_tokens for r in recs) == api.totals()[model]["output_tokens"]
    assert sum(r.cache_read_tokens for r in recs) == api.totals()[model]["cache_read_tokens"]
    assert sum(r.cache_write_tokens for r in recs) == api.totals()[model]["cache_write_tokens"]
    assert {r.model for r in recs} == {model}
    assert {r.project for r in recs} == {"proj"} and len({r.session for r in recs}) == 2
    again = subprocess.run([*CW, "import"], env=cenv, check=False, capture_output=True,
                           text=True, timeout=60)
    assert "added 0 records" in again.stdout
    assert len(list(read_records(Path(env["CLAUDEWRAP_JOURNAL"])))) == len(recs)
    assert os.path.isdir(home / ".claude" / "projects")


def test_project_slug_matches_claude_code() -> None:
    # Every character but ASCII letters and digits becomes "-" (tmp_path's
    # underscores included: the --no-otel test in test_claude_code.py finds
    # the real CLI's folder this way).
    assert transcripts.project_slug("/home/me/my_proj.v2") == "-home-me-my-proj-v2"
