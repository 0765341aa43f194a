"""Usage capture end to end: the real `claudewrap run` in a pty, a fake claude
printing what Claude Code prints, and the journal's exact values."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from click.testing import CliRunner
from conftest import CW, read_all, spawn

from claudewrap.cli import cli

COST_BLOCK_2_1_330 = (
    b"\x1b[?25l\x1b[2K\x1b[1G  \x1b[1mSession\x1b[22m\r\n"
    b"  \x1b[1mEstimated cost:\x1b[22m         $0.0298\r\n"
    b"  \x1b[1mTotal duration (API):\x1b[22m   0s\r\n"
    b"  \x1b[1mTotal duration (wall):\x1b[22m  8s\r\n"
    b"  \x1b[1mTotal code changes:\x1b[22m     0 lines added, 0 lines removed\r\n"
    b"  \x1b[1mUsage by model:\x1b[22m\r\n"
    b"  claude-opus-5-5:\x1b[8C1.2k input, 567 output, 8.9k cache read, 2.3k cache write ($0.0298)\r\n"
    b"  Prompt cache (main):    1 request \xc2\xb7 71% of input tokens from cache\r\n"
    b"  \xe2\x86\x90/\xe2\x86\x92 to switch \xc2\xb7 Esc to close\r\n"
)

P_JSON = {
    "type": "result", "subtype": "success", "is_error": False, "duration_ms": 1500,
    "num_turns": 1, "result": "Hello! How can I help?", "session_id": "abc-123",
    "total_cost_usd": 0.012345,
    "usage": {"input_tokens": 10, "output_tokens": 20, "cache_creation_input_tokens": 30,
              "cache_read_input_tokens": 40},
    "modelUsage": {"claude-opus-4-8[1m]": {"inputTokens": 10, "outputTokens": 20,
                                          "cacheReadInputTokens": 40,
                                          "cacheCreationInputTokens": 30,
                                          "costUSD": 0.012345}},
}


def journal_lines(env: dict[str, str]) -> list[dict[str, object]]:
    path = Path(env["CLAUDEWRAP_JOURNAL"])
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_cost_block_through_the_pty_records_one_total_per_model(
        env: dict[str, str], tmp_path: Path) -> None:
    screen = tmp_path / "screen.bin"
    # The TUI draws the block, then redraws it: one record, not two.
    screen.write_bytes(b"\x1b[2J\x1b[H" + COST_BLOCK_2_1_330 + b"\x1b[10A" + COST_BLOCK_2_1_330)
    out = read_all(spawn([*CW, "run", "--project", "demo", "--tag", "agent=ci", "--",
                          "file", str(screen)], env))
    assert b"Estimated cost:" in out
    records = journal_lines(env)
    assert len(records) == 1, records
    rec = records[0]
    assert rec["source"] == "pty" and rec["kind"] == "total" and rec["approximate"] is True
    assert rec["model"] == "claude-opus-5-5"
    assert (rec["input_tokens"], rec["output_tokens"], rec["cache_read_tokens"],
            rec["cache_write_tokens"]) == (1200, 567, 8900, 2300)
    assert rec["cost_usd"] == 0.0298 and rec["cost_estimated"] is False
    assert rec["project"] == "demo" and rec["tags"] == {"agent": "ci"}
    assert oct(os.stat(env["CLAUDEWRAP_JOURNAL"]).st_mode & 0o777) == "0o600"


def test_p_json_result_through_a_pipe_records_exact_totals(env: dict[str, str],
                                                           tmp_path: Path) -> None:
    result = tmp_path / "result.json"
    result.write_text(json.dumps(P_JSON) + "\n")
    done = subprocess.run([*CW, "run", "--", "file", str(result)], env=env,
                          capture_output=True, timeout=30, check=False)
    assert done.returncode == 0
    assert done.stdout == result.read_bytes()  # passthrough untouched
    records = journal_lines(env)
    assert len(records) == 1, records
    rec = records[0]
    assert rec["kind"] == "total" and rec["approximate"] is False
    assert rec["model"] == "claude-opus-4-8"
    assert (rec["input_tokens"], rec["output_tokens"], rec["cache_read_tokens"],
            rec["cache_write_tokens"]) == (10, 20, 40, 30)
    assert rec["cost_usd"] == 0.012345
    assert rec["claude_session"] == "abc-123"
    # Privacy: the response text never reaches the journal.
    assert "How can I help" not in Path(env["CLAUDEWRAP_JOURNAL"]).read_text()


def test_pretty_printed_json_with_exit_status_kept(env: dict[str, str], tmp_path: Path) -> None:
    result = tmp_path / "result.json"
    result.write_text(json.dumps(P_JSON, indent=2) + "\n")
    done = subprocess.run([*CW, "run", "--", "file", str(result), "3"], env=env,
                          capture_output=True, timeout=30, check=False)
    assert done.returncode == 3
    records = journal_lines(env)
    assert [r["output_tokens"] for r in records] == [20]


def test_unwritable_journal_never_breaks_the_session(env: dict[str, str],
                                                     tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    env = dict(env, CLAUDEWRAP_JOURNAL=str(blocker / "journal.jsonl"), TMPDIR=str(tmp_path))
    done = subprocess.run([*CW, "run", "--", "print", "Tokens: 100 input, 50 output", "x"],
                          env=env, capture_output=True, timeout=30, check=False)
    assert done.returncode == 0
    assert done.stdout == b"Tokens: 100 input, 50 output\nx\n"
    warning = done.stderr.decode().strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith(
        f"claudewrap: the journal {blocker / 'journal.jsonl'} was not writable (")
    assert "; 1 record saved in " in warning[0]


def test_bad_user_pattern_is_an_error_before_claude_starts(env: dict[str, str],
                                                           tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[patterns]]\nname = "broken"\nregex = "(?P<input>\\\\d+"\n')
    marker = tmp_path / "args.json"
    done = subprocess.run([*CW, "run", "--config", str(config), "--", "argsfile", "x"],
                          env=dict(env, FAKE_ARGS_FILE=str(marker)), capture_output=True,
                          timeout=30, check=False)
    assert done.returncode == 2
    assert "broken" in done.stderr.decode()
    assert not marker.exists()


def test_user_pattern_records_through_the_wrapper(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[patterns]]\nname = "mine"\n'
                      "regex = '(?P<input>\\d+) in / (?P<output>\\d+) out'\n")
    done = subprocess.run([*CW, "run", "--config", str(config), "--", "print", "used 7 in / 9 out"],
                          env=env, capture_output=True, timeout=30, check=False)
    assert done.returncode == 0
    rec = journal_lines(env)[0]
    assert (rec["input_tokens"], rec["output_tokens"], rec["pattern"]) == (7, 9, "user:mine")


# ---------------------------------------------------------------- log / parse / journal


def test_log_appends_a_manual_record(env: dict[str, str]) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["log", "1,200", "350", "$0.02", "--model", "claude-sonnet-4-6",
                              "--project", "p", "--cache-read", "1.5k", "--tag", "a=b"], env=env)
    assert res.exit_code == 0, res.output
    rec = journal_lines(env)[0]
    assert rec["source"] == "manual" and rec["kind"] == "delta"
    assert (rec["input_tokens"], rec["output_tokens"], rec["cache_read_tokens"]) == (1200, 350, 1500)
    assert rec["cost_usd"] == 0.02 and rec["approximate"] is True
    assert rec["tags"] == {"a": "b"} and rec["project"] == "p"
    res = runner.invoke(cli, ["log", "many", "3"], env=env)
    assert res.exit_code == 2 and "not a token count" in res.output
    res = runner.invoke(cli, ["log", "1", "2", "--tag", "oops"], env=env)
    assert res.exit_code == 2 and "KEY=VALUE" in res.output
    # one --tag is one tag, whatever its value holds (they were joined with "," and split)
    res = runner.invoke(cli, ["log", "1", "2", "--tag", "note=a,b=c", "--tag", "k= v "], env=env)
    assert res.exit_code == 0, res.output
    assert journal_lines(env)[-1]["tags"] == {"note": "a,b=c", "k": "v"}


def test_parse_shows_events_and_writes_on_request(env: dict[str, str]) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["parse", "Tokens: 10 input, 5 output", "Cost: $0.01"], env=env)
    assert res.exit_code == 0, res.output
    events = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(events) == 1
    assert (events[0]["input_tokens"], events[0]["output_tokens"], events[0]["cost_usd"]) == (
        10, 5, 0.01)
    assert journal_lines(env) == []
    res = runner.invoke(cli, ["parse", "--write", "Tokens: 10 input, 5 output"], env=env)
    assert res.exit_code == 0
    assert [r["input_tokens"] for r in journal_lines(env)] == [10]
    res = runner.invoke(cli, ["parse", "-"], input=COST_BLOCK_2_1_330, env=env)
    assert json.loads(res.stdout.splitlines()[0])["model"] == "claude-opus-5-5"


def test_journal_check_counts_bad_lines(env: dict[str, str]) -> None:
    runner = CliRunner()
    path = Path(env["CLAUDEWRAP_JOURNAL"])
    res = runner.invoke(cli, ["journal", "path"], env=env)
    assert res.stdout.strip() == str(path)
    runner.invoke(cli, ["log", "1", "2"], env=env)
    with open(path, "a") as fh:
        fh.write("{not json\n")
    runner.invoke(cli, ["log", "3", "4"], env=env)
    res = runner.invoke(cli, ["journal", "check"], env=env)
    assert res.exit_code == 1
    assert "2 good records, 1 unreadable lines" in res.stdout
    assert "unreadable lines (first 1): 2" in res.stdout
