"""tmux and GNU screen for real: attribution of wrapped runs, scrollback scans,
the status segment. Private servers (tmux -L, a private SCREENDIR), killed after."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import ROOT, cw, require, spawn, wait_until
from test_shell import make_bin

from claudewrap.sources.scan import Target, find_events, plan
from claudewrap.store.records import UsageEvent, UsageRecord

COST_BLOCK = (
    "Total cost:            $0.4321\n"
    "Total duration (API):  1m 2.3s\n"
    "Usage by model:\n"
    "    claude-sonnet-4-5:  12.3k input, 1.5k output, 100.2k cache read,"
    " 5.1k cache write ($0.4321)\n"
)


def journal(env: dict[str, str]) -> list[dict[str, object]]:
    path = Path(env["CLAUDEWRAP_JOURNAL"])
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def menv(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A shell environment for panes: fake claude and claudewrap on PATH, an rc
    file that loads the integration, a project folder, a /cost block on disk."""
    bin_dir = make_bin(tmp_path / "mbin")
    project = tmp_path / "home" / "proj"
    (project / ".git").mkdir(parents=True)
    (tmp_path / "cost.txt").write_text(COST_BLOCK)
    rc = tmp_path / "rc.bash"
    rc.write_text(f"source {ROOT / 'shell' / 'claudewrap.bash'}\nPS1='PROMPT> '\n"
                  f"cd {project}\n")
    return dict(env, PATH=f"{bin_dir}:/usr/bin:/bin", RC=str(rc), COST=str(tmp_path / "cost.txt"),
                PROJ=str(project), TERM="xterm-256color")


# -------------------------------------------------------------------- tmux


class Tmux:
    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.env = env

    def __call__(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.name, "-f", "/dev/null", *args], env=self.env,
                              capture_output=True, text=True, timeout=15, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def type(self, target: str, line: str) -> None:
        self("send-keys", "-t", target, "-l", line)
        self("send-keys", "-t", target, "Enter")

    def screen(self, target: str) -> str:
        return self("capture-pane", "-p", "-J", "-S", "-", "-t", target)


def test_tmux_wrapped_run_records_pane_and_session_and_scan_adds_unwrapped_once(
        menv: dict[str, str], tmux: str, tmp_path: Path) -> None:
    t = Tmux(tmux, menv)
    t("new-session", "-d", "-s", "work", "-x", "160", "-y", "40",
      f"bash --noprofile --rcfile {menv['RC']} -i")
    pane = t("display-message", "-p", "-t", "work", "#{pane_id}").strip()
    wait_until(lambda: "PROMPT> " in t.screen(pane), "the prompt")
    # Through the wrapper (the `claude` alias): recorded live, with the pane.
    t.type(pane, "claude print 'Total cost: $0.55'; echo DONE1")
    wait_until(lambda: "DONE1\n" in t.screen(pane) and journal(menv), "the wrapped run")
    (wrapped,) = journal(menv)
    assert wrapped["source"] == "pty" and wrapped["cost_usd"] == 0.55
    assert wrapped["tmux_pane"] == pane and wrapped["tmux_session"] == "work"
    assert wrapped["cwd"] == menv["PROJ"] and wrapped["project"] == "proj"
    # Not through the wrapper: only on screen, until a scan reads it.
    t.type(pane, "command claude file \"$COST\"; echo DONE2")
    wait_until(lambda: "DONE2\n" in t.screen(pane), "the unwrapped run")
    assert len(journal(menv)) == 1

    outside = {k: v for k, v in menv.items() if not k.startswith("TMUX")}
    done = cw(["scan", "--tmux", "--socket", tmux], outside)
    assert done.returncode == 0, done.stderr
    assert "recorded 1 usage record" in done.stdout
    records = journal(menv)
    assert len(records) == 2  # the wrapped run's block was not recorded again
    scanned = records[1]
    assert scanned["source"] == "scan" and scanned["kind"] == "total"
    assert scanned["model"] == "claude-sonnet-4-5" and scanned["cost_usd"] == 0.4321
    assert (scanned["input_tokens"], scanned["output_tokens"]) == (12300, 1500)
    assert scanned["tmux_pane"] == pane and scanned["tmux_session"] == "work"
    assert scanned["cwd"] == menv["PROJ"] and scanned["project"] == "proj"
    assert str(scanned["session"]).startswith("scan-")

    # Again, by pane, and from inside tmux: nothing new.
    done = cw(["scan", "--pane", pane, "--socket", tmux], outside)
    assert done.returncode == 0 and "recorded 0 usage records" in done.stdout, done.stdout
    t.type(pane, "claudewrap scan > /dev/null; echo SCANNED=$?")
    wait_until(lambda: "SCANNED=0" in t.screen(pane), "a scan inside tmux")
    assert len(journal(menv)) == 2

    # A second claude run in the pane with a smaller total is a new session.
    (tmp_path / "cost2.txt").write_text(COST_BLOCK.replace("0.4321", "0.0100"))
    t.type(pane, f"command claude file {tmp_path / 'cost2.txt'}; echo DONE3")
    wait_until(lambda: "DONE3\n" in t.screen(pane), "the second unwrapped run")
    assert cw(["scan", "--tmux", "--socket", tmux], outside).returncode == 0
    records = journal(menv)
    assert len(records) == 3 and records[2]["cost_usd"] == 0.01
    assert records[2]["session"] != scanned["session"]
    usage = cw(["usage", "--json"], outside)
    assert json.loads(usage.stdout)["total"]["cost_usd"] == pytest.approx(0.55 + 0.4321 + 0.01)


