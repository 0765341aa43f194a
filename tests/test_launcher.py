"""The launcher, driven as a user drives it: `claudewrap run` in a real pty."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest
from conftest import CW, FAKE, read_all, require, spawn


def run_cw(args: list[str], env: dict[str, str], **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CW, "run", *args], env=env, timeout=60, **kw, check=False)  # type: ignore[call-overload]


# -------------------------------------------------------------------- output


def test_pty_output_is_byte_identical_to_running_claude_directly(env: dict[str, str]) -> None:
    args = ["ansi", str(3_000_000), "7"]
    direct = read_all(spawn([str(FAKE), *args], env))
    wrapped = read_all(spawn([*CW, "run", "--", *args], env))
    assert len(direct) > 3_000_000  # ONLCR adds CRs: the same for both
    assert wrapped == direct


def test_pipe_mode_output_is_byte_exact_and_child_sees_no_tty(env: dict[str, str]) -> None:
    direct = subprocess.run([str(FAKE), "ansi", "2000000", "3"], env=env,
                            stdout=subprocess.PIPE, timeout=60, check=False).stdout
    wrapped = run_cw(["--", "ansi", "2000000", "3"], env, stdout=subprocess.PIPE)
    assert wrapped.returncode == 0
    assert wrapped.stdout == direct
    assert len(direct) == 2_000_000
    seen = run_cw(["--", "isatty"], env, stdin=subprocess.DEVNULL,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert json.loads(seen.stdout) == [False, False, False]
    assert seen.stderr == b"to-stderr\n"  # stderr left alone


def test_stdin_pipe_reaches_child_unchanged(env: dict[str, str]) -> None:
    data = bytes(range(256)) * 4000
    done = run_cw(["--", "cat"], env, input=data, stdout=subprocess.PIPE)
    assert done.returncode == 0
    assert done.stdout == data


def test_piped_stdin_with_terminal_stdout_gives_child_a_terminal_stdout(
        env: dict[str, str], tmp_path: Path) -> None:
    err = tmp_path / "err.txt"
    child = spawn(["/bin/sh", "-c",
                   f"echo hi | {' '.join(CW)} run -- isatty 2>{err}; echo rc=$?"], env)
    out = read_all(child).decode()
    assert '[false, true, false]' in out
    assert "rc=0" in out
    assert err.read_bytes() == b"to-stderr\n"


def test_pty_mode_child_sees_terminals_and_stderr_redirect_is_kept(
        env: dict[str, str], tmp_path: Path) -> None:
    err = tmp_path / "err.txt"
    child = spawn(["/bin/sh", "-c", f"{' '.join(CW)} run -- isatty 2>{err}; echo rc=$?"], env)
    out = read_all(child).decode()
    assert "[true, true, false]" in out
    assert err.read_bytes() == b"to-stderr\n"
    child = spawn([*CW, "run", "--", "isatty"], env)
    out = read_all(child).decode()
    assert "[true, true, true]" in out and "to-stderr" in out


# -------------------------------------------------------------------- input


def test_keystrokes_reach_child_as_bytes(env: dict[str, str]) -> None:
    child = spawn([*CW, "run", "--", "keys"], env)
    child.expect("READY")
    for key in (b"a", b"\x03", b"\x1a", b"\x04", b"\x1b[A", "\u00e9".encode(), b"\x7f"):
        child.send(key)
        child.expect(f"GOT {key.hex()}\r\n")
    child.send(b"q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_large_paste_does_not_block_output(env: dict[str, str]) -> None:
    child = spawn([*CW, "run", "--", "keys"], env)
    child.expect("READY")
    paste = b"x" * 200_000
    # Write from a thread while this one reads: the wrapper must keep both
    # directions moving even when the terminal's input and output are full.
    import threading
    writer = threading.Thread(target=child.send, args=(paste,), daemon=True)
    writer.start()
    got = 0
    deadline = time.monotonic() + 30
    while got < len(paste) and time.monotonic() < deadline:
        child.expect(r"GOT ((?:78)+)\r\n")
        got += len(child.match.group(1)) // 2
    assert got == len(paste)
    writer.join(5)
    child.send(b"q")
    child.expect(pexpect.EOF)


def test_window_size_at_start_and_after_resize(env: dict[str, str]) -> None:
    child = spawn([*CW, "run", "--", "winsize"], env, rows=33, cols=101)
    child.expect(r"SIZE 33x101")
    child.setwinsize(40, 132)
    child.expect(r"SIZE 40x132")
    child.setwinsize(10, 20)
    child.expect(r"SIZE 10x20")
    child.sendline("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


# -------------------------------------------------------------------- status


@pytest.mark.parametrize("code", [0, 1, 2, 255])
def test_exit_code_is_claudes(env: dict[str, str], code: int) -> None:
    child = spawn([*CW, "run", "--", "exit", str(code)], env)
    read_all(child)
    assert child.exitstatus == code
    assert run_cw(["--", "exit", str(code)], env, stdout=subprocess.DEVNULL).returncode == code


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL", "SIGINT"])
def test_child_killed_by_signal_gives_128_plus_n(env: dict[str, str], sig: str) -> None:
    expected = 128 + getattr(signal, sig)
    child = spawn([*CW, "run", "--", "kill", sig], env)
    read_all(child)
    assert child.exitstatus == expected
    assert run_cw(["--", "kill", sig], env, stdout=subprocess.DEVNULL).returncode == expected


def test_missing_claude_says_so_and_exits_127(env: dict[str, str]) -> None:
    env = dict(env, PATH="/usr/bin:/bin")
    done = run_cw(["--", "hi"], env, capture_output=True)
    assert done.returncode == 127
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert "cannot find the real `claude`" in lines[0] and "--claude" in lines[0]
    done = run_cw(["--claude", "/nonexistent/claude", "--", "hi"], env, capture_output=True)
    assert done.returncode == 127
    assert done.stderr.decode().strip() == "claudewrap: --claude /nonexistent/claude: no such file"
    done = run_cw(["--", "x"], dict(env, CLAUDEWRAP_CLAUDE="/nope"), capture_output=True)
    assert done.returncode == 127 and "$CLAUDEWRAP_CLAUDE /nope" in done.stderr.decode()


def test_claude_option_and_env_choose_the_binary(env: dict[str, str], tmp_path: Path) -> None:
    other = tmp_path / "other-claude"
    other.write_text("#!/bin/sh\necho other \"$@\"\n")
    other.chmod(0o755)
    done = run_cw(["--claude", str(other), "--", "x"], env, capture_output=True)
    assert done.stdout == b"other x\n"
    done = run_cw(["--", "y"], dict(env, CLAUDEWRAP_CLAUDE=str(other)), capture_output=True)
    assert done.stdout == b"other y\n"


def test_arguments_reach_claude_untouched(env: dict[str, str], tmp_path: Path) -> None:
    args = ["a b", "", "--flag=x y", "-p", "$HOME", "it's \"quoted\"", "\u00fcnic\u00f8de \u2603",
            "--", "-", "*"]
    out = tmp_path / "args.json"
    done = run_cw(["--", "argsfile", *args], dict(env, FAKE_ARGS_FILE=str(out)))
    assert done.returncode == 0
    assert json.loads(out.read_text(encoding="utf-8")) == args


def test_claude_shim_calling_the_wrapper_is_skipped(env: dict[str, str], tmp_path: Path) -> None:
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    shim = shim_dir / "claude"
    shim.write_text(f"#!/bin/sh\nexec {' '.join(CW)} run -- \"$@\"\n")
    shim.chmod(0o755)
    env = dict(env, PATH=f"{shim_dir}:{env['PATH']}")
    done = subprocess.run([str(shim), "args", "z"], env=env, capture_output=True, timeout=30, check=False)
    assert done.returncode == 0
    assert json.loads(done.stdout) == ["z"]


def test_runaway_nesting_is_refused(env: dict[str, str]) -> None:
    done = run_cw(["--", "args"], dict(env, CLAUDEWRAP_DEPTH="8"), capture_output=True)
    assert done.returncode == 126
    assert "nested" in done.stderr.decode()


# -------------------------------------------------------------------- terminal state


def _bash(env: dict[str, str]) -> pexpect.spawn:
    child = spawn(["bash", "--norc", "--noprofile", "-i"], dict(env, PS1="PROMPT> "))
    child.expect("PROMPT> ")
    return child


def _stty(child: pexpect.spawn) -> str:
    child.sendline("echo STTY=$(stty -g)")
    child.expect(r"STTY=(\S+)")
    state = child.match.group(1).decode()
    child.expect("PROMPT> ")
    return state


def test_terminal_raw_while_running_and_restored_after_exit(env: dict[str, str]) -> None:
    child = _bash(env)
    before = _stty(child)
    child.sendline(f"{' '.join(CW)} run -- keys")
    child.expect("READY")
    assert _raw_now(env, child)
    child.send("q")
    child.expect("PROMPT> ")
    assert _stty(child) == before
    child.sendline("exit")
    child.expect(pexpect.EOF)


def _raw_now(env: dict[str, str], child: pexpect.spawn) -> bool:
    """Is the test's terminal raw while the wrapper runs? (ECHO off, ICANON off)."""
    import termios
    attrs = termios.tcgetattr(child.child_fd)
    return not attrs[3] & termios.ICANON and not attrs[3] & termios.ECHO


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_signal_to_wrapper_is_forwarded_and_terminal_restored(env: dict[str, str],
                                                              sig: str) -> None:
    child = _bash(env)
    before = _stty(child)
    child.sendline(f"{' '.join(CW)} run -- sleep 30")
    child.expect("SLEEPING")
    os.kill(_find_pid(r"claudewrap run -- sleep"), getattr(signal, sig))
    child.expect("PROMPT> ")
    child.sendline("echo STATUS=$?")
    child.expect(r"STATUS=(\d+)")
    assert int(child.match.group(1)) == 128 + getattr(signal, sig)
    child.expect("PROMPT> ")
    assert _stty(child) == before


