"""The Python API: run_claude against the fake claude in a real pty and in a pipe,
follow() on a journal another thread appends to, and the live-session marker."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pexpect
import pytest
from conftest import read_all, spawn
from test_capture_e2e import COST_BLOCK_2_1_330, P_JSON

from claudewrap import api
from claudewrap.store.journal import append_records
from claudewrap.store.records import UsageRecord, utc_now_iso

# A script using the API the way a CI job would; prints the outcome as JSON.
SCRIPT = """
import json, sys
from claudewrap.api import run_claude
o = run_claude(sys.argv[2:], project="ci-demo", tags={"job": "lint"}, print_warnings=True)
with open(sys.argv[1], "w") as fh:
    json.dump({"exit_status": o.exit_status, "session": o.session,
               "records": [r.to_dict() for r in o.records],
               "cost": o.usage.cost_usd, "tokens": o.usage.tokens}, fh)
sys.exit(o.exit_status)
"""


def journal_lines(env: dict[str, str]) -> list[dict[str, object]]:
    path = Path(env["CLAUDEWRAP_JOURNAL"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_run_claude_in_a_pty_returns_status_session_and_the_cost_block(
        env: dict[str, str], tmp_path: Path) -> None:
    screen = tmp_path / "screen.bin"
    screen.write_bytes(b"\x1b[2J\x1b[H" + COST_BLOCK_2_1_330 + b"\x1b[10A" + COST_BLOCK_2_1_330)
    result = tmp_path / "outcome.json"
    out = read_all(spawn([sys.executable, "-c", SCRIPT, str(result), "file", str(screen), "3"],
                         env))
    assert b"Estimated cost:" in out  # passed through to the terminal
    outcome = json.loads(result.read_text())
    assert outcome["exit_status"] == 3
    [rec] = outcome["records"]
    assert rec["session"] == outcome["session"] and rec["model"] == "claude-opus-5-5"
    assert (rec["input_tokens"], rec["output_tokens"], rec["cost_usd"]) == (1200, 567, 0.0298)
    assert rec["project"] == "ci-demo" and rec["tags"] == {"job": "lint"}
    assert outcome["cost"] == 0.0298
    assert outcome["tokens"] == 1200 + 567 + 8900 + 2300
    assert journal_lines(env) == [rec]


def test_run_claude_in_a_pipe_is_byte_exact_and_gives_the_child_its_session(
        env: dict[str, str], tmp_path: Path) -> None:
    payload = tmp_path / "result.json"
    payload.write_text(json.dumps(P_JSON) + "\n")
    result = tmp_path / "outcome.json"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(result), "file", str(payload)],
                          env=env, capture_output=True, check=False, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == payload.read_bytes()
    outcome = json.loads(result.read_text())
    assert [r["claude_session"] for r in outcome["records"]] == ["abc-123"]
    assert outcome["cost"] == pytest.approx(0.012345)

    done = subprocess.run([sys.executable, "-c", SCRIPT, str(result), "env",
                           "CLAUDEWRAP_SESSION", "CLAUDEWRAP_DEPTH"],
                          env=env, capture_output=True, check=False, timeout=30)
    seen = json.loads(done.stdout)
    assert seen["CLAUDEWRAP_SESSION"] == json.loads(result.read_text())["session"]
    assert seen["CLAUDEWRAP_DEPTH"] == "1"


def test_run_claude_errors_before_running_anything(env: dict[str, str], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(api.LaunchError) as info:
        api.run_claude(["x"], claude=str(tmp_path / "nope"))
    assert info.value.status == 127
    marker = tmp_path / "args.json"
    monkeypatch.setenv("FAKE_ARGS_FILE", str(marker))
    with pytest.raises(api.TagError):
        api.run_claude(["argsfile", "x"], tags=["no-equals-sign"])
    assert not marker.exists()


def test_live_marker_while_running_and_cost_of_current_session(env: dict[str, str],
                                                                tmp_path: Path) -> None:
    child = spawn([sys.executable, "-c", SCRIPT, str(tmp_path / "o.json"), "sleep", "20"], env)
    try:
        child.expect("SLEEPING")
        live = api.running_sessions(env["CLAUDEWRAP_JOURNAL"])
        assert len(live) == 1 and live[0].project == "ci-demo"
        sid = live[0].session
        done = subprocess.run([sys.executable, "-m", "claudewrap", "cost", "--json"],
                              env=env, capture_output=True, check=False, timeout=30)
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout)
        assert (found["session"], found["running"], found["cost_usd"]) == (sid, True, 0)
        shown = subprocess.run([sys.executable, "-m", "claudewrap", "monitor", "--once"],
                               env=env, capture_output=True, text=True, check=False,
                               timeout=30).stdout
        assert "sessions: 1 running (*), 0 recent" in shown
        assert re.search(rf"^\*{sid[:8]}  ci-demo ", shown, re.MULTILINE), shown
    finally:
        child.kill(15)
        child.expect(pexpect.EOF)
        child.close()
    assert api.running_sessions(env["CLAUDEWRAP_JOURNAL"]) == []


def _record(session: str, tokens: int, kind: str = "delta") -> UsageRecord:
    return UsageRecord(ts=utc_now_iso(), session=session, source="pty", kind=kind,
                       model="claude-sonnet-4-5", input_tokens=tokens, cost_usd=tokens / 1e6)


def test_follow_yields_a_sessions_records_as_they_are_appended(tmp_path: Path) -> None:
    journal = tmp_path / "j" / "journal.jsonl"
    append_records(journal, [_record("s1", 1), _record("other", 2)])
    stop = threading.Event()
    got: list[UsageRecord] = []

    def consume() -> None:
        got.extend(api.follow("s1", journal, poll=0.02, stop=stop))

    reader = threading.Thread(target=consume)
    reader.start()
    try:
        _wait(lambda: len(got) == 1)  # what was there already
        append_records(journal, [_record("other", 3), _record("s1", 4)])
        _wait(lambda: len(got) == 2)
        # A torn line being written is not read until its newline arrives.
        line = _record("s1", 5).to_json().encode()
        with open(journal, "ab") as fh:
            fh.write(line[:10])
            fh.flush()
            time.sleep(0.1)
            assert len(got) == 2
            fh.write(line[10:] + b"\n")
        _wait(lambda: len(got) == 3)
    finally:
        stop.set()
        reader.join(5)
    assert [r.input_tokens for r in got] == [1, 4, 5]


def test_follow_all_starts_at_the_end_and_rereads_a_replaced_journal(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    append_records(journal, [_record("old", 1)])
    gen = api.follow(journal=journal, poll=0.01, stop=lambda: True)
    assert list(gen) == []  # from_start defaults to no for all sessions
    got: list[int] = []
    stop = threading.Event()
    reader = threading.Thread(target=lambda: got.extend(
        r.input_tokens for r in api.follow(journal=journal, poll=0.02, stop=stop)))
    reader.start()
    try:
        time.sleep(0.1)
        append_records(journal, [_record("a", 2)])
        _wait(lambda: got == [2])
        fresh = tmp_path / "new.jsonl"
        append_records(fresh, [_record("b", 7), _record("b", 8)])
        fresh.replace(journal)  # rotated: the new file is read from its start
        _wait(lambda: got == [2, 7, 8])
    finally:
        stop.set()
        reader.join(5)


def _wait(cond: object, limit: float = 10) -> None:
    deadline = time.monotonic() + limit
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_ci_example_runs_claude_and_reports_its_cost(env: dict[str, str],
                                                     tmp_path: Path) -> None:
    payload = tmp_path / "result.json"
    payload.write_text(json.dumps(P_JSON) + "\n")
    script = Path(__file__).resolve().parent.parent / "examples" / "ci" / "run_claude.py"
    done = subprocess.run([sys.executable, str(script), "file", str(payload), "2"],
                          env=dict(env, CI_PROJECT="shop", CI_JOB="review"),
                          capture_output=True, text=True, check=False, timeout=30)
    assert done.returncode == 2
    assert done.stdout == payload.read_text()
    report = json.loads(done.stderr.splitlines()[-1])
    assert report["cost_usd"] == 0.012345 and report["tokens"] == 100
    [line] = journal_lines(env)
    assert line["project"] == "shop" and line["tags"] == {"ci": "ci", "job": "review"}
    cost = subprocess.run([sys.executable, "-m", "claudewrap", "cost", "--session", "last",
                           "--json"], env=env, capture_output=True, text=True, check=False, timeout=30)
    assert json.loads(cost.stdout)["session"] == report["session"]


def _bytes_read() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_session_usage_reads_the_journal_from_where_the_session_begins(tmp_path: Path) -> None:
    """cost --session reads a session's records from the line where its id first
    appears (the state knows it), not the whole history; a session resumed months
    later still gets its early records."""
    journal = tmp_path / "journal.jsonl"
    old = [UsageRecord(ts=f"2026-01-{1 + k % 28:02d}T10:00:00.000Z", session=f"h{k % 300}",
                       source="otel", model="claude-sonnet-4-5", input_tokens=10,
                       output_tokens=1, request_id=f"h-{k}", project="hist")
           for k in range(30000)]
    old.insert(5, UsageRecord(ts="2026-01-01T09:00:00.000Z", session="resumed", source="otel",
                              model="claude-sonnet-4-5", input_tokens=500, output_tokens=5,
                              request_id="early", project="web"))
    append_records(journal, old)
    api.session_usage("h1", str(journal))  # builds the rollup
    now = utc_now_iso()
    append_records(journal, [
        UsageRecord(ts=now, session=sid, source="otel", model="claude-sonnet-4-5",
                    input_tokens=100, output_tokens=2, request_id=f"{sid}-{k}", project="web")
        for k in range(3) for sid in ("fresh", "resumed")])
    before = _bytes_read()
    fresh = api.session_usage("fresh", str(journal))
    read = _bytes_read() - before
    assert (fresh.records, fresh.usage.input_tokens, fresh.project) == (3, 300, "web")
    assert read < journal.stat().st_size // 4, read
    resumed = api.session_usage("resumed", str(journal))
    assert (resumed.records, resumed.usage.input_tokens) == (4, 800)
    assert resumed.first_ts == "2026-01-01T09:00:00.000Z"


def test_the_readers_of_the_api_do_not_import_the_launch_path() -> None:
    """`cost` and `monitor` use api without run_claude: the launch path's modules are
    imported when run_claude (or another of their names) is first asked for."""
    code = (
        "import sys\n"
        "from claudewrap import api\n"
        "assert 'claudewrap.wrap.runner' not in sys.modules\n"
        "assert 'claudewrap.wrap.launcher' not in sys.modules\n"
        "assert 'dataclasses' not in sys.modules\n"
        "from claudewrap.api import run_claude, LaunchError\n"
        "from claudewrap.wrap import launcher, runner\n"
        "assert run_claude is runner.run_claude and api.TagError is runner.TagError\n"
        "assert LaunchError is launcher.LaunchError\n"
        "assert api.SESSION_ENV == runner.SESSION_ENV\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