def test_tmux_status_right_shows_todays_cost(menv: dict[str, str], tmux: str) -> None:
    records = [UsageRecord.from_event(UsageEvent(kind="delta", model="claude-sonnet-4-5",
                                                 input_tokens=30000, output_tokens=0,
                                                 cost_usd=1.25), session="s1", source="pty")]
    Path(menv["CLAUDEWRAP_JOURNAL"]).write_text(records[0].to_json() + "\n")
    cmd = f"{sys.executable} -m claudewrap status --format tmux"
    t = Tmux(tmux, menv)
    t("new-session", "-d", "-s", "st", "-x", "100", "-y", "20", "sleep 60")
    t("set", "-g", "status-right", f"#({cmd})")
    t("set", "-g", "status-interval", "1")
    # The status line is drawn for an attached client: attach one in a pty.
    client = spawn(["tmux", "-L", tmux, "attach", "-t", "st"], menv, rows=20, cols=100,
                   timeout=30)
    try:
        client.expect_exact("claude $1.25 3,000 tok/min")
    finally:
        client.terminate(force=True)


@pytest.mark.parametrize("how", ["console script", "python -m"])
def test_tmux_lines_from_shell_init_work_without_claudewrap_on_the_servers_path(
        menv: dict[str, str], tmux: str, tmp_path: Path, how: str) -> None:
    # The documented set-up: `claudewrap shell-init tmux >> ~/.tmux.conf`. The tmux
    # server here has a PATH without claudewrap (and without Python's folder).
    records = [UsageRecord.from_event(UsageEvent(kind="delta", model="claude-sonnet-4-5",
                                                 input_tokens=30000, output_tokens=0,
                                                 cost_usd=1.25), session="s1", source="pty")]
    Path(menv["CLAUDEWRAP_JOURNAL"]).write_text(records[0].to_json() + "\n")
    script = shutil.which("claudewrap")
    if how == "console script" and script is None:
        pytest.skip("claudewrap is not installed as a console script here")
    cmd = [script] if how == "console script" and script else [sys.executable, "-m",
                                                                "claudewrap"]
    lines = subprocess.run([*cmd, "shell-init", "tmux"], env=menv, capture_output=True,
                           text=True, timeout=30, check=True).stdout
    assert "#(/" in lines and "status --format tmux" in lines
    conf = tmp_path / "tmux.conf"
    conf.write_text(lines.replace("status-interval 15", "status-interval 1"))
    bare = {k: v for k, v in menv.items() if k != "PYTHONPATH"}
    bare["PATH"] = "/usr/bin:/bin"
    t = Tmux(tmux, bare)
    t("new-session", "-d", "-s", "st", "-x", "100", "-y", "20", "sleep 60")
    t("source-file", str(conf))
    client = spawn(["tmux", "-L", tmux, "attach", "-t", "st"], bare, rows=20, cols=100,
                   timeout=30)
    try:
        client.expect_exact("claude $1.25 3,000 tok/min")
    finally:
        client.terminate(force=True)


