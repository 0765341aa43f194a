"""The seeds' command forms, as written (issue 17 item 4): `log IN OUT COST MODEL`,
`monitor --interval 3000ms`, `parse` saying how to record, the Python
`monitor_session(session, interval, callback) -> stop()`, and bare family names
priced as Claude Code's current model of the family. All through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CW, ROOT, cw, read_all, spawn


def journal(env: dict[str, str]) -> list[dict[str, object]]:
    path = Path(env["CLAUDEWRAP_JOURNAL"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# --- log IN OUT COST MODEL ----------------------------------------------------------


def test_log_takes_the_model_as_fourth_argument_like_the_seed_script(
        env: dict[str, str]) -> None:
    done = cw(["log", "1000", "2000", "0.05", "claude-3-sonnet"], env)
    assert done.returncode == 0, done.stderr
    [rec] = journal(env)
    assert (rec["input_tokens"], rec["output_tokens"], rec["cost_usd"], rec["model"]) == (
        1000, 2000, 0.05, "claude-3-sonnet")


def test_log_model_option_still_works_and_may_repeat_the_argument(
        env: dict[str, str]) -> None:
    assert cw(["log", "10", "20", "0.01", "--model", "opus"], env).returncode == 0
    assert cw(["log", "10", "20", "0.01", "opus", "--model", "opus"], env).returncode == 0
    assert [r["model"] for r in journal(env)] == ["opus", "opus"]


def test_log_with_two_different_models_is_one_clear_error(env: dict[str, str]) -> None:
    done = cw(["log", "10", "20", "0.01", "claude-3-sonnet", "--model", "opus"], env)
    assert done.returncode == 2
    assert "two models given: 'claude-3-sonnet' (4th argument) and 'opus' (--model)" in (
        done.stderr)
    assert "Traceback" not in done.stderr and journal(env) == []


# --- monitor --interval -------------------------------------------------------------


@pytest.mark.parametrize("value", ["3000ms", "3s", "3", "0.05m"])
def test_monitor_interval_takes_units_and_a_bare_number_is_seconds(
        env: dict[str, str], value: str) -> None:
    child = spawn([*CW, "monitor", "--interval", value], env, rows=24, cols=100)
    try:
        child.expect(r"every 3s")
    finally:
        child.send("q")
        read_all(child, 10)


@pytest.mark.parametrize(("value", "hint"), [
    ("3000", "'3000': a bare number is seconds; did you mean 3000ms?"),
    ("50ms", "'50ms' is 0.05 seconds: use 0.1 s to 1 hour"),
    ("soon", "'soon' is not a duration: use seconds (2, 0.5) or a unit (3s, 3000ms, 1m)"),
])
def test_monitor_refuses_an_interval_it_would_misread(env: dict[str, str], value: str,
                                                      hint: str) -> None:
    done = cw(["monitor", "--once", "--interval", value], env)
    assert done.returncode == 2
    assert hint in done.stderr and "Traceback" not in done.stderr


# --- parse says how to record -------------------------------------------------------


def test_parse_at_a_terminal_says_that_write_records_what_it_showed(
        env: dict[str, str]) -> None:
    child = spawn([*CW, "parse", "Tokens: 10 input, 5 output"], env)
    lines = read_all(child).decode().replace("\r", "").strip().splitlines()
    assert json.loads(lines[0])["input_tokens"] == 10
    assert lines[-1] == "(not recorded: add --write to record it)"
    assert journal(env) == []


def test_parse_output_piped_stays_json_and_write_records(env: dict[str, str]) -> None:
    done = cw(["parse", "Tokens: 10 input, 5 output"], env)
    assert [json.loads(line)["output_tokens"] for line in done.stdout.splitlines()] == [5]
    assert "--write" not in done.stderr
    child = spawn([*CW, "parse", "--write", "Tokens: 10 input, 5 output"], env)
    assert b"not recorded" not in read_all(child)
    assert [r["input_tokens"] for r in journal(env)] == [10]


# --- monitor_session ----------------------------------------------------------------

WATCHER = """
import json, sys
from claudewrap.api import monitor_session

def show(usage):
    print(json.dumps({"session": usage.session, "input": usage.usage.input_tokens,
                      "records": usage.records}), flush=True)

stop = monitor_session(sys.argv[1], float(sys.argv[2]), show)
print("watching", flush=True)
sys.stdin.readline()
stop()
print("stopped", flush=True)
"""


def test_monitor_session_calls_back_when_the_session_changes_and_stop_ends_it(
        env: dict[str, str]) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WATCHER, "job-7", "0.2"], env=env,
                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    try:
        assert proc.stdout.readline() == "watching\n"
        seen = []
        for tokens in (100, 250):
            assert cw(["log", str(tokens), "1", "0.01", "--session", "job-7"], env).returncode == 0
            seen.append(json.loads(proc.stdout.readline()))
        assert cw(["log", "999", "1", "--session", "someone-else"], env).returncode == 0
        time.sleep(0.8)  # four looks at a journal whose session did not change
        proc.stdin.write("\n")
        proc.stdin.flush()
        rest = proc.stdout.read()
        assert proc.wait(10) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.kill()
    assert seen == [{"session": "job-7", "input": 100, "records": 1},
                    {"session": "job-7", "input": 350, "records": 2}]
    assert rest == "stopped\n"


# --- bare family names ----------------------------------------------------------------


@pytest.mark.parametrize(("alias", "model", "cost"), [
    ("opus", "claude-opus-5-5", 4.0 + 20.0),
    ("sonnet", "claude-sonnet-5-5", 2.0 + 10.0),
    ("haiku", "claude-haiku-5-5", 0.10 + 0.50),
])
def test_a_bare_family_name_is_priced_as_claude_codes_current_model(
        env: dict[str, str], alias: str, model: str, cost: float) -> None:
    assert cw(["log", "1000000", "1000000", "--model", alias], env).returncode == 0
    done = cw(["usage", "--json"], env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total"]["cost_usd"] == pytest.approx(cost)
    table = cw(["prices"], env).stdout
    assert f"{alias} = {model}" in table.splitlines()[-1]


def test_your_prices_file_can_move_a_family_name(env: dict[str, str], tmp_path: Path) -> None:
    mine = tmp_path / "prices.toml"
    mine.write_text('[models."claude-sonnet-4-6"]\naliases = ["sonnet"]\n')
    env = dict(env, CLAUDEWRAP_PRICES=str(mine))
    assert cw(["log", "1000000", "0", "--model", "sonnet"], env).returncode == 0
    assert json.loads(cw(["usage", "--json"], env).stdout)["total"]["cost_usd"] == (
        pytest.approx(3.0))
    names = cw(["prices"], env).stdout.splitlines()[-1]
    assert "sonnet = claude-sonnet-4-6 " in names and "claude-sonnet-5-5" not in names
