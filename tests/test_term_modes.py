"""A full-screen child that dies leaves the terminal usable (issue 13 item 12):
`claudewrap run` in a real pty and in real tmux, and claudewrap.wrap.term_modes over
every way a read can cut the child's output."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CW, read_all, require, spawn

from claudewrap.wrap.term_modes import TermModes

# What a full-screen program switches on, as curses/Ink/vim write it.
SWITCH_ON = (b"\x1b[?1049h\x1b[?25l\x1b[?1000h\x1b[?1002h\x1b[?1003h\x1b[?1006h\x1b[?1015h"
             b"\x1b[?2004h\x1b[?1h\x1b=\x1b[?1004h")
SWITCH_OFF = (b"\x1b[?1004l\x1b[?1l\x1b>\x1b[?2004l\x1b[?1015l\x1b[?1006l\x1b[?1003l"
              b"\x1b[?1002l\x1b[?1000l\x1b[?25h\x1b[?1049l")
# Each reset the wrapper must write after a child that left everything on.
RESETS = [b"\x1b[?1000l", b"\x1b[?1002l", b"\x1b[?1003l", b"\x1b[?1006l", b"\x1b[?1015l",
          b"\x1b[?2004l", b"\x1b[?1004l", b"\x1b[?1l", b"\x1b>", b"\x1b[?1049l", b"\x1b[?25h"]

# The child: switch the modes on (a byte at a time, so reads cut the sequences),
# draw, then die as SIGKILL leaves things, or switch them off and exit.
CHILD = """
import os, signal, sys, time
on, off, how = {on!r}, {off!r}, sys.argv[1]
for i in range(len(on)):
    os.write(1, on[i:i + 1])
    if i % 7 == 0:
        time.sleep(0.002)
os.write(1, b"FULL SCREEN\\n")
time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0.1)
if how == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
if how == "clean":
    os.write(1, off)
