"""`claudewrap statusline`: what Claude Code's status line shows and what it records.

The real CLI is fed the status-line inputs Claude Code really sent (both pinned
versions, ../shared/captures), some with ``rate_limits`` added as subscribers
get them; and the real Claude Code runs it from ``--settings`` in a pty.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
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
from test_alerts import Receiver, receiver  # noqa: F401 - a fixture

from claudewrap.store.journal import read_records
from claudewrap.store.records import UsageRecord

CAPTURES = Path("/work/shared/captures")
LOCAL_CAPTURES = Path(__file__).resolve().parent / "captures"
VERSIONS = ("2.1.197", "2.1.332")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
DOT = " \N{MIDDLE DOT} "


def captured(version: str) -> list[dict[str, Any]]:
    """The status-line inputs a real Claude Code of ``version`` sent, in order."""
    for root in (LOCAL_CAPTURES, CAPTURES):
        path = root / f"claude-code-{version}" / "statusline_inputs.json"
        if path.is_file():
            data: list[dict[str, Any]] = json.loads(path.read_text())
            return data
    pytest.skip(f"no captured status-line inputs of Claude Code {version}")


def statusline(env: dict[str, str], data: bytes | str | dict[str, Any], *args: str,
               timeout: float = 30) -> subprocess.CompletedProcess[str]:
    raw = json.dumps(data).encode() if isinstance(data, dict) else (
        data.encode() if isinstance(data, str) else data)
    done = subprocess.run([*CW, "statusline", *args], input=raw, env=env, capture_output=True,
                          timeout=timeout, check=False)
    return subprocess.CompletedProcess(done.args, done.returncode,
                                       done.stdout.decode(), done.stderr.decode())


def journal(env: dict[str, str]) -> list[UsageRecord]:
    path = Path(env["CLAUDEWRAP_JOURNAL"])
    return list(read_records(path)) if path.exists() else []


def with_limits(data: dict[str, Any], five: float, seven: float, *, now: float,
                five_left: float = 6000, seven_left: float = 5 * 86400) -> dict[str, Any]:
    out = json.loads(json.dumps(data))
    out["rate_limits"] = {
        "five_hour": {"used_percentage": five, "resets_at": int(now + five_left)},
        "seven_day": {"used_percentage": seven, "resets_at": int(now + seven_left)},
    }
    return out


def usage_json(env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([*CW, "usage", "--json"], env=env, check=True, capture_output=True,
                         text=True, timeout=60)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


# ------------------------------------------------------------------ captured inputs


@pytest.mark.parametrize("version", VERSIONS)
def test_captured_inputs_record_each_new_session_cost_once(env: dict[str, str],
                                                           version: str) -> None:
    inputs = captured(version)
    session = inputs[0]["session_id"]
    for data in inputs:
        done = statusline(env, data)
        assert done.returncode == 0 and done.stderr == ""
        line = done.stdout
        assert line.count("\n") == 1, line
        want = f"{data['model']['display_name']}{DOT}${data['cost']['total_cost_usd']:.2f}"
        assert line.startswith(want), line
    costs = [d["cost"]["total_cost_usd"] for d in inputs]
    changes = [c for i, c in enumerate(costs) if c and (i == 0 or c != costs[i - 1])]
    recs = journal(env)
    assert [r.cost_usd for r in recs] == changes  # a redraw with the same cost adds nothing
    for r in recs:
        assert (r.source, r.kind, r.model, r.session, r.claude_session) == (
            "statusline", "total", None, session, session)
        assert (r.input_tokens, r.output_tokens, r.cache_read_tokens,
                r.cache_write_tokens) == (0, 0, 0, 0)
        assert not r.cost_estimated and not r.approximate
        assert (r.project, r.cwd, r.host) == ("proj", "/home/dev/proj", os.uname().nodename)
    # Counted once, as the session's running total: usage agrees with Claude Code.
    report = usage_json(env)
    assert report["total"]["cost_usd"] == pytest.approx(costs[-1], abs=1e-6)
    assert f"today ${costs[-1]:.2f}" in statusline(env, inputs[-1]).stdout


def test_tmux_pane_and_project_folder_attribute_the_record(env: dict[str, str],
                                                           tmp_path: Path) -> None:
    repo = tmp_path / "my-repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "sub").mkdir()
    data = json.loads(json.dumps(captured("2.1.332")[-1]))
    data["workspace"] = {"current_dir": str(repo / "sub"), "project_dir": str(repo)}
    done = statusline({**env, "TMUX_PANE": "%7"}, data)
    assert done.returncode == 0 and done.stderr == ""
    [rec] = journal(env)
    assert (rec.project, rec.cwd, rec.tmux_pane) == ("my-repo", str(repo / "sub"), "%7")


def test_the_tmux_session_is_asked_once_a_claude_session(env: dict[str, str], tmp_path: Path,
                                                         tmux: str) -> None:
    # The real tmux, through a `tmux` first on PATH that notes each call.
    subprocess.run(["tmux", "-L", tmux, "new-session", "-d", "-s", "work"], check=True,
                   timeout=10)
    socket, pid, pane = subprocess.run(
        ["tmux", "-L", tmux, "display-message", "-p", "#{socket_path} #{pid} #{pane_id}"],
        check=True, timeout=10, capture_output=True, text=True).stdout.split()
    calls = tmp_path / "tmux-calls"
    real = shutil.which("tmux")
    wrapper = tmp_path / "bin" / "tmux"
    wrapper.write_text(f"#!/bin/sh\necho x >> {shlex.quote(str(calls))}\n"
                       f"exec {shlex.quote(str(real))} \"$@\"\n")
    wrapper.chmod(0o755)
    inside = {**env, "TMUX": f"{socket},{pid},0", "TMUX_PANE": pane}
    base = captured("2.1.332")[-1]
    for session, cost in (("s-a", 0.5), ("s-a", 0.75), ("s-a", 1.0), ("s-b", 0.25)):
        data = {**base, "session_id": session, "cost": {"total_cost_usd": cost}}
        assert statusline(inside, data).returncode == 0
    recs = journal(env)
    assert [(r.session, r.tmux_session, r.tmux_pane) for r in recs] == [
        ("s-a", "work", pane)] * 3 + [("s-b", "work", pane)]
    assert calls.read_text().count("x") == 2  # once for s-a, once for s-b


def test_a_new_session_and_a_changed_cost_are_recorded(env: dict[str, str]) -> None:
    base = captured("2.1.332")[-1]
    other = {**base, "session_id": "another-session",
             "cost": {**base["cost"], "total_cost_usd": 1.5}}
    for data in (base, other, base, other):
        assert statusline(env, data).returncode == 0
    assert [(r.session, r.cost_usd) for r in journal(env)] == [
        (base["session_id"], base["cost"]["total_cost_usd"]), ("another-session", 1.5)]
    assert "today $1.84" in statusline(env, other).stdout


def test_today_adds_what_other_sources_recorded(env: dict[str, str]) -> None:
    rec = UsageRecord(ts=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                      session="wrapped-run", source="pty", kind="delta", model="claude-opus-4-8",
                      input_tokens=10, output_tokens=5, cost_usd=1.0)
    Path(env["CLAUDEWRAP_JOURNAL"]).write_text(rec.to_json() + "\n")
    data = captured("2.1.332")[-1]
    line = statusline(env, data).stdout
    assert f"today ${1.0 + data['cost']['total_cost_usd']:.2f}" in line
    # A record appended by another writer is seen by the next call.
    with open(env["CLAUDEWRAP_JOURNAL"], "a") as fh:
        fh.write(rec.to_json().replace("wrapped-run", "second-run") + "\n")
    line = statusline(env, data).stdout
    assert f"today ${2.0 + data['cost']['total_cost_usd']:.2f}" in line


@pytest.mark.parametrize("share", [1.0, 0.5])
def test_per_request_records_of_the_session_count_and_the_status_line_is_a_floor(
        env: dict[str, str], share: float) -> None:
    """Exact per-request records of the session (OTel of a wrapped run) count; the
    status line's running cost adds nothing to them, only keeps the session
    from counting less (OTel records lost: ``share`` of the cost arrived)."""
    data = captured("2.1.332")[-1]
    sid, cost = data["session_id"], data["cost"]["total_cost_usd"]
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    lines = [UsageRecord(ts=now, session="wrapped-run", source="otel", model="claude-opus-5-5",
                         input_tokens=100, output_tokens=50, cost_usd=cost * share / 2,
                         request_id=f"req_{n}", claude_session=sid).to_json()
             for n in range(2)]
    Path(env["CLAUDEWRAP_JOURNAL"]).write_text("\n".join(lines) + "\n")
    assert statusline(env, data).returncode == 0
    report = usage_json(env)
    assert report["total"]["cost_usd"] == pytest.approx(cost, abs=1e-6)
    assert report["total"]["input_tokens"] == 200


# ------------------------------------------------------------------ plan limits


def test_rate_limits_are_shown_in_colour_and_recorded_when_they_change(
        env: dict[str, str]) -> None:
    now = time.time()
    data = with_limits(captured("2.1.332")[-1], 62, 17.4, now=now)
    first = statusline(env, data)
    assert first.returncode == 0 and first.stderr == ""
    line = first.stdout.rstrip("\n")
    assert "\x1b[33m5h 62%\x1b[0m" in line  # yellow from 50%
    assert "\x1b[32m7d 17%\x1b[0m" in line  # green below
    plain = ANSI.sub("", line)
    assert re.search(r"5h 62% \u21bb1h(39|40)", plain), plain
    assert plain.endswith(f"{DOT}7d 17%")
    limits = Path(env["CLAUDEWRAP_JOURNAL"] + ".limits")
    snaps = [json.loads(x) for x in limits.read_text().splitlines()]
    assert [(s["window"], s["used"]) for s in snaps] == [("five_hour", 0.62),
                                                         ("seven_day", 0.174)]
    statusline(env, data)
    assert len(limits.read_text().splitlines()) == 2  # unchanged: nothing added
    statusline(env, with_limits(data, 91, 17.4, now=now))
    assert len(limits.read_text().splitlines()) == 3
    red = statusline(env, with_limits(data, 91, 17.4, now=now)).stdout
    assert "\x1b[31m5h 91%\x1b[0m" in red
    assert "\x1b" not in statusline({**env, "NO_COLOR": "1"}, data).stdout


def test_pace_says_when_a_window_fills_before_it_resets(env: dict[str, str]) -> None:
    now = time.time()
    # 80% used one hour into the five: full in a quarter of an hour.
    data = with_limits(captured("2.1.332")[-1], 80, 10, now=now, five_left=4 * 3600)
    plain = ANSI.sub("", statusline({**env, "NO_COLOR": "1"}, data).stdout)
    # The time it fills, with the weekday when that is tomorrow already (a run
    # just before midnight: "Tue 00:11").
    full = set()
    for d in (0, 30):
        at = time.localtime(now + 900 + d)
        same_day = at.tm_yday == time.localtime(now).tm_yday
        full.add(time.strftime("%H:%M" if same_day else "%a %H:%M", at))
    found = re.search(r"5h 80% \u21bb(?:3h59|4h00) \u2192100% ((?:\w{3} )?\d\d:\d\d)", plain)
    assert found and found[1] in full, plain
    assert "7d 10%" in plain and plain.count("\u2192") == 1


def test_windows_known_from_an_earlier_input_show_before_this_sessions_first_answer(
        env: dict[str, str]) -> None:
    inputs = captured("2.1.332")
    now = time.time()
    statusline(env, with_limits(inputs[-1], 30, 12, now=now))
    fresh = {**inputs[0], "session_id": "a-new-session"}  # no rate_limits yet
    plain = ANSI.sub("", statusline(env, fresh).stdout)
    assert re.search(f"5h 30% \u21bb1h(?:39|40){DOT}7d 12%$", plain), plain


def test_api_key_sessions_show_no_windows(env: dict[str, str]) -> None:
    line = statusline(env, captured("2.1.197")[-1]).stdout
    assert "5h" not in line and "7d" not in line and "\x1b" not in line


# ------------------------------------------------------------------ never fails


@pytest.mark.parametrize("raw", [b"", b"\n", b"not json", b"[1, 2]", b"null", b"{}",
                                 b'{"session_id": 5, "cost": "x", "model": []}',
                                 b'{"session_id": "s", "cost": {"total_cost_usd": -1}}',
                                 b'{"session_id": "s", "cost": {"total_cost_usd": 1e308}}',
                                 b"[" * 100_000, b"\xff\xfe garbage"])
def test_bad_input_prints_a_minimal_line_and_exits_0(env: dict[str, str], raw: bytes) -> None:
    done = statusline(env, raw)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("claude") and done.stdout.count("\n") == 1
    assert journal(env) == []


def test_an_unwritable_journal_still_shows_the_line(env: dict[str, str],
                                                    tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    if os.access(folder, os.W_OK):  # root writes anywhere, but not in /proc
        folder = Path("/proc/claudewrap-test")
    env = {**env, "CLAUDEWRAP_JOURNAL": str(folder / "journal.jsonl")}
    try:
        done = statusline(env, captured("2.1.332")[-1])
    finally:
        (tmp_path / "ro").chmod(0o700)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"Opus 5.5{DOT}$0.34\n"  # no today: it would leave this session out


def test_a_journal_that_is_a_file_in_a_file_still_shows_the_line(env: dict[str, str],
                                                                 tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    env = {**env, "CLAUDEWRAP_JOURNAL": str(tmp_path / "plain" / "journal.jsonl")}
    done = statusline(env, captured("2.1.332")[-1])
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"Opus 5.5{DOT}$0.34\n"


def test_a_fifo_journal_is_never_waited_on(env: dict[str, str], tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    env = {**env, "CLAUDEWRAP_JOURNAL": str(fifo)}
    done = statusline(env, captured("2.1.332")[-1], timeout=10)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"Opus 5.5{DOT}$0.34\n"


def test_a_directory_as_journal_still_shows_the_line(env: dict[str, str],
                                                     tmp_path: Path) -> None:
    env = {**env, "CLAUDEWRAP_JOURNAL": str(tmp_path)}
    done = statusline(env, captured("2.1.332")[-1])
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"Opus 5.5{DOT}$0.34\n"


def test_a_broken_prices_file_leaves_out_todays_cost_only(env: dict[str, str],
                                                          tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text("[models\nthis is not toml")
    env = {**env, "CLAUDEWRAP_PRICES": str(prices)}
    data = captured("2.1.332")[-1]
    done = statusline(env, data)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"Opus 5.5{DOT}$0.34\n"
    assert [r.cost_usd for r in journal(env)] == [data["cost"]["total_cost_usd"]]


def test_a_broken_state_file_is_only_a_cache(env: dict[str, str]) -> None:
    data = captured("2.1.332")[-1]
    Path(env["CLAUDEWRAP_JOURNAL"] + ".statusline").write_bytes(b'{"sessions": [1, {"x"')
    done = statusline(env, data)
    assert (done.returncode, done.stderr) == (0, "")
    assert "today $0.34" in done.stdout
    assert len(journal(env)) == 1


# ------------------------------------------------------------------ the user's own line


def test_users_own_status_line_gets_the_same_input_and_shows_below(env: dict[str, str],
                                                                   tmp_path: Path) -> None:
    seen = tmp_path / "seen.json"
    env = {**env, "CLAUDEWRAP_STATUSLINE_COMMAND":
           f"cat > {shlex.quote(str(seen))}; printf 'mine\\nmore\\n'"}
    data = captured("2.1.332")[-1]
    done = statusline(env, data)
    assert (done.returncode, done.stderr) == (0, "")
    ours, theirs = done.stdout.splitlines()
    assert ours.startswith(f"Opus 5.5{DOT}$0.34") and theirs == "mine"  # at most 2 lines
    assert json.loads(seen.read_text()) == data
    assert len(journal(env)) == 1  # recorded before it ran


def test_users_own_status_line_from_the_config_file(env: dict[str, str],
                                                    tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[statusline]\ncommand = "echo from-config"\n')
    done = statusline({**env, "CLAUDEWRAP_CONFIG": str(config)}, captured("2.1.332")[-1])
    assert done.stdout.splitlines()[1] == "from-config"
    # The environment's command comes first.
    done = statusline({**env, "CLAUDEWRAP_CONFIG": str(config),
                       "CLAUDEWRAP_STATUSLINE_COMMAND": "echo from-env"},
                      captured("2.1.332")[-1])
    assert done.stdout.splitlines()[1] == "from-env"


@pytest.mark.parametrize("command", ["exit 3", "echo half; exit 1", "sleep 20", "",
                                     "no-such-command-anywhere"])
def test_a_failing_or_slow_own_status_line_shows_ours_only(env: dict[str, str],
                                                           command: str) -> None:
    start = time.monotonic()
    done = statusline({**env, "CLAUDEWRAP_STATUSLINE_COMMAND": command},
                      captured("2.1.332")[-1])
    assert time.monotonic() - start < 10
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"Opus 5.5{DOT}$0.34{DOT}today $0.34\n"


# ------------------------------------------------------------------ the fast entry


def test_plain_statusline_does_not_load_click(env: dict[str, str]) -> None:
    probe = ("import sys, json; from claudewrap.main import main\n"
             "import claudewrap.main as m\n"
             "real = m.exit_now\n"
             "def leave(status):\n"
             "    sys.stderr.write(json.dumps(sorted(sys.modules)))\n"
             "    real(status)\n"
             "m.exit_now = leave\n"
             "sys.argv[1:] = ['statusline']\n"
             "main()\n")
    done = subprocess.run([sys.executable, "-c", probe], input=json.dumps(
        captured("2.1.332")[-1]).encode(), env=env, capture_output=True, timeout=30, check=False)
    assert done.returncode == 0
    loaded = set(json.loads(done.stderr))
    assert "claudewrap.sources.statusline" in loaded
    assert "click" not in loaded and "claudewrap.cli" not in loaded


def test_a_redraw_without_windows_loads_neither_journal_nor_limits(env: dict[str, str]) -> None:
    """Same cost as last time, no ``rate_limits`` and no limits file (API-key
    billing): the journal and plan-limit modules stay unloaded (start-up time)."""
    probe = ("import sys, json\n"
             "import claudewrap.main as m\n"
             "def leave(status):\n"
             "    sys.stderr.write(json.dumps(sorted(sys.modules)))\n"
             "    sys.exit(status)\n"
             "m.exit_now = leave\n"
             "m.main(['statusline'])\n")
    data = json.dumps(captured("2.1.332")[-1]).encode()
    assert "rate_limits" not in captured("2.1.332")[-1]

    def loaded() -> set[str]:
        done = subprocess.run([sys.executable, "-c", probe], input=data, env=env,
                              capture_output=True, timeout=30, check=False)
        assert done.returncode == 0 and done.stdout.decode().startswith("Opus"), done
        return set(json.loads(done.stderr))

    first = loaded()  # records the cost and sums today: the journal is needed
    assert "claudewrap.store.journal" in first
    again = loaded()
    assert "claudewrap.store.journal" not in again
    assert "claudewrap.usage.limits" not in again and "claudewrap.usage.state" not in again
    assert statusline(env, data).stdout.count(DOT) == 2  # model, cost, today


def test_the_limits_file_is_the_one_usage_limits_keeps(tmp_path: Path) -> None:
    from claudewrap.sources import statusline as sl
    from claudewrap.usage import limits

    path = tmp_path / "j.jsonl"
    assert sl.limits_path(path) == limits.limits_path(path)


def test_statusline_with_options_goes_through_click(env: dict[str, str],
                                                    tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    done = statusline(env, captured("2.1.332")[-1], "--journal", str(other))
    assert (done.returncode, done.stderr) == (0, "")
    assert [r.source for r in read_records(other)] == ["statusline"]
    assert not Path(env["CLAUDEWRAP_JOURNAL"]).exists()
    helped = subprocess.run([*CW, "statusline", "--help"], env=env, capture_output=True,
                            text=True, timeout=30, check=False)
    assert helped.returncode == 0 and "statusLine" in helped.stdout


# ------------------------------------------------------------------ the real Claude Code


REPLY = "zebra-7"


def test_real_claude_code_runs_it_and_the_session_counts_once(
        env: dict[str, str], tmp_path: Path, claude_cli: Path,  # noqa: F811
        claude_version: str) -> None:  # noqa: F811
    """Claude Code started through the wrapper with the status line configured by
    --settings: after an answer the journal has the session's exact cost from the
    status line, equal to what the OTel records of the same run cost, and usage
    counts the session once."""
    api = FakeAnthropic(usage=Usage(1234, 567, 8901, 2345, text=REPLY)).start()
    home, work = tmp_path / "home2", tmp_path / "work"
    work.mkdir()
    seed_home(home, [work], claude_version)
    cenv = claude_env(env, api.url, home)
    cenv["CLAUDEWRAP_CLAUDE"] = str(claude_cli)
    command = f"{shlex.quote(sys.executable)} -m claudewrap statusline"
    settings = json.dumps({"statusLine": {"type": "command", "command": command}})
    child = pexpect.spawn(CW[0], [*CW[1:], "run", "--", "--settings", settings], env=cenv,
                          cwd=str(work), dimensions=(40, 120), timeout=30)
    child.logfile_read = (tmp_path / "screen.log").open("wb")

    def status_costs() -> list[float]:
        return [r.cost_usd or 0.0 for r in journal(cenv) if r.source == "statusline"]

    def otel_cost() -> float:
        return sum(r.cost_usd or 0.0 for r in journal(cenv) if r.source == "otel")

    try:
        # With a status line 2.1.197 shows it where its footer said "? for shortcuts".
        child.expect(re.compile(READY.pattern + rb"|today"))
        child.send("first question")
        time.sleep(0.3)
        child.send("\r")
        wait_until(lambda: len(api.answers) >= 1, "an answer", 30)
        wait_until(lambda: status_costs() and otel_cost()
                   and abs(status_costs()[-1] - otel_cost()) < 1e-9,
                   "a status-line cost equal to the OTel records' cost", 40)
        submit(child, "/exit", pexpect.EOF, wait=30)
        child.close()
    finally:
        if child.isalive():
            child.terminate(force=True)
        child.logfile_read.close()
        api.stop()
    recs = journal(cenv)
    status = [r for r in recs if r.source == "statusline"]
    otel = [r for r in recs if r.source == "otel"]
    assert otel and sorted(r.request_id or "" for r in otel) == sorted(
        a.request_id for a in api.answers)
    [sid] = {r.claude_session for r in otel}
    assert status and {(r.session, r.claude_session, r.kind, r.model) for r in status} == {
        (sid, sid, "total", None)}
    assert status[-1].cost_usd == pytest.approx(sum(r.cost_usd or 0.0 for r in otel), abs=1e-9)
    assert status[-1].project == "work"
    report = usage_json(cenv)
    assert report["total"]["cost_usd"] == pytest.approx(status[-1].cost_usd, abs=1e-6)
    saved = json.loads((home / ".claude.json").read_text())["projects"][str(work)]
    assert saved["lastCost"] == pytest.approx(status[-1].cost_usd, abs=1e-9)


def test_a_window_over_an_alert_threshold_posts_the_webhook_once(
        env: dict[str, str], receiver: Receiver) -> None:  # noqa: F811
    config = Path(env["XDG_CONFIG_HOME"]) / "claudewrap" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[alerts]\nwebhook_url = "{receiver.url}"\nrate_limit_percent = [80]\n')
    data = with_limits(captured("2.1.332")[-1], 85, 10, now=time.time())
    for _ in range(2):
        done = statusline(env, data)
        assert (done.returncode, done.stderr) == (0, "")  # the notice has no place here
    wait_until(lambda: len(receiver.requests) == 1, "the webhook's POST", 15)
    body = receiver.requests[0][1]
    assert (body["event"], body["window"], body["threshold_percent"], body["session"]) == (
        "rate_limit_reached", "five_hour", 80, data["session_id"])
    time.sleep(0.5)
    assert len(receiver.requests) == 1
