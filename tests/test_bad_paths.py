"""Paths and settings a person gets wrong (issue 12, items 10 and 11).

`CLAUDEWRAP_JOURNAL` (or `--journal`) naming a directory: every command says so
in one line with the fix; `claudewrap run` still runs claude and keeps the usage
in a file it names. A bad config.toml: `claudewrap run` says so in one line
naming the file, the line and the fix (tests/test_shell.py drives the same
through the shell's `claude`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import CW, cw, read_all, spawn
from test_shell import BAD_CONFIGS

from claudewrap.store.records import UsageRecord

TOKENS = "Tokens: 1200 input, 340 output"

# Every command that reads or writes the journal, as a person types it.
COMMANDS = {
    "usage": ["usage"],
    "stats": ["stats"],
    "usage-by": ["usage", "--by", "model"],
    "usage-json": ["usage", "--json"],
    "status": ["status"],
    "cost": ["cost"],
    "cost-json": ["cost", "--json"],
    "monitor": ["monitor", "--once"],
    "metrics": ["metrics"],
    "export": ["export"],
    "journal-check": ["journal", "check"],
    "journal-path": ["journal", "path"],
    "import": ["import", "{transcripts}"],
    "log": ["log", "100", "20", "0.01"],
    "parse-write": ["parse", "--write", TOKENS],
    "serve": ["serve", "--port", "0"],
}


@pytest.fixture
def dir_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """``env`` whose CLAUDEWRAP_JOURNAL is an existing directory; a private TMPDIR."""
    folder = tmp_path / "journal-dir"
    folder.mkdir()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return dict(env, CLAUDEWRAP_JOURNAL=str(folder), TMPDIR=str(tmp))


def _transcripts(tmp_path: Path) -> Path:
    folder = tmp_path / "transcripts"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_names_a_directory_journal_and_the_fix_in_one_line(
        dir_env: dict[str, str], tmp_path: Path, name: str) -> None:
    folder = dir_env["CLAUDEWRAP_JOURNAL"]
    args = [a.format(transcripts=_transcripts(tmp_path)) for a in COMMANDS[name]]
    done = cw(args, dir_env)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr == (f"Error: the journal {folder} is a directory: set CLAUDEWRAP_JOURNAL"
                           f" to a file path (e.g. {folder}/journal.jsonl)\n")
    assert "Traceback" not in done.stdout and "Usage:" not in done.stdout
    assert os.listdir(folder) == []  # nothing was written into it


@pytest.mark.parametrize("name", ["status", "cost", "monitor", "journal-check", "log", "import"])
def test_journal_option_naming_a_directory_says_to_pass_a_file(
        env: dict[str, str], tmp_path: Path, name: str) -> None:
    folder = tmp_path / "somewhere"
    folder.mkdir()
    args = [a.format(transcripts=_transcripts(tmp_path)) for a in COMMANDS[name]]
    done = cw([*args, "--journal", str(folder)], env)
    assert done.returncode == 1
    assert done.stderr == (f"Error: the journal {folder} is a directory: pass --journal a file"
                           f" path (e.g. {folder}/journal.jsonl)\n")


def test_default_journal_that_is_a_directory_says_to_move_it(env: dict[str, str]) -> None:
    env = {k: v for k, v in env.items() if k != "CLAUDEWRAP_JOURNAL"}
    default = Path(env["XDG_DATA_HOME"]) / "claudewrap" / "journal.jsonl"
    default.mkdir(parents=True)
    done = cw(["usage"], env)
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: the journal {default} is a directory: move that"
                                  " folder away, or set CLAUDEWRAP_JOURNAL to a file path")
    assert done.stderr.count("\n") == 1


def _unsaved(env: dict[str, str]) -> Path:
    return Path(env["TMPDIR"]) / f"claudewrap-{os.getuid()}" / "journal-unsaved.jsonl"


def test_run_with_a_directory_journal_runs_claude_and_says_where_the_usage_went(
        dir_env: dict[str, str]) -> None:
    folder = Path(dir_env["CLAUDEWRAP_JOURNAL"])
    done = subprocess.run([*CW, "run", "--", "print", TOKENS, "done"], env=dir_env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0
    assert done.stdout == f"{TOKENS}\ndone\n"
    saved = _unsaved(dir_env)
    (warning,) = done.stderr.splitlines()
    assert warning.startswith(f"claudewrap: the journal {folder} is a directory: set"
                              f" CLAUDEWRAP_JOURNAL to a file path (e.g. {folder}/journal.jsonl)")
    assert f"saved in {saved}" in warning
    records = [UsageRecord.from_dict(json.loads(x)) for x in saved.read_text().splitlines()]
    assert [(r.input_tokens, r.output_tokens) for r in records] == [(1200, 340)]
    assert os.listdir(folder) == []

    # The advice works as written: the usage lands in the suggested file, once.
    command = warning.split("then add it once with: claudewrap ", 1)[1].split()
    assert command == ["journal", "recover", "--journal", f"{folder}/journal.jsonl"]
    for _ in range(2):
        assert cw(command, dir_env).returncode == 0
    fixed = dict(dir_env, CLAUDEWRAP_JOURNAL=str(folder / "journal.jsonl"))
    report = json.loads(cw(["usage", "--json"], fixed).stdout)
    assert report["total"]["input_tokens"] == 1200
    assert saved.read_bytes() == b""


def test_run_in_a_terminal_with_a_directory_journal_keeps_claudes_exit_status(
        dir_env: dict[str, str]) -> None:
    child = spawn([*CW, "run", "--journal", dir_env["CLAUDEWRAP_JOURNAL"], "--", "file",
                   str(_write_output(dir_env)), "5"], dir_env)
    out = read_all(child).decode()
    assert child.exitstatus == 5
    assert TOKENS in out
    (line,) = [x for x in out.splitlines() if x.startswith("claudewrap:")]
    assert "pass --journal a file path" in line
    assert _unsaved(dir_env).read_text().count("\n") == 1


def _write_output(env: dict[str, str]) -> Path:
    path = Path(env["TMPDIR"]).parent / "output.txt"
    path.write_text(f"{TOKENS}\n")
    return path


def test_run_with_a_directory_journal_and_nothing_to_record_says_nothing(
        dir_env: dict[str, str]) -> None:
    done = subprocess.run([*CW, "run", "--", "exit", "3"], env=dir_env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 3
    assert (done.stdout, done.stderr) == ("bye\n", "")


def test_doctor_flags_a_directory_journal_with_the_fix(dir_env: dict[str, str]) -> None:
    folder = dir_env["CLAUDEWRAP_JOURNAL"]
    done = subprocess.run([*CW, "doctor", "--json"], env=dir_env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 1
    checks = {c["name"]: c for c in json.loads(done.stdout)}
    assert checks["journal"]["status"] == "fail"
    assert checks["journal"]["detail"] == f"{folder} is a directory"
    assert checks["journal"]["fix"] == (f"set CLAUDEWRAP_JOURNAL to a file path"
                                        f" (e.g. {folder}/journal.jsonl)")
    # The same cause is not reported again as a crash of the later checks.
    for name in ("prices", "sessions"):
        assert checks[name]["status"] == "info", checks[name]
        assert "see above" in checks[name]["detail"]

    done = subprocess.run([*CW, "doctor"], env=dir_env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert f"\u2717 journal        {folder} is a directory" in done.stdout
    assert "fix: set CLAUDEWRAP_JOURNAL to a file path" in done.stdout


@pytest.mark.parametrize("options", [[], ["--no-otel"]], ids=["fast", "click"])
@pytest.mark.parametrize("kind", sorted(BAD_CONFIGS))
def test_run_with_a_bad_config_says_one_line_naming_file_line_and_fix(
        env: dict[str, str], tmp_path: Path, kind: str, options: list[str]) -> None:
    text, lineno, what = BAD_CONFIGS[kind]
    config = Path(env["XDG_CONFIG_HOME"]) / "claudewrap" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(text)
    marker = tmp_path / "ran"
    done = cw(["run", *options, "--", "argsfile"], dict(env, FAKE_ARGS_FILE=str(marker)))
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"claudewrap: {config}: line {lineno}: ") and what in line
    assert line.endswith("\N{EM DASH} fix or move the file")
    assert done.stdout == "" and not marker.exists()
    # What the message names is right: `claudewrap --version` works meanwhile.
    assert cw(["--version"], env).returncode == 0