# -------------------------------------------------------------------- screen


@pytest.fixture
def screen_env(menv: dict[str, str]) -> Iterator[dict[str, str]]:
    """``menv`` with a private SCREENDIR (short: socket paths are limited)."""
    require("screen")
    folder = tempfile.mkdtemp(prefix="cws")
    os.chmod(folder, 0o700)
    yield dict(menv, SCREENDIR=folder)
    subprocess.run(["screen", "-wipe"], env=dict(menv, SCREENDIR=folder), capture_output=True,
                   timeout=15, check=False)
    shutil.rmtree(folder, ignore_errors=True)


def test_screen_wrapped_run_records_session_and_scan_adds_unwrapped_once(
        screen_env: dict[str, str], tmp_path: Path) -> None:
    env = screen_env
    name = f"cwt{os.getpid()}"
    subprocess.run(["screen", "-dmS", name, "bash", "--noprofile", "--rcfile", env["RC"], "-i"],
                   env=env, check=True, timeout=15)
    try:
        def sessions() -> list[str]:
            out = subprocess.run(["screen", "-ls"], env=env, capture_output=True, text=True,
                                 timeout=15, check=False).stdout
            return [w for w in out.split() if w.endswith("." + name)]

        (full,) = wait_until(sessions, "the screen session")

        def stuff(line: str) -> None:
            # screen substitutes $VARS and reads \\-escapes in what it stuffs: type none.
            subprocess.run(["screen", "-S", full, "-p", "0", "-X", "stuff", line + "\n"],
                           env=env, check=True, timeout=15)

        marks = tmp_path / "marks"
        marks.mkdir()
        (tmp_path / "wrapped.txt").write_text("Total cost: $0.66\n")
        stuff(f"claude file {tmp_path / 'wrapped.txt'}; touch {marks / 'one'}")
        wait_until(lambda: (marks / "one").exists() and journal(env), "the wrapped run")
        (wrapped,) = journal(env)
        assert wrapped["source"] == "pty" and wrapped["cost_usd"] == 0.66
        assert wrapped["screen_session"] == f"{full}:0"
        assert wrapped["cwd"] == env["PROJ"]

        stuff(f"command claude file {env['COST']}; touch {marks / 'two'}")
        wait_until(lambda: (marks / "two").exists(), "the unwrapped run")
        done = cw(["scan", "--screen", name], env)
        assert done.returncode == 0, done.stderr
        assert "recorded 1 usage record" in done.stdout, done.stdout
        records = journal(env)
        assert len(records) == 2
        scanned = records[1]
        assert scanned["source"] == "scan" and scanned["cost_usd"] == 0.4321
        assert scanned["screen_session"] == f"{full}:0"
        for again in (["scan", "--screen", full, "--window", "0"], ["scan", "--screen"]):
            done = cw(again, env)
            assert done.returncode == 0 and "recorded 0 usage records" in done.stdout, done
        assert len(journal(env)) == 2
        done = cw(["scan", "--screen", "nosuchsession"], env)
        assert done.returncode == 1 and "no screen session" in done.stderr
    finally:
        subprocess.run(["screen", "-S", name, "-X", "quit"], env=env, capture_output=True,
                       timeout=15, check=False)


# -------------------------------------------------------------------- scan rules


def _target() -> Target:
    return Target(kind="tmux", label="tmux pane %1", identity="tmux\0h\0s\0%1\0123",
                  attribution={"host": "h", "tmux_pane": "%1", "tmux_session": "w"})


