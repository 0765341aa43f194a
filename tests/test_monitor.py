"""`claudewrap monitor` for real: in a pty at 80x24, in tmux panes (full and a narrow
split), through a pipe, and --once on a hand-built journal."""

from __future__ import annotations

import io
import queue
import re
import shlex
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pexpect
from conftest import CW, spawn, wait_until

from claudewrap.store.journal import append_records
from claudewrap.store.records import UsageRecord, utc_now_iso
from claudewrap.views.monitor import Monitor

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def rec(session: str, ts: str, cost: float, tokens: int, *, kind: str = "delta",
        project: str = "web", model: str = "claude-sonnet-4-5", source: str = "pty",
        output: int = 0) -> UsageRecord:
    return UsageRecord(ts=ts, session=session, source=source, kind=kind, model=model,
                       input_tokens=tokens, output_tokens=output, cost_usd=cost,
                       project=project)


def test_once_prints_the_exact_snapshot(env: dict[str, str]) -> None:
    append_records(Path(env["CLAUDEWRAP_JOURNAL"]), [
        rec("old", "2026-06-30T12:00:00.000Z", 99.0, 1, source="manual"),
        rec("cccc3333", "2026-07-02T09:00:00.000Z", 5.0, 50000, kind="total"),
        rec("bbbb2222", "2026-07-15T08:00:00.000Z", 2.0, 100000, project="api",
            model="claude-opus-4-5", source="otel"),
        # A running total: 5k/1k before the 10-minute window, 10k/2k inside it.
        rec("aaaa1111", "2026-07-15T11:40:00.000Z", 0.25, 5000, kind="total", output=1000),
        rec("aaaa1111", "2026-07-15T11:55:00.000Z", 0.50, 10000, kind="total", output=2000),
    ])
    env = dict(env, TZ="UTC", COLUMNS="80")
    done = subprocess.run([*CW, "monitor", "--once", "--now", "2026-07-15T12:00:00Z",
                           "--budget-day", "10", "--budget-month", "100"],
                          env=env, capture_output=True, text=True, check=False, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "claudewrap monitor | 12:00:00\n"
        "today          $2.50  25% of $10.00 budget  112.0k tok\n"
        "  at this rate ~$20.50 by midnight; budget reached ~17:00\n"
        "this month     $7.50  8% of $100.00 budget  162.0k tok\n"
        "  at this pace ~$16.03 by month end\n"
        "last 10 min    600 tok/min  $1.50/h\n"
        "\n"
        "sessions: 0 running (*), 1 recent\n"
        "SESSION    PROJECT  MODEL          IN    OUT  CACHE   COST\n"
        " aaaa1111  web      sonnet-4-5  10.0k  2,000      0  $0.50\n")
    # Budgets also come from the environment; --project narrows everything.
    done = subprocess.run([*CW, "monitor", "--once", "--now", "2026-07-15T12:00:00Z",
                           "--project", "api"], env=dict(env, CLAUDEWRAP_BUDGET_DAY="1"),
                          capture_output=True, text=True, check=False, timeout=30)
    assert done.stdout.splitlines()[1:3] == [
        "today          $2.00  100.0k tok",
        "  at this rate ~$2.00 by midnight"]


