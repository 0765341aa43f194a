"""Claude Code's transcripts: `claudewrap import` and the end-of-run reconciliation."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pexpect
import pytest
from claude_code import (  # noqa: F401 - fixtures
    READY,
    claude_cli,
    claude_env,
    claude_version,
    seed_home,
    submit,
)
from conftest import CW, wait_until
from fake_api import FakeAnthropic, Usage

from claudewrap.sources import claude_dirs, transcripts
from claudewrap.store.journal import append_records, read_records
from claudewrap.store.records import UsageRecord

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
    assert result.added == 1
    assert [r.request_id for r in read_records(tmp_path / "j.jsonl")] == ["req_new"]


def test_a_subagent_replay_never_replaces_the_main_thread_request(tmp_path: Path) -> None:
    folder = write_session(tmp_path)  # its subagent file sorts before the session's file
    (folder / SESSION / "subagents" / "agent-1.jsonl").write_text(
        assistant("req_B", 999, model="claude-opus-4-8", sidechain=True) + "\n")
    journal = tmp_path / "j.jsonl"
    assert transcripts.import_paths([folder], journal).added == 3
    assert {r.request_id: r.output_tokens for r in read_records(journal)} == {
        "req_A": 1130, "req_B": 42, "msg_only": 7}


def test_many_files_import_each_request_once_in_file_order(tmp_path: Path) -> None:
    # enough files for the worker processes: replays and copies across files still count once
    folder = write_session(tmp_path)
    n = transcripts.PARALLEL_FILES + 10
    for i in range(n):
        (folder / f"s{i:03d}.jsonl").write_text("\n".join([
            assistant(f"req_{i}", 1), assistant(f"req_{i}", i + 1),
            assistant("req_A", 1130),  # a resumed session's copy of an earlier request
        ]) + "\n")
        sub = folder / f"s{i:03d}" / "subagents"
        sub.mkdir(parents=True)
        (sub / "agent-1.jsonl").write_text(assistant(f"req_{i}", 999, sidechain=True) + "\n")
    journal = tmp_path / "j.jsonl"
    result = transcripts.import_paths([folder], journal)
    assert (result.files, result.requests, result.added) == (2 * n + 2, n + 4, n + 4)
    got = {r.request_id: r.output_tokens for r in read_records(journal)}
    assert got == {"req_A": 1130, "req_B": 42, "msg_only": 7, "req_C": 5,
                   **{f"req_{i}": i + 1 for i in range(n)}}
    assert transcripts.import_paths([folder], journal).added == 0


def test_import_writes_the_lines_the_record_type_writes(tmp_path: Path) -> None:
    # record_line builds the journal line without a UsageRecord: it must be the same bytes.
    def req(**kw: Any) -> transcripts.Request:
        base: dict[str, Any] = {
            "request_id": "req_1", "claude_session": SESSION, "model": "claude-haiku-4-5",
            "ts": "2026-08-20T10:21:56.220Z", "cwd": "/work/proj", "input_tokens": 10,
            "output_tokens": 1130, "cache_read_tokens": 22820, "cache_write_tokens": 9907,
            "sidechain": False}
        return transcripts.Request(**{**base, **kw})

    for r in (req(), req(model=None), req(cwd=None), req(claude_session=None),
              req(cwd="/home/jörg/\u2028\"q\"\\x"), req(cwd="/tmp/bad-\udcff-name"),
              req(input_tokens=10**10, output_tokens=0)):
        rec = transcripts.to_record(r, host="box")
        assert transcripts.record_line(r, "box", rec.project) == (
            rec.to_json() + "\n").encode("utf-8", "backslashreplace")


@pytest.mark.parametrize("usage", [
    '{"input_tokens": 10.0, "output_tokens": 1130, "cache_read_input_tokens": null}',
    '{"input_tokens": "10", "output_tokens": 1130, "cache_creation_input_tokens": -5}',
    '{"input_tokens": 1e35, "output_tokens": 1130}',
    '{"input_tokens": 10, "output_tokens": 1130, "cache_read_input_tokens": 99999999999}',
    '{"output_tokens": true}',
])
def test_odd_usage_lines_read_as_the_tolerant_reader_reads_them(tmp_path: Path,
                                                                usage: str) -> None:
    # spaced JSON and odd values: the typed decoder hands them to parse_line
    line = json.dumps({"type": "assistant", "isSidechain": False, "sessionId": SESSION,
                       "timestamp": "2026-08-20T10:21:56.220+00:00", "requestId": "req_odd",
                       "message": {"model": "claude-opus-4-8", "id": "m",
                                   "usage": json.loads(usage)}})
    path = tmp_path / "s.jsonl"
    path.write_text(line + "\n")
    found = transcripts.read_requests([path])
    assert found.get("req_odd") == transcripts.parse_line(line)


def test_default_roots_follow_claude_config_dir(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        (d / "projects").mkdir(parents=True)
    assert claude_dirs.default_roots({"CLAUDE_CONFIG_DIR": f"{a}, {b}"}) == [a / "projects",
                                                                             b / "projects"]
    home = tmp_path / "home"
    (home / ".claude" / "projects").mkdir(parents=True)
    assert claude_dirs.default_roots({"HOME": str(home)}) == [home / ".claude" / "projects"]


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
    assert claude_dirs.project_slug("/home/me/my_proj.v2") == "-home-me-my-proj-v2"


# ------------------------------------------------------------------ ~/.claude.json

CAPTURES = Path("/work/shared/captures")


def claude_json_capture(version: str) -> dict[str, Any]:
    """~/.claude.json as the real Claude Code of ``version`` left it after an
    interactive session (../shared/captures)."""
    for root in (Path(__file__).resolve().parent / "captures", CAPTURES):
        path = root / f"claude-code-{version}" / "claude.json_after_interactive.json"
        if path.is_file():
            data: dict[str, Any] = json.loads(path.read_text())
            return data
    pytest.skip(f"no captured ~/.claude.json of Claude Code {version}")


def cw_import(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CW, "import", *args], env=env, check=False, capture_output=True,
                          text=True, timeout=60)


def usage_total(env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([*CW, "usage", "--json"], env=env, check=True, capture_output=True,
                         text=True, timeout=60)
    total: dict[str, Any] = json.loads(out.stdout)["total"]
    return total


@pytest.mark.parametrize("version", ["2.1.197", "2.1.332"])
def test_claude_json_last_session_imports_once_per_model(env: dict[str, str],
                                                        version: str) -> None:
    data = claude_json_capture(version)
    (Path(env["HOME"]) / ".claude.json").write_text(json.dumps(data))
    [(cwd, project)] = data["projects"].items()
    first = cw_import(env)
    assert first.returncode == 0, first.stderr
    assert "1 Claude Code config file, 1 last session: added 1 record" in first.stdout
    [rec] = read_records(Path(env["CLAUDEWRAP_JOURNAL"]))
    [(model, used)] = project["lastModelUsage"].items()
    assert (rec.source, rec.kind, rec.session, rec.claude_session) == (
        "claude_json", "total", project["lastSessionId"], project["lastSessionId"])
    assert rec.model == model.removesuffix("[1m]")
    assert (rec.input_tokens, rec.output_tokens, rec.cache_read_tokens,
            rec.cache_write_tokens, rec.cost_usd) == (
        used["inputTokens"], used["outputTokens"], used["cacheReadInputTokens"],
        used["cacheCreationInputTokens"], used["costUSD"])
    assert (rec.project, rec.cwd, rec.cost_estimated) == ("proj", cwd, False)
    if "lastStartTime" in project:  # 2.1.332: dated when the session ended
        end = (project["lastStartTime"] + project["lastDuration"]) / 1000
        assert rec.ts == time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(end)) + \
            f"{int(end * 1000) % 1000:03d}Z"
    again = cw_import(env)
    assert "added 0 records" in again.stdout
    total = usage_total(env)
    assert total["cost_usd"] == pytest.approx(project["lastCost"], abs=1e-6)
    assert total["input_tokens"] == project["lastTotalInputTokens"]
    assert total["cache_read_tokens"] == project["lastTotalCacheReadInputTokens"]


def test_claude_config_dir_holds_the_config_file(env: dict[str, str], tmp_path: Path) -> None:
    data = claude_json_capture("2.1.332")
    config = tmp_path / "cfg"
    config.mkdir()
    (config / ".claude.json").write_text(json.dumps(data))
    other = json.loads(json.dumps(data))
    for project in other["projects"].values():
        project["lastSessionId"] = "not-this-one"
    (Path(env["HOME"]) / ".claude.json").write_text(json.dumps(other))
    out = cw_import({**env, "CLAUDE_CONFIG_DIR": str(config)})
    assert out.returncode == 0, out.stderr
    assert {r.session for r in read_records(Path(env["CLAUDEWRAP_JOURNAL"]))} == {
        next(iter(data["projects"].values()))["lastSessionId"]}


def test_a_continued_session_replaces_its_totals(env: dict[str, str]) -> None:
    data = claude_json_capture("2.1.332")
    path = Path(env["HOME"]) / ".claude.json"
    path.write_text(json.dumps(data))
    cw_import(env)
    project = next(iter(data["projects"].values()))
    project["lastCost"] += 1.0
    for used in project["lastModelUsage"].values():
        used["costUSD"] += 1.0
        used["inputTokens"] += 100
    path.write_text(json.dumps(data))
    assert "added 1 record" in cw_import(env).stdout
    total = usage_total(env)
    assert total["cost_usd"] == pytest.approx(project["lastCost"], abs=1e-6)
    assert total["input_tokens"] == project["lastTotalInputTokens"] + 100


def test_per_request_records_of_the_session_count_instead_of_claude_json(
        env: dict[str, str]) -> None:
    data = claude_json_capture("2.1.332")
    project = next(iter(data["projects"].values()))
    sid = project["lastSessionId"]
    [(model, used)] = project["lastModelUsage"].items()
    halves = [UsageRecord(ts="2026-11-30T13:33:00.000Z", session="wrapped-run", source="otel",
                          model=model, input_tokens=used["inputTokens"] // 2 + n,
                          output_tokens=used["outputTokens"] // 2,
                          cache_read_tokens=used["cacheReadInputTokens"] // 2,
                          cache_write_tokens=used["cacheCreationInputTokens"] // 2,
                          cost_usd=used["costUSD"] / 2, request_id=f"req_{n}",
                          claude_session=sid) for n in range(2)]
    journal = Path(env["CLAUDEWRAP_JOURNAL"])
    append_records(journal, halves)
    (Path(env["HOME"]) / ".claude.json").write_text(json.dumps(data))
    assert cw_import(env).returncode == 0
    assert [r.source for r in read_records(journal)] == ["otel", "otel", "claude_json"]
    total = usage_total(env)
    assert total["cost_usd"] == pytest.approx(used["costUSD"], abs=1e-6)
    assert total["input_tokens"] == used["inputTokens"] // 2 * 2 + 1
    assert total["output_tokens"] == used["outputTokens"]


def test_a_session_the_status_line_recorded_is_not_imported_again(env: dict[str, str]) -> None:
    data = claude_json_capture("2.1.332")
    project = next(iter(data["projects"].values()))
    live = UsageRecord(ts="2026-11-30T13:33:00.000Z", session=project["lastSessionId"],
                       source="statusline", kind="total", cost_usd=project["lastCost"],
                       claude_session=project["lastSessionId"])
    append_records(Path(env["CLAUDEWRAP_JOURNAL"]), [live])
    (Path(env["HOME"]) / ".claude.json").write_text(json.dumps(data))
    out = cw_import(env)
    assert "added 0 records" in out.stdout and "1 session the status line recorded" in out.stdout
    assert usage_total(env)["cost_usd"] == pytest.approx(project["lastCost"], abs=1e-6)


@pytest.mark.parametrize("content", [
    "not json", "[]", '{"projects": 5}', '{"projects": {"/p": []}}',
    '{"projects": {"/p": {"lastSessionId": "s", "lastModelUsage": {"m": {"inputTokens": -5}}}}}',
    '{"projects": {"/p": {"lastSessionId": "s", "lastModelUsage": {"m": {"costUSD": 1e300}}}}}',
    '{"projects": {"/p": {"lastSessionId": 7, "lastCost": 1}}}',
])
def test_a_bad_config_file_adds_nothing_and_says_so_in_one_line(env: dict[str, str],
                                                                content: str) -> None:
    (Path(env["HOME"]) / ".claude.json").write_text(content)
    out = cw_import(env)
    assert out.returncode == 0 and out.stderr == ""
    assert out.stdout == (f"1 Claude Code config file, 0 last sessions: added 0 records to "
                          f"{env['CLAUDEWRAP_JOURNAL']}\n")


def test_a_session_cost_without_models_counts_as_a_cost_alone(env: dict[str, str]) -> None:
    (Path(env["HOME"]) / ".claude.json").write_text(json.dumps(
        {"projects": {"/w/p": {"lastSessionId": "s1", "lastCost": 0.5}}}))
    assert "added 1 record" in cw_import(env).stdout
    [rec] = read_records(Path(env["CLAUDEWRAP_JOURNAL"]))
    assert (rec.model, rec.input_tokens, rec.cost_usd, rec.project) == (None, 0, 0.5, "p")


def test_real_interactive_session_imports_transcript_and_claude_json_counting_once(
        env: dict[str, str], tmp_path: Path, claude_cli: Path,  # noqa: F811
        claude_version: str) -> None:  # noqa: F811
    """The real Claude Code, run without the wrapper: after /exit its transcript and
    ~/.claude.json both hold the session; imported, the session counts once."""
    api = FakeAnthropic(usage=Usage(1234, 567, 8901, 2345, text="zebra-7")).start()
    home, work = tmp_path / "home", tmp_path / "proj"
    work.mkdir()
    seed_home(home, [work], claude_version)
    cenv = claude_env(env, api.url, home)
    child = pexpect.spawn(str(claude_cli), [], env=cenv, cwd=str(work), dimensions=(40, 120),
                          timeout=30)
    try:
        child.expect(READY)
        child.send("a question")
        time.sleep(0.3)
        child.send("\r")
        wait_until(lambda: len(api.answers) >= 1, "an answer", 30)
        time.sleep(1.0)
        submit(child, "/exit", pexpect.EOF, wait=30)
        child.close()
    finally:
        if child.isalive():
            child.terminate(force=True)
        api.stop()
    saved = json.loads((home / ".claude.json").read_text())["projects"][str(work)]
    out = cw_import(cenv)
    assert out.returncode == 0, out.stderr
    assert "1 last session: added" in out.stdout
    recs = list(read_records(Path(env["CLAUDEWRAP_JOURNAL"])))
    summary = [r for r in recs if r.source == "claude_json"]
    requests = [r for r in recs if r.source == "transcript"]
    assert {r.claude_session for r in summary} == {saved["lastSessionId"]}
    assert sum(r.cost_usd or 0.0 for r in summary) == pytest.approx(saved["lastCost"], abs=1e-9)
    # 2.1.197 makes a side request (haiku) that its transcript does not keep:
    # ~/.claude.json's totals of that model supply it (rule 4).
    assert requests and {r.request_id for r in requests} <= {a.request_id for a in api.answers}
    want = {c: sum(t[c] for t in api.totals().values())
            for c in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")}
    total = usage_total(cenv)
    assert {c: total[c] for c in want} == want  # once, not twice
    assert "added 0 records" in cw_import(cenv).stdout.splitlines()[-1]