def _block(cost: str, tokens: str) -> str:
    return (f"Total cost: ${cost}\nUsage by model:\n"
            f"    claude-opus-4-1:  {tokens} input, 1k output (${cost})\n")


def test_scan_plan_splits_runs_and_skips_redraws_and_known_events() -> None:
    screen = ("$ claude\n" + _block("0.10", "2k") + "more work\n" + _block("0.10", "2k")
              + _block("0.30", "5k") + "$ claude\n" + _block("0.05", "1k")
              + "> next\nTokens: 100 input, 20 output\nTokens: 100 input, 20 output\n")
    events = find_events(screen.encode())
    records, known = plan(_target(), events, [])
    totals = [r for r in records if r.kind == "total"]
    assert [r.cost_usd for r in totals] == [0.10, 0.30, 0.05]  # the redraw is dropped
    assert totals[0].session == totals[1].session != totals[2].session  # 0.05 < 0.30: a new run
    deltas = [r for r in records if r.kind == "delta"]
    assert len(deltas) == 2 and deltas[0].session == deltas[1].session  # two requests
    assert known == 0
    assert {r.tmux_pane for r in records} == {"%1"} and {r.source for r in records} == {"scan"}
    # Scanning again: everything is known.
    again, known = plan(_target(), events, records)
    assert again == [] and known == 6
    # The history scrolled: the first block is gone, a new total arrived.
    later = find_events((_block("0.30", "5k") + _block("0.50", "9k")).encode())
    new, known = plan(_target(), later, records)
    assert [r.cost_usd for r in new] == [0.50] and known == 1
    assert new[0].session == totals[1].session  # the same run went on
    # Another pane's records do not count for this one.
    other = Target(kind="tmux", label="x", identity="tmux\0h\0s\0%2\0999",
                   attribution={"host": "h", "tmux_pane": "%2"})
    assert len(plan(other, events, records)[0]) == 5


def test_status_plain_shows_today_and_recent_rate(env: dict[str, str]) -> None:
    now = datetime.now(timezone.utc)

    def rec(minutes_ago: float, session: str, kind: str, tokens: int, cost: float) -> str:
        ts = (now - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return UsageRecord(ts=ts, session=session, source="pty", kind=kind, model="m",
                           input_tokens=tokens, cost_usd=cost).to_json()

    lines = [rec(40, "a", "total", 10000, 0.10), rec(5, "a", "total", 25000, 0.20),
             rec(3, "b", "delta", 5000, 0.05)]
    if (now - timedelta(minutes=40)).astimezone().date() != now.astimezone().date():
        pytest.skip("too close to midnight")
    Path(env["CLAUDEWRAP_JOURNAL"]).write_text("\n".join(lines) + "\n")
    done = cw(["status"], env)
    assert done.returncode == 0, done.stderr
    # today: 25k + 5k tokens, $0.25; last 10 min: (25k - 10k) + 5k = 20k -> 2k/min
    assert done.stdout.splitlines() == ["today: $0.25, 30,000 tokens, 2 sessions",
                                        "last 10 min: 2,000 tokens/min"]
    done = cw(["status", "--format", "tmux", "--minutes", "60"], env)
    assert done.stdout == "claude $0.25 500 tok/min\n"
    # With budgets set, both formats show how much of each is used.
    env = dict(env, CLAUDEWRAP_BUDGET_DAY="1", CLAUDEWRAP_BUDGET_MONTH="10")
    done = cw(["status", "--format", "tmux", "--minutes", "60"], env)
    assert done.stdout == "claude $0.25 500 tok/min day 25% month 2%\n"
    done = cw(["status"], env)
    assert done.stdout.splitlines()[2:] == ["daily budget: $0.25 of $1.00 (25%)",
                                            "monthly budget: $0.25 of $10.00 (2%)"]
    done = cw(["status", "--format", "tmux"], dict(env, CLAUDEWRAP_BUDGET_DAY="lots"))
    assert (done.returncode, done.stdout) == (1, "claude ?\n")