def _find_pid(pattern: str) -> int:
    out = subprocess.run(["ps", "-eww", "-o", "pid=,args="], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        pid, _, args = line.strip().partition(" ")
        if re.search(pattern, args) and "python" in args and "ps -eww" not in args:
            return int(pid)
    raise AssertionError(f"no process matching {pattern!r}:\n{out}")


def test_stopped_child_stops_wrapper_and_fg_resumes(env: dict[str, str]) -> None:
    # Ctrl-Z itself reaches the child as a byte (see test_keystrokes...); when
    # the child really stops, the wrapper gives the terminal back to the shell.
    child = _bash(env)
    before = _stty(child)
    child.sendline(f"{' '.join(CW)} run -- winsize")
    child.expect(r"SIZE \d+x\d+")
    os.kill(_find_pid(r"claude winsize$"), signal.SIGSTOP)
    child.expect("Stopped")
    child.expect("PROMPT> ")
    assert _stty(child) == before
    child.sendline("fg")
    child.expect("claudewrap run")
    child.sendline("q")
    child.expect("PROMPT> ")
    child.sendline("echo STATUS=$?")
    child.expect(r"STATUS=0")


# -------------------------------------------------------------------- parser hook


def test_failing_tap_never_disturbs_the_session(env: dict[str, str]) -> None:
    code = (
        "import sys\n"
        "from claudewrap.wrap import launcher\n"
        "class Bad:\n"
        "    n = 0\n"
        "    def feed(self, chunk):\n"
        "        self.n += 1\n"
        "        raise RuntimeError('boom')\n"
        f"r = launcher.run([{str(FAKE)!r}, 'ansi', '300000', '5'], Bad())\n"
        "sys.stderr.write('TAPERR=' + str(r.tap_error) + '\\n')\n"
        "sys.exit(r.exit_status)\n"
    )
    direct = subprocess.run([str(FAKE), "ansi", "300000", "5"], env=env,
                            capture_output=True, check=False).stdout
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0
    assert done.stdout == direct
    assert b"TAPERR=RuntimeError: boom" in done.stderr


def test_tap_sees_every_byte_in_order(env: dict[str, str]) -> None:
    code = (
        "import sys, hashlib\n"
        "from claudewrap.wrap import launcher\n"
        "class Hash:\n"
        "    def __init__(self): self.h = hashlib.sha256(); self.n = 0\n"
        "    def feed(self, chunk): self.h.update(chunk); self.n += len(chunk)\n"
        "t = Hash()\n"
        f"r = launcher.run([{str(FAKE)!r}, 'ansi', '1000000', '9'], t)\n"
        "sys.stderr.write(f'TAP={t.n}:{t.h.hexdigest()}\\n')\n"
    )
    import hashlib
    direct = subprocess.run([str(FAKE), "ansi", "1000000", "9"], env=env,
                            capture_output=True, check=False).stdout
    child = spawn([sys.executable, "-c", code], env)
    out = read_all(child)
    m = re.search(rb"TAP=(\d+):([0-9a-f]+)", out)
    assert m, out[-500:]
    # In a pty the child's \n became \r\n (ONLCR), exactly what the terminal got.
    shown = direct.replace(b"\n", b"\r\n")
    assert int(m.group(1)) == len(shown)
    assert m.group(2).decode() == hashlib.sha256(shown).hexdigest()


# -------------------------------------------------------------------- tmux


def test_under_tmux_keys_resize_and_exit_status(env: dict[str, str], tmux: str,
                                                tmp_path: Path) -> None:
    status_file = tmp_path / "status"
    env = dict(env, TERM="tmux-256color")
    cmd = f"{' '.join(CW)} run -- winsize; echo $? > {status_file}; sleep 30"
    subprocess.run(["tmux", "-L", tmux, "-f", "/dev/null", "new-session", "-d", "-x", "90",
                    "-y", "30", "-s", "t", cmd], env=env, check=True, timeout=10)

    def screen() -> str:
        return subprocess.run(["tmux", "-L", tmux, "capture-pane", "-p", "-t", "t"],
                              capture_output=True, text=True, env=env, check=False).stdout

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if text in screen():
                return
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not on screen:\n{screen()}")

    wait_for("SIZE 30x90")
    subprocess.run(["tmux", "-L", tmux, "resize-window", "-t", "t", "-x", "70", "-y", "20"],
                   env=env, check=True)
    wait_for("SIZE 20x70")
    subprocess.run(["tmux", "-L", tmux, "send-keys", "-t", "t", "q", "Enter"], env=env, check=True)
    deadline = time.monotonic() + 15
    while not status_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status_file.read_text().strip() == "0"


def test_version_and_help(env: dict[str, str]) -> None:
    done = subprocess.run([*CW, "--version"], env=env, capture_output=True, text=True, check=False)
    assert re.fullmatch(r"claudewrap, version \d+\.\d+\.\d+\n", done.stdout)
    done = subprocess.run([*CW, "run", "--help"], env=env, capture_output=True, text=True, check=False)
    assert "--claude PATH" in done.stdout and "exit status" in done.stdout
    require("bash")