os.write(1, b"BYE\\n")
"""


def child_script(tmp_path: Path) -> Path:
    path = tmp_path / "fullscreen.py"
    path.write_text(CHILD.format(on=SWITCH_ON, off=SWITCH_OFF))
    return path


def wrapped(env: dict[str, str], script: Path, *args: str) -> tuple[bytes, int | None, int | None]:
    """(what the terminal got, exit status, signal) of the script run through the wrapper."""
    env = dict(env, CLAUDEWRAP_CLAUDE=sys.executable)
    child = spawn([*CW, "run", "--", str(script), *args], env)
    out = read_all(child)
    return out, child.exitstatus, child.signalstatus


# ------------------------------------------------------------------ in a real pty


def test_a_killed_full_screen_child_gets_its_modes_switched_back(env: dict[str, str],
                                                                tmp_path: Path) -> None:
    out, status, _ = wrapped(env, child_script(tmp_path), "kill")
    assert status == 128 + 9
    before, _, after = out.partition(b"FULL SCREEN\r\n")
    assert before.endswith(SWITCH_ON)
    for reset in RESETS:
        assert after.count(reset) == 1, (reset, after)
    # out of the alternate screen before the cursor is shown; the mouse off before both
    assert after.index(b"\x1b[?1000l") < after.index(b"\x1b[?1049l") < after.index(b"\x1b[?25h")
    assert b"BYE" not in after


def test_a_child_that_switches_everything_back_gets_nothing_extra(env: dict[str, str],
                                                                  tmp_path: Path) -> None:
    script = child_script(tmp_path)
    direct = read_all(spawn([sys.executable, str(script), "clean"], env))
    out, status, _ = wrapped(env, script, "clean")
    assert status == 0
    assert out == direct
    assert out.endswith(SWITCH_OFF + b"BYE\r\n")


def test_modes_left_on_at_a_normal_exit_are_switched_back_too(env: dict[str, str],
                                                              tmp_path: Path) -> None:
    out, status, _ = wrapped(env, child_script(tmp_path), "leave")
    assert status == 0
    after = out.partition(b"BYE\r\n")[2]
    assert all(reset in after for reset in RESETS), after


def test_output_that_is_not_a_terminal_gets_nothing_added(env: dict[str, str],
                                                          tmp_path: Path) -> None:
    script = child_script(tmp_path)
    direct = subprocess.run([sys.executable, str(script), "leave"], env=env,
                            capture_output=True, timeout=30, check=False).stdout
    done = subprocess.run([*CW, "run", "--", str(script), "leave"],
                          env=dict(env, CLAUDEWRAP_CLAUDE=sys.executable),
                          capture_output=True, timeout=30, check=False)
    assert done.returncode == 0
    assert done.stdout == direct


# ------------------------------------------------------------------ in real tmux


def test_in_tmux_a_killed_child_leaves_the_normal_screen_and_no_mouse(
        env: dict[str, str], tmux: str, tmp_path: Path) -> None:
    """tmux follows the modes itself: the pane's flags say what the shell gets.
    The same child run without the wrapper leaves them on (the test can fail)."""
    require("tmux")
    script = child_script(tmp_path)
    env = dict(env, TERM="tmux-256color", CLAUDEWRAP_CLAUDE=sys.executable)
    base = ["tmux", "-L", tmux, "-f", "/dev/null"]
    subprocess.run([*base, "new-session", "-d", "-x", "80", "-y", "24", "-s", "t",
                    "PS1='READY> ' exec bash --norc --noprofile"], env=env, check=True, timeout=10)

    def tmux_out(*args: str) -> str:
        return subprocess.run([*base, *args], env=env, capture_output=True, text=True,
                              timeout=10, check=False).stdout

    def flags() -> str:
        return tmux_out("display", "-p", "-t", "t",
                        "#{alternate_on} #{mouse_any_flag} #{cursor_flag} #{keypad_flag}"
                        " #{keypad_cursor_flag}").strip()

    def until(check: object, what: str) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if check():  # type: ignore[operator]
                return
            time.sleep(0.05)
        raise AssertionError(f"{what}: flags {flags()!r}, screen:\n{tmux_out('capture-pane', '-p', '-t', 't')}")

    until(lambda: "READY>" in tmux_out("capture-pane", "-p", "-t", "t"), "no prompt")
    subprocess.run([*base, "send-keys", "-t", "t", "echo BEFORE-THE-CHILD", "Enter"],
                   env=env, check=True, timeout=10)
    results = {}
    for name, command in (("bare", f"{sys.executable} {script} kill 1.0"),
                          ("wrapped", f"{' '.join(CW)} run -- {script} kill 1.0")):
        subprocess.run([*base, "send-keys", "-t", "t", command, "Enter"], env=env, check=True,
                       timeout=10)
        until(lambda: flags().startswith("1 1"), f"{name}: the child's modes never came on")
        until(lambda: tmux_out("capture-pane", "-p", "-t", "t").rstrip().endswith("READY>"),
              f"{name}: no prompt after the child")
        results[name] = flags()
        if name == "bare":  # what the user would have to type without the wrapper
            subprocess.run([*base, "send-keys", "-t", "t", "-l",
                            "printf '" + SWITCH_OFF.decode().replace("\x1b", "\\033") + "'"],
                           env=env, check=True, timeout=10)
            subprocess.run([*base, "send-keys", "-t", "t", "Enter"], env=env, check=True,
                           timeout=10)
            until(lambda: flags() == "0 0 1 0 0", "printf did not reset the modes")
    assert results["bare"] == "1 1 0 1 1"
    assert results["wrapped"] == "0 0 1 0 0"
    screen = tmux_out("capture-pane", "-p", "-t", "t")
    assert "BEFORE-THE-CHILD" in screen  # the normal screen is back, with its history


# ------------------------------------------------------------------ the tracker itself


def feed_in_pieces(stream: bytes, cuts: list[int]) -> TermModes:
    modes = TermModes()
    start = 0
    for cut in [*cuts, len(stream)]:
        modes.feed(stream[start:cut])
        start = cut
    return modes


@pytest.mark.parametrize("prefix", [b"", b"text \x1b[1;31mred\x1b[0m? what?" * 3,
                                    b"x = 1 > 0? " * 20])
def test_modes_are_followed_wherever_a_read_cuts_the_output(prefix: bytes) -> None:
    stream = prefix + SWITCH_ON + b"drawing \x1b[2J\x1b[H? = > ok"
    whole = TermModes()
    whole.feed(stream)
    expected = whole.resets()
    assert all(reset in expected for reset in RESETS)
    for cut in range(len(stream) + 1):
        assert feed_in_pieces(stream, [cut]).resets() == expected, cut
    for a in range(len(prefix), len(stream) + 1):  # two cuts inside the switches
        for b in range(a, min(a + 12, len(stream) + 1)):
            assert feed_in_pieces(stream, [a, b]).resets() == expected, (a, b)
    # byte by byte
    assert feed_in_pieces(stream, list(range(1, len(stream)))).resets() == expected
    # everything switched off again, cut anywhere: nothing to write
    done = stream + b"more \x1b[1m?" + SWITCH_OFF
    for cut in range(len(done) + 1):
        assert feed_in_pieces(done, [cut]).resets() == b"", cut


def test_the_last_switch_of_each_mode_wins() -> None:
    modes = TermModes()
    modes.feed(b"\x1b[?1049h\x1b[?1049l\x1b[?2004l\x1b[?25h\x1b>")
    assert modes.resets() == b""  # switched off, or never on: nothing to do
    modes.feed(b"\x1b=\x1b>\x1b=")
    assert modes.resets() == b"\x1b>"
    modes.feed(b"\x1b[?1000;1006h\x1b[?1000l")  # several modes in one sequence
    assert modes.resets() == b"\x1b[?1006l\x1b>"
    modes.feed(b"\x1b[?47h\x1b[?1047h\x1b[?1049h")
    assert modes.resets() == b"\x1b[?1006l\x1b>\x1b[?1049l\x1b[?1047l\x1b[?47l"


def test_lookalikes_are_not_mode_switches() -> None:
    modes = TermModes()
    modes.feed(b"[?1049h ?25l \x1b[1049h \x1b[?2026h \x1b[?1049$p \x1b[?99999999999h"
               b" \x1b[?" + b"1" * 40 + b"h a = b > c x\x1b =")
    assert modes.resets() == b""
    modes.feed(b"\x1b[?1049")  # cut, then never finished
    modes.feed(b"X")
    assert modes.resets() == b""
