"""`claudewrap import --shell-history` (issue 17 item 6): real bash and zsh write their
history files (HISTFILE, HISTTIMEFORMAT, EXTENDED_HISTORY, `history -w`, `fc -W`),
the real CLI imports the usage typed in them, once, dated when it was typed."""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import cw, require

SEED = "claude-token-logger.sh log 1000 2000 0.05 claude-3-sonnet"
ECHO = 'echo "Tokens: 7 input, 8 output"'


def journal(env: dict[str, str]) -> list[dict[str, object]]:
    path = Path(env["CLAUDEWRAP_JOURNAL"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def bash_types(env: dict[str, str], histfile: Path, commands: list[str], *,
               times: bool = True) -> None:
    """An interactive bash runs ``commands`` and writes its history (`history -w`)."""
    shell_env = {k: v for k, v in env.items() if k not in ("HISTCONTROL", "HISTIGNORE")}
    shell_env["HISTFILE"] = str(histfile)
    if times:
        shell_env["HISTTIMEFORMAT"] = "%F %T "
    else:
        shell_env.pop("HISTTIMEFORMAT", None)
    # `history -w` writes the file; unset, bash does not append the session again at exit.
    script = "\n".join([*commands, "history -w", "unset HISTFILE", "exit 0"]) + "\n"
    subprocess.run([require("bash"), "--norc", "-i"], input=script, env=shell_env,
                   capture_output=True, text=True, timeout=30, check=True)


def zsh_types(env: dict[str, str], histfile: Path, commands: list[str]) -> None:
    """An interactive zsh with EXTENDED_HISTORY runs ``commands`` and writes `fc -W`."""
    script = "\n".join(["HISTSIZE=1000; SAVEHIST=1000; setopt EXTENDED_HISTORY", *commands,
                        "fc -W", "exit 0"]) + "\n"
    subprocess.run([require("zsh"), "-f", "-i"], input=script,
                   env=dict(env, HISTFILE=str(histfile)), capture_output=True, text=True,
                   timeout=30, check=True)


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def bash_time_of(histfile: Path, command: str) -> int:
    lines = histfile.read_text().splitlines()
    return int(lines[lines.index(command) - 1][1:])


def test_bash_history_usage_is_recorded_once_dated_when_typed(
        env: dict[str, str], tmp_path: Path) -> None:
    hist = tmp_path / "bash_history"
    bash_types(env, hist, [SEED, "ls >/dev/null", ECHO])
    env = dict(env, HISTFILE=str(hist))  # the default file to read
    done = cw(["import", "--shell-history"], env)
    assert done.returncode == 0, done.stderr
    assert "added 2 records" in done.stdout and "keeps no times" not in done.stdout
    seed, echo = journal(env)
    assert (seed["input_tokens"], seed["output_tokens"], seed["cost_usd"], seed["model"]) == (
        1000, 2000, 0.05, "claude-3-sonnet")
    assert (echo["input_tokens"], echo["output_tokens"], echo.get("cost_usd")) == (7, 8, None)
    for rec, command in ((seed, SEED), (echo, ECHO)):
        assert rec["ts"] == iso(bash_time_of(hist, command))
        assert (rec["source"], rec["session"], rec["pattern"]) == (
            "manual", "shell-history", "shell-history")
        assert str(rec["request_id"]).startswith("hist:")
    again = cw(["import", "--shell-history"], env)
    assert "added 0 records" in again.stdout and len(journal(env)) == 2
    total = json.loads(cw(["usage", "--json"], env).stdout)["total"]
    assert (total["input_tokens"], total["output_tokens"]) == (1007, 2008)


def test_a_grown_history_adds_only_the_new_commands(env: dict[str, str],
                                                    tmp_path: Path) -> None:
    hist = tmp_path / "bash_history"
    bash_types(env, hist, [SEED])
    assert cw(["import", "--shell-history", str(hist)], env).returncode == 0
    bash_types(env, hist, ["claude-token-logger.sh log 10 20 0.01"])
    done = cw(["import", "--shell-history", str(hist)], env)
    assert "added 1 record " in done.stdout, done.stdout
    assert [r["input_tokens"] for r in journal(env)] == [1000, 10]


def test_zsh_extended_history_with_a_multi_line_command(env: dict[str, str],
                                                        tmp_path: Path) -> None:
    hist = tmp_path / "zsh_history"
    log = tmp_path / "usage.log"
    heredoc = f"cat >> {log} <<'END'\nTokens: 5 input, 6 output\nCost: $0.01\nEND"
    zsh_types(env, hist, [SEED, heredoc])
    assert "Tokens: 5 input, 6 output\\\nCost:" in hist.read_text()  # one command, 4 lines
    done = cw(["import", "--shell-history", str(hist)], env)
    assert done.returncode == 0 and "added 2 records" in done.stdout, done.stdout
    times = [int(m) for m in re.findall(r"^: (\d+):\d+;", hist.read_text(), re.MULTILINE)]
    seed, printed = journal(env)
    assert seed["cost_usd"] == 0.05 and seed["ts"] == iso(times[1])
    assert (printed["input_tokens"], printed["output_tokens"], printed["cost_usd"]) == (
        5, 6, 0.01)
    assert "added 0 records" in cw(["import", "--shell-history", str(hist)], env).stdout


def test_history_without_times_is_dated_by_the_file_and_says_so(
        env: dict[str, str], tmp_path: Path) -> None:
    hist = tmp_path / "bash_history"
    bash_types(env, hist, [SEED, SEED], times=False)
    when = 1_790_000_000
    os.utime(hist, (when, when))
    done = cw(["import", "--shell-history", str(hist)], env)
    assert done.returncode == 0, done.stderr
    # Typed twice (bash keeps both lines): two commands, each recorded.
    assert "added 2 records" in done.stdout
    assert f"{hist} keeps no times: 2 commands dated" in done.stdout
    assert "set HISTTIMEFORMAT" in done.stdout
    assert [r["ts"] for r in journal(env)] == [iso(when)] * 2
    os.utime(hist, (when + 3600, when + 3600))  # written again later: still the same ones
    assert "added 0 records" in cw(["import", "--shell-history", str(hist)], env).stdout


def test_claudewrap_commands_in_history_are_not_counted_again(
        env: dict[str, str], tmp_path: Path) -> None:
    hist = tmp_path / "bash_history"
    bash_types(env, hist, ["claudewrap log 5 6 0.01 claude-3-sonnet",
                           "claudewrap parse 'Tokens: 7 input, 8 output'", ECHO])
    done = cw(["import", "--shell-history", str(hist)], env)
    assert "added 1 record " in done.stdout, done.stdout
    # (bash ran that `claudewrap log` itself, if claudewrap is on PATH: it recorded then)
    assert [r["input_tokens"] for r in journal(env) if r["session"] == "shell-history"] == [7]


@pytest.mark.parametrize("args", [["--shell-history"], ["--shell-history", "--dry-run"]])
def test_no_history_is_one_clear_line(env: dict[str, str], args: list[str]) -> None:
    env = dict(env)
    env.pop("HISTFILE", None)
    done = cw(["import", *args], env)
    assert done.returncode == 1
    assert done.stderr.strip() == ("Error: no shell history found ($HISTFILE, ~/.bash_history,"
                                   " ~/.zsh_history); pass the history files as PATHS")


def test_dry_run_writes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    hist = tmp_path / "bash_history"
    bash_types(env, hist, [SEED])
    done = cw(["import", "--shell-history", "--dry-run", str(hist)], env)
    assert "would add 1 record " in done.stdout and journal(env) == []