def test_monitor_reads_only_what_was_appended(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    now = utc_now_iso()
    append_records(path, [rec("s1", now, 1.0, 100), rec("s2", now, 2.0, 200)])
    mon = Monitor(path)
    mon.update()
    assert mon.snapshot().today.cost_usd == 3.0
    append_records(path, [rec("s3", utc_now_iso(), 4.0, 400)])
    mon.update()
    snap = mon.snapshot()
    assert snap.today.cost_usd == 7.0
    assert {s.session for s in snap.sessions} == {"s1", "s2", "s3"}
    # Blank out the first line in place (same file, same size): the monitor shows
    # what the journal says now, as `usage` does (the state they share sees the edit).
    data = path.read_bytes()
    first = data.index(b"\n")
    path.write_bytes(b" " * first + data[first:])
    mon.update()
    assert mon.snapshot().today.cost_usd == 6.0
    # A rotated journal is a new one: read from its start.
    fresh = tmp_path / "new.jsonl"
    append_records(fresh, [rec("s9", utc_now_iso(), 0.5, 50)])
    fresh.replace(path)
    mon.update()
    assert mon.snapshot().today.cost_usd == 0.5
    mon.close()


def test_a_big_journal_seeds_the_rate_from_its_tail(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    now = datetime.now(timezone.utc)

    def ts(minutes_ago: float) -> str:
        return (now - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    old = [rec(f"old{n}", ts(60), 0.001, 10) for n in range(8000)]
    # A running total: 5000 tokens before the window, 8000 inside it.
    recent = [rec("run1", ts(20), 0.05, 5000, kind="total"),
              rec("run1", ts(1), 0.08, 8000, kind="total")]
    append_records(path, recent[:1] + old + recent[1:])  # the baseline is far back
    assert path.stat().st_size > 1 << 20
    mon = Monitor(path, window_minutes=10)
    mon.update()
    snap = mon.snapshot()
    assert snap.window.tokens == 3000 and snap.tokens_per_minute == 300
    assert snap.today.tokens == 8000 * 10 + 8000
    assert [s.session for s in snap.sessions] == ["run1"]
    mon.close()


def test_non_tty_prints_a_line_when_the_numbers_change(env: dict[str, str]) -> None:
    path = Path(env["CLAUDEWRAP_JOURNAL"])
    append_records(path, [rec("s1", utc_now_iso(), 1.0, 1000)])
    proc = subprocess.Popen([*CW, "monitor", "--interval", "0.3"], env=env,
                            stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for text in proc.stdout or []:
            lines.put(text)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        first = lines.get(timeout=20)
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d today=\$1\.00 today_tokens=1000 ",
                        first), first
        assert "running=0" in first and "\x1b" not in first
        time.sleep(0.7)
        assert lines.empty()  # nothing changed: nothing printed
        append_records(path, [rec("s2", utc_now_iso(), 2.5, 500)])
        second = lines.get(timeout=20)
        assert "today=$3.50 today_tokens=1500" in second
    finally:
        proc.terminate()
        proc.wait(10)


def _frames(raw: str) -> list[list[str]]:
    """Each redraw (it starts with cursor-home) as its visible lines."""
    out = []
    for chunk in raw.split("\x1b[H")[1:]:
        out.append([ANSI.sub("", line) for line in chunk.split("\r\n")])
    return out


def test_live_view_in_a_pty_redraws_in_place_and_q_restores_the_screen(
        env: dict[str, str]) -> None:
    path = Path(env["CLAUDEWRAP_JOURNAL"])
    append_records(path, [rec(f"sess{n:04d}", utc_now_iso(), 0.1, 100) for n in range(30)])
    interval = 1.5
    child = spawn([*CW, "monitor", "--interval", str(interval)], env, rows=24, cols=80)
    log = io.BytesIO()
    child.logfile_read = log
    try:
        child.expect_exact("claudewrap monitor")
        child.expect_exact("more; a taller window")  # 30 sessions do not fit in 24 rows
        started = time.monotonic()
        append_records(path, [rec("fresh999", utc_now_iso(), 5.0, 9000, kind="total")])
        child.expect_exact("fresh999", timeout=10)
        assert time.monotonic() - started < 2 * interval
        child.expect(r"today\s+\$8\.00")
        child.send("q")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    raw = log.getvalue().decode()
    assert raw.startswith("\x1b[?1049h\x1b[?25l")  # the alternate screen, cursor hidden
    assert raw.endswith("\x1b[?25h\x1b[?1049l")  # both given back
    assert "\x1b[2J" not in raw  # overwritten in place, never cleared: no flicker
    frames = _frames(raw)
    assert len(frames) >= 2
    assert len(frames) < 20  # redrawn when something changed, not at every tick
    for frame in frames:
        assert len(frame) <= 24
        assert all(len(line) < 80 for line in frame), frame
        assert frame[0].startswith("claudewrap monitor")


def test_live_view_output_from_start(env: dict[str, str]) -> None:
    child = spawn([*CW, "monitor", "--interval", "5"], env, rows=24, cols=80)
    child.expect_exact("claudewrap monitor")
    child.expect_exact("no session active")
    child.kill(15)  # SIGTERM: the screen is given back too
    child.expect(pexpect.EOF)
    tail = child.before
    child.close()
    assert isinstance(tail, bytes) and tail.endswith(b"\x1b[?25h\x1b[?1049l")
    assert child.exitstatus == 0


def test_ctrl_c_gives_the_terminal_back_as_it_was(env: dict[str, str]) -> None:
    child = spawn(["bash", "--norc", "--noprofile", "-i"], dict(env, PS1="PROMPT> "))
    child.expect("PROMPT> ")

    def stty() -> str:
        child.sendline("echo STTY=$(stty -g)")
        child.expect(r"STTY=(\S+)")
        state = str(child.match.group(1).decode())
        child.expect("PROMPT> ")
        return state

    before = stty()
    child.sendline(" ".join(shlex.quote(a) for a in CW) + " monitor --interval 0.5")
    child.expect_exact("claudewrap monitor")
    child.expect_exact("\x1b[H")  # redrawing
    child.sendcontrol("c")
    child.expect_exact("\x1b[?1049l")
    child.expect("PROMPT> ")
    assert stty() == before
    child.sendline("exit")
    child.expect(pexpect.EOF)
    child.close()


def test_tmux_full_window_and_narrow_split(env: dict[str, str], tmux: str,
                                          tmp_path: Path) -> None:
    path = Path(env["CLAUDEWRAP_JOURNAL"])
    now = datetime.now(timezone.utc)
    append_records(path, [rec(f"s{n:07d}", (now - timedelta(seconds=30 - n)).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"), 0.25, 2500, project="proj") for n in range(20)])
    keep = ("PATH", "HOME", "PYTHONPATH", "CLAUDEWRAP_JOURNAL", "XDG_DATA_HOME",
            "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "LC_ALL")
    prefix = "env " + " ".join(f"{k}={shlex.quote(env[k])}" for k in keep) + " TERM=tmux-256color "
    command = prefix + " ".join(shlex.quote(a) for a in CW) + " monitor --interval 0.5"
    tm = ["tmux", "-L", tmux, "-f", "/dev/null"]
    subprocess.run([*tm, "new-session", "-d", "-x", "80", "-y", "24", command], check=True,
                   env=env, timeout=20)

    def capture(target: str) -> list[str]:
        out = subprocess.run([*tm, "capture-pane", "-p", "-J", "-t", target],
                             capture_output=True, text=True, check=False, timeout=20).stdout
        return [line.rstrip() for line in out.rstrip("\n").split("\n")]  # -J keeps spaces

    def width(target: str) -> int:
        out = subprocess.run([*tm, "display-message", "-p", "-t", target, "#{pane_width}"],
                             capture_output=True, text=True, check=False, timeout=20).stdout
        return int(out)

    def check(target: str) -> list[str]:
        screen = capture(target)
        return screen if screen and screen[0].startswith("claudewrap monitor") and any(
            "more; a taller" in line or line.startswith("(+") for line in screen) else []

    full = wait_until(lambda: check("0.0"), "the monitor at 80x24", limit=20)
    assert isinstance(full, list) and len(full) <= 24
    assert all(len(line) < 80 for line in full)
    subprocess.run([*tm, "split-window", "-h", "-l", "34", "-t", "0.0", command], check=True,
                   env=env, timeout=20)
    narrow = wait_until(lambda: check("0.1"), "the monitor in a narrow split", limit=20)
    cols = width("0.1")
    assert cols == 34
    assert isinstance(narrow, list)
    assert all(len(line) < cols for line in narrow), narrow  # -J: a wrapped line would be longer
    assert any(re.match(r" s00000\d\d  sonnet-4-5 .*\$0\.25$", line) for line in narrow), narrow
    # The first pane is narrower now (resized): it redrew to fit.
    wait_until(lambda: all(len(line) < width("0.0") for line in capture("0.0"))
               and capture("0.0")[0].startswith("claudewrap"), "the resized pane to redraw", limit=20)
    # New usage shows up in place: the title stays on the first line (no scrolling).
    append_records(path, [rec("zz-new", utc_now_iso(), 100.0, 1, project="proj")])
    wait_until(lambda: any("$105.00" in line for line in capture("0.1"))
               and capture("0.1")[0].startswith("claudewrap"), "the new total in the split", limit=20)
    subprocess.run([*tm, "send-keys", "-t", "0.1", "q"], check=False, timeout=20)
