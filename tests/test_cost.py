"""`claudewrap cost`: the cost of the current or last wrapped session."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from conftest import CW, read_all, spawn
from test_capture_e2e import COST_BLOCK_2_1_330

from claudewrap.cli import cli
from claudewrap.store.journal import append_records
from claudewrap.store.records import UsageRecord


def rec(session: str, ts: str, source: str = "pty", kind: str = "total", **kw: object
        ) -> UsageRecord:
    base: dict[str, object] = {"model": "claude-sonnet-4-5", "project": "web"}
    base.update(kw)
    return UsageRecord(ts=ts, session=session, source=source, kind=kind, **base)  # type: ignore[arg-type]


def build(path: Path) -> None:
    append_records(path, [
        rec("aaaa1111", "2026-07-01T10:00:00.000Z", input_tokens=1000, output_tokens=100,
            cost_usd=0.10),
        rec("bbbb2222", "2026-07-01T11:00:00.000Z", input_tokens=2000, output_tokens=200,
            cost_usd=0.20, project="api"),
        # The same /cost block redrawn, then a bigger running total: the newest counts.
        rec("bbbb2222", "2026-07-01T11:05:00.000Z", input_tokens=2000, output_tokens=200,
            cost_usd=0.20, project="api"),
        rec("bbbb2222", "2026-07-01T11:10:00.000Z", input_tokens=3000, output_tokens=300,
            cost_usd=0.30, project="api"),
        # Not a wrapped session: a manual entry and a scrollback scan come after it.
        rec("manual", "2026-07-01T12:00:00.000Z", source="manual", kind="delta",
            input_tokens=5, cost_usd=1.0),
        rec("scan-x", "2026-07-01T12:00:00.000Z", source="scan", input_tokens=5),
    ])


def invoke(env: dict[str, str], *args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["cost", *args], env=env)
    return res.exit_code, res.output


def test_last_wrapped_session_in_one_line_and_json(env: dict[str, str]) -> None:
    build(Path(env["CLAUDEWRAP_JOURNAL"]))
    code, out = invoke(env)
    assert code == 0, out
    assert out == ("$0.3000 3,000 in, 300 out, 0 cache read, 0 cache write "
                   "(claude-sonnet-4-5; session bbbb2222, project api)\n")
    code, out = invoke(env, "--session", "last", "--json")
    data = json.loads(out)
    assert (data["session"], data["running"], data["project"]) == ("bbbb2222", False, "api")
    assert (data["input_tokens"], data["output_tokens"], data["cost_usd"]) == (3000, 300, 0.3)
    assert data["records"] == 2 and data["cost_estimated_usd"] == 0  # the redraw adds none
    assert data["first_ts"] == "2026-07-01T11:00:00.000Z"
    assert list(data["by_model"]) == ["claude-sonnet-4-5"]


def test_session_by_id_and_current_from_the_environment(env: dict[str, str]) -> None:
    build(Path(env["CLAUDEWRAP_JOURNAL"]))
    code, out = invoke(env, "--session", "aaaa1111", "--json")
    assert code == 0 and json.loads(out)["cost_usd"] == 0.1
    # Inside a wrapped run (e.g. from claude's own shell tool) the session is known.
    code, out = invoke(dict(env, CLAUDEWRAP_SESSION="aaaa1111"), "--session", "current")
    assert code == 0 and "session aaaa1111" in out


def test_errors_say_what_to_do(env: dict[str, str]) -> None:
    code, out = invoke(env)
    assert code == 1
    assert "no wrapped claude session recorded" in out and "claudewrap run" in out
    build(Path(env["CLAUDEWRAP_JOURNAL"]))
    code, out = invoke(env, "--session", "nope")
    assert code == 1 and "no records of session nope" in out
    code, out = invoke(env, "--session", "current")
    assert code == 1 and "no wrapped claude session is running" in out


def test_priced_from_the_table_when_claude_printed_no_cost(env: dict[str, str]) -> None:
    append_records(Path(env["CLAUDEWRAP_JOURNAL"]), [
        rec("cccc", "2026-07-01T10:00:00.000Z", kind="delta", input_tokens=1_000_000),
        rec("cccc", "2026-07-01T10:01:00.000Z", kind="delta", input_tokens=1_000_000,
            model="claude-imaginary-9"),
    ])
    code, out = invoke(env, "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["cost_usd"] == data["cost_estimated_usd"] == 3.0  # sonnet: $3 per M input
    assert data["unpriced_records"] == 1
    _, out = invoke(env)
    assert out.startswith("~$3.0000+? 2.0M in")


def test_cost_of_a_real_wrapped_run(env: dict[str, str], tmp_path: Path) -> None:
    screen = tmp_path / "screen.bin"
    screen.write_bytes(COST_BLOCK_2_1_330)
    read_all(spawn([*CW, "run", "--project", "demo", "--", "file", str(screen)], env))
    done = subprocess.run([sys.executable, "-m", "claudewrap", "cost", "--json"], env=env,
                          capture_output=True, check=False, timeout=30)
    data = json.loads(done.stdout)
    assert (data["cost_usd"], data["project"], data["running"]) == (0.0298, "demo", False)
    assert data["cache_read_tokens"] == 8900


def test_the_console_command_without_click_says_what_click_says(
        env: dict[str, str], tmp_path: Path) -> None:
    """`claudewrap cost` as people run it (main.py answers without click for its
    plain options) prints, fails and exits exactly as the click command does;
    anything else goes to click."""
    build(Path(env["CLAUDEWRAP_JOURNAL"]))
    other = tmp_path / "other.jsonl"
    build(other)
    click_cli = [sys.executable, "-c",
                 "import sys; from claudewrap.cli import main; main(sys.argv[1:])"]
    fast_only = [sys.executable, "-c",
                 ("import sys; from claudewrap.main import main; main(sys.argv[1:]); "
                  "sys.exit('click was needed')")]
    cases = [[], ["--json"], ["--session", "last"], ["--session=aaaa1111", "--json"],
             ["--json", "--session", "bbbb2222"], ["--session", "nope"],
             ["--session", "current"], ["--journal", str(other), "--session", "aaaa1111"],
             ["--journal", str(tmp_path / "missing.jsonl")], ["--journal", str(tmp_path)]]
    def same_as_click(args: list[str]) -> None:
        fast = subprocess.run([*CW, "cost", *args], env=env, capture_output=True, text=True,
                              check=False)
        ref = subprocess.run([*click_cli, "cost", *args], env=env, capture_output=True,
                             text=True, check=False)
        assert (fast.returncode, fast.stdout, fast.stderr) == (
            ref.returncode, ref.stdout, ref.stderr), args

    for args in cases:
        same_as_click(args)
        # main.py answered it itself: it left before falling through to click.
        probe = subprocess.run([*fast_only, "cost", *args], env=env, capture_output=True,
                               text=True, check=False)
        assert "click was needed" not in probe.stderr, args
    for args in (["--help"], ["--session"], ["--json", "--json"], ["--bogus"],
                 ["--session", "--json"]):
        same_as_click(args)
