"""context.TmuxQuery: the tmux session name asked before claude starts and read
once it runs (issue 14 item 3), with a real private tmux server, a tmux that
hangs and one that fails."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from claudewrap.wrap.context import TmuxQuery, tmux_session_name


def _fake_tmux(folder: Path, body: str) -> dict[str, str]:
    folder.mkdir()
    script = folder / "tmux"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return dict(os.environ, PATH=f"{folder}:/usr/bin:/bin", TMUX="/tmp/x,1,0",
                TMUX_PANE="%3")


def _gone(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_outside_tmux_nothing_is_started() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
    assert TmuxQuery.start(env) is None


def test_the_answer_is_what_tmux_prints_and_the_pane_is_asked_for(tmp_path: Path) -> None:
    env = _fake_tmux(tmp_path / "bin", 'printf "%s|" "$@"; echo; echo "  build \\n"')
    query = TmuxQuery.start(env)
    assert query is not None
    # The name as tmux_session_name() reads it: the pane named, stdout stripped.
    answer = query.result()
    assert answer is not None and answer.startswith("display-message|-p|-t|%3|#{session_name}|")
    assert query.result() == answer  # asked once
    assert _gone(query._pid)


def test_a_failing_tmux_gives_none(tmp_path: Path) -> None:
    env = _fake_tmux(tmp_path / "bin", "echo no server; exit 1")
    query = TmuxQuery.start(env)
    assert query is not None and query.result() is None
    assert tmux_session_name(env) is None  # as the synchronous one says


def test_a_hanging_tmux_costs_at_most_the_timeout_and_is_reaped(tmp_path: Path) -> None:
    env = _fake_tmux(tmp_path / "bin", "exec sleep 30")
    query = TmuxQuery.start(env)
    assert query is not None
    t0 = time.monotonic()
    assert query.result() is None
    assert time.monotonic() - t0 < 5  # bounded (TIMEOUT is 0.5 s), not sleep's 30 s
    assert _gone(query._pid)


def test_cancel_ends_a_query_never_read(tmp_path: Path) -> None:
    env = _fake_tmux(tmp_path / "bin", "exec sleep 30")
    query = TmuxQuery.start(env)
    assert query is not None
    query.cancel()
    assert _gone(query._pid)
    query.cancel()  # again: nothing
    assert query.result() is None


def test_tmux_missing_from_path_gives_no_query(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    env = dict(os.environ, PATH=str(tmp_path / "empty"), TMUX="/tmp/x,1,0")
    assert TmuxQuery.start(env) is None


def test_a_real_server_names_its_session(tmux: str) -> None:
    base = ["tmux", "-L", tmux, "-f", "/dev/null"]
    subprocess.run([*base, "new-session", "-d", "-s", "named-here", "sleep 60"], check=True,
                   timeout=15)
    socket = subprocess.run([*base, "display-message", "-p", "#{socket_path}"], check=True,
                            capture_output=True, text=True, timeout=15).stdout.strip()
    pane = subprocess.run([*base, "display-message", "-p", "#{pane_id}"], check=True,
                          capture_output=True, text=True, timeout=15).stdout.strip()
    env = dict(os.environ, TMUX=f"{socket},1,0", TMUX_PANE=pane)
    query = TmuxQuery.start(env)
    assert query is not None
    assert query.result() == "named-here" == tmux_session_name(env)
