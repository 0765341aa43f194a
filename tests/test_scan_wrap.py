"""A /cost row wider than the terminal: each model keeps its own numbers and cost.

Two ways a row ends up on two lines: the terminal wraps it (a scrollback
shows it split: GNU screen's hardcopy, tmux without -J), or Claude Code wraps
it itself in a narrow terminal (the bytes hold two lines). Both are driven
for real here: screen and tmux windows 80 and 60 columns wide read by
`claudewrap scan`, the real Claude Code CLI through `claudewrap run`, and its
captured bytes (tests/captures/).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pexpect
import pytest
from claude_code import READY, claude_cli  # noqa: F401 - a fixture
from conftest import CW, cw, read_all, spawn, wait_until
from fake_api import FakeAnthropic, Usage
from test_claude_code import COUNTERS, REPLY, drawn, make_setup, records, wait_for, words
from test_multiplexers import Tmux, journal, menv, screen_env  # noqa: F401 - fixtures

from claudewrap.parse.patterns import Matcher
from claudewrap.parse.scanner import Scanner
from claudewrap.sources.scan import find_events, unwrap
from claudewrap.store.records import UsageEvent

CAPTURES = Path(__file__).resolve().parent / "captures"

# The 2.1.x block with two models, names right-aligned as Claude Code pads them:
# each row is ~90 columns, so it wraps at 80 (mid-word) and at 60 (at a space).
BLOCK = (
    "Total cost:            $3.17\n"
    "Total duration (API):  6m 20s\n"
    "Total duration (wall): 6h 33m 10s\n"
    "Total code changes:    0 lines added, 0 lines removed\n"
    "Usage by model:\n"
    "    claude-haiku-4-5:  12.3k input, 1.5k output, 100.2k cache read, 5.1k cache write"
    " ($0.0421)\n"
    "   claude-sonnet-4-6:  1.2k input, 5.3k output, 940.0k cache read, 50.0k cache write"
    " ($3.13)\n"
)
SHOWN = {
    "claude-haiku-4-5": (12300, 1500, 100200, 5100, 0.0421),
    "claude-sonnet-4-6": (1200, 5300, 940000, 50000, 3.13),
}
# What tests/captures/claude-code-2.1.197/cost-*cols.raw show.
CC_SHOWN = {
    "claude-haiku-4-5": (246900, 113600, 17800000, 469100, 3.18),
    "claude-opus-4-8": (246900, 113600, 17800000, 469100, 15.91),
}


def shown(found: list[UsageEvent] | list[dict[str, object]]) -> dict[object, tuple[object, ...]]:
    """model -> (input, output, cache read, cache write, cost) of events or journal records."""
    out = {}
    for e in found:
        d = e if isinstance(e, dict) else e.__dict__
        out[d["model"]] = (d["input_tokens"], d["output_tokens"], d["cache_read_tokens"],
                           d["cache_write_tokens"], d["cost_usd"])
    return out


def parsed(data: bytes, step: int = 0) -> list[UsageEvent]:
    """What the wrapper's parser finds in ``data``, fed whole or ``step`` bytes at a time."""
    scanner, matcher = Scanner(), Matcher()
    found: list[UsageEvent] = []
    for k in range(0, len(data), step or len(data)):
        found += matcher.feed(scanner.feed(data[k:k + (step or len(data))]))
    return found + matcher.feed(scanner.flush()) + matcher.flush()


# ------------------------------------------------------------------ the parser


@pytest.mark.parametrize("cols", [80, 60])
def test_row_claude_code_wrapped_in_a_narrow_terminal_keeps_its_model_and_cost(cols: int) -> None:
    data = (CAPTURES / "claude-code-2.1.197" / f"cost-{cols}cols.raw").read_bytes()
    for step in (0, 1, 7, 64):  # the chunking of the pty must not matter
        assert shown(parsed(data, step)) == CC_SHOWN, step


@pytest.mark.parametrize("cols", [80, 60])
def test_block_drawn_over_the_command_menu_puts_nothing_on_a_wrong_model(cols: int) -> None:
    """Only the cells that changed are redrawn: "laude-haiku-4-5: 246.9k inp t",
    "($15.9 )". No row reads whole, so only the block's cost is recorded."""
    data = (CAPTURES / "claude-code-2.1.197" / f"cost-{cols}cols-over-menu.raw").read_bytes()
    assert shown(parsed(data)) == {None: (0, 0, 0, 0, 19.09)}


def test_prompt_cache_row_wrapped_by_claude_code_2_1_332_leaves_the_model_row_alone() -> None:
    data = (CAPTURES / "claude-code-2.1.332" / "cost-120cols.raw").read_bytes()
    assert shown(parsed(data)) == {"claude-opus-5-5": (8100, 12000, 126500, 8300, 0.3392)}


# A screen hardcopy of BLOCK as screen wrote it (trailing spaces dropped).
HARDCOPY_80 = (
    "PROMPT> cat cost.txt\n"
    "Usage by model:\n"
    "    claude-haiku-4-5:  12.3k input, 1.5k output, 100.2k cache read, 5.1k cache w\n"
    "rite ($0.0421)\n"
    "   claude-sonnet-4-6:  1.2k input, 5.3k output, 940.0k cache read, 50.0k cache w\n"
    "rite ($3.13)\n"
    "PROMPT>\n"
)
HARDCOPY_60 = (
    "Usage by model:\n"
    "    claude-haiku-4-5:  12.3k input, 1.5k output, 100.2k cach\n"
    "e read, 5.1k cache write ($0.0421)\n"
    "   claude-sonnet-4-6:  1.2k input, 5.3k output, 940.0k cache\n"
    " read, 50.0k cache write ($3.13)\n"
)


def test_unwrap_joins_each_line_that_fills_the_window_to_the_next() -> None:
    joined = unwrap(HARDCOPY_80.encode(), 80).decode()
    assert joined.splitlines() == [
        "PROMPT> cat cost.txt", "Usage by model:",
        BLOCK.splitlines()[5], BLOCK.splitlines()[6], "PROMPT>"]
    assert unwrap(HARDCOPY_60.encode(), 60).decode().splitlines()[1:] == BLOCK.splitlines()[5:]
    # At another width nothing is joined.
    assert unwrap(HARDCOPY_60.encode(), 61) == HARDCOPY_60.encode()


def test_unwrap_counts_wide_characters_as_two_columns() -> None:
    wide = "費用" * 20  # 40 characters, 80 columns
    assert unwrap(f"{wide}\n続き\nnext\n".encode(), 80).decode() == f"{wide}続き\nnext\n"
    assert unwrap(f"{wide}\nnext\n".encode(), 40).decode() == f"{wide}\nnext\n"


@pytest.mark.parametrize("hardcopy", [HARDCOPY_80, HARDCOPY_60])
def test_rows_split_by_the_terminal_read_whole_without_unwrapping(hardcopy: str) -> None:
    """What tmux shows without -J (or screen when its width is unknown): the
    parser joins a row cut mid-word ("cache w" "rite") or at a space."""
    screen = hardcopy.replace("PROMPT> cat cost.txt\n", "Total cost: $3.17\n")
    if not screen.startswith("Total"):
        screen = "Total cost: $3.17\n" + screen
    found = [e for _, e in find_events(screen.encode())]
    assert shown(found) == SHOWN


def test_a_row_exactly_as_wide_as_the_window_is_not_joined_with_the_next_row() -> None:
    rows = BLOCK.splitlines()[5:]
    width = len(rows[0])  # the haiku row fills the window: screen cannot tell it ended
    hardcopy = "Total cost: $3.17\nUsage by model:\n" + "\n".join(rows) + "\n(after)\n"
    joined = unwrap(hardcopy.encode(), width)
    assert rows[0] + rows[1] in joined.decode()
    assert shown([e for _, e in find_events(joined)]) == SHOWN


def test_a_lone_row_cut_short_does_not_take_the_blocks_cost() -> None:
    """The rest of the row (and the next row) never came: the block's cost is
    not put on the one model that was read."""
    data = (b"Total cost: $3.17\r\nUsage by model:\r\n"
            b"    claude-haiku-4-5:  12.3k input, 1.5k output, 100.2k cache read,\r\n"
            b"$ next\r\n")
    assert shown(parsed(data)) == {None: (0, 0, 0, 0, 3.17)}


# ------------------------------------------------------------------ scan, for real


@contextmanager
def screen_window(env: dict[str, str], name: str, cols: int) -> Iterator[pexpect.spawn]:
    """A GNU screen session attached in a real pty ``cols`` wide (its window is
    as wide), running an interactive bash; quit afterwards."""
    child = spawn(["screen", "-S", name, "bash", "--noprofile", "--rcfile", env["RC"], "-i"],
                  env, rows=24, cols=cols)
    try:
        child.expect("PROMPT> ")
        yield child
    finally:
        subprocess.run(["screen", "-S", name, "-X", "quit"], env=env, capture_output=True,
                       timeout=15, check=False)
        child.close(force=True)


def screen_type(env: dict[str, str], child: pexpect.spawn, name: str, line: str) -> None:
    """Type ``line`` in the window and wait until it ran (screen substitutes
    $VARS in what it stuffs: type none)."""
    mark = f"DONE{os.urandom(3).hex()}"
    subprocess.run(["screen", "-S", name, "-p", "0", "-X", "stuff",
                    f"{line}; echo {mark[:4]}''{mark[4:]}\n"], env=env, check=True, timeout=15)
    child.expect_exact(mark)  # also drains the pty: screen blocks on a full one


def printed_blocks(tmp_path: Path, cols: int) -> list[tuple[Path, dict[str, tuple[object, ...]]]]:
    """What each window prints, and the usage it shows: BLOCK as plain text,
    Claude Code's own narrow rendering of its panel, and a `claude -p
    --output-format json` result (one line of 1.7k characters)."""
    block = tmp_path / "cost.txt"
    block.write_text(BLOCK)
    return [(block, SHOWN), (CAPTURES / "claude-code-2.1.197" / f"cost-{cols}cols.raw", CC_SHOWN),
            (CAPTURES / "claude-code-2.1.332" / "p_json_result.json",
             {"claude-opus-5-5": (1234, 567, 8901, 2345, 0.029781199999999997)})]


@pytest.mark.parametrize("cols", [80, 60])
def test_screen_scan_keeps_each_models_numbers_when_rows_wrap(
        screen_env: dict[str, str], tmp_path: Path, cols: int) -> None:  # noqa: F811
    env = screen_env
    for n, (path, rows) in enumerate(printed_blocks(tmp_path, cols)):
        name = f"cww{os.getpid()}x{cols}x{n}"
        # A short relative name: the command line the shell echoes has the same
        # length wherever the checkout is (a line exactly as wide as the window
        # reads as wrapped in a screen hardcopy).
        shutil.copyfile(path, Path(env["PROJ"]) / f"p{n}")
        with screen_window(env, name, cols) as child:
            screen_type(env, child, name, f"command claude file p{n}")
            copy = tmp_path / f"hardcopy{n}.txt"
            subprocess.run(["screen", "-S", name, "-p", "0", "-X", "hardcopy", "-h", str(copy)],
                           env=env, check=True, timeout=15)
            wait_until(lambda c=copy: c.exists() and c.read_bytes().endswith(b"\n"),
                       "the hardcopy")
            lines = copy.read_text(encoding="utf-8").splitlines()
            if n == 0:  # the terminal did wrap the rows
                assert any(len(line) == cols for line in lines), lines
                assert not any(line.endswith("($3.13)") and "sonnet" in line for line in lines)
            Path(env["CLAUDEWRAP_JOURNAL"]).unlink(missing_ok=True)
            done = cw(["scan", "--screen", name], env)
            assert done.returncode == 0, done.stderr
            recs = journal(env)
            assert len(recs) == len(rows) and shown(recs) == rows, (path.name, lines)


@pytest.mark.parametrize("cols", [80, 60])
def test_tmux_scan_keeps_each_models_numbers_when_rows_wrap(
        menv: dict[str, str], tmux: str, tmp_path: Path, cols: int) -> None:  # noqa: F811
    t = Tmux(tmux, menv)
    outside = {k: v for k, v in menv.items() if not k.startswith("TMUX")}
    previous = None
    for n, (path, rows) in enumerate(printed_blocks(tmp_path, cols)):
        session = f"w{cols}x{n}"
        t("new-session", "-d", "-s", session, "-x", str(cols), "-y", "24",
          f"bash --noprofile --rcfile {menv['RC']} -i")
        if previous:  # only now: killing a server's last session ends the server, and a
            # client that reaches it while it goes away fails "server exited unexpectedly"
            t("kill-session", "-t", previous)
        previous = session
        pane = t("display-message", "-p", "-t", session, "#{pane_id} #{pane_width}").split()
        assert pane[1] == str(cols)
        wait_for(lambda p=pane[0]: "PROMPT> " in t.screen(p))
        shutil.copyfile(path, Path(menv["PROJ"]) / f"p{n}")  # as in the screen test
        t.type(pane[0], f"command claude file p{n}; echo END")
        wait_for(lambda p=pane[0]: "\nEND\n" in t.screen(p))
        if n == 0:  # the terminal did wrap the rows
            plain = t("capture-pane", "-p", "-S", "-", "-t", pane[0]).splitlines()
            assert not any(line.endswith("($3.13)") and "sonnet" in line for line in plain)
        Path(menv["CLAUDEWRAP_JOURNAL"]).unlink(missing_ok=True)
        done = cw(["scan", "--pane", pane[0], "--socket", tmux], outside)
        assert done.returncode == 0, done.stderr
        recs = journal(menv)
        assert len(recs) == len(rows) and shown(recs) == rows, path.name


# ------------------------------------------------------------------ the live wrapper


@pytest.mark.parametrize("cols", [80, 60])
def test_wrapper_records_each_model_of_a_block_claude_code_wrapped(
        env: dict[str, str], tmp_path: Path, cols: int) -> None:
    """`claudewrap run` in a narrow pty, relaying Claude Code's real bytes."""
    capture = CAPTURES / "claude-code-2.1.197" / f"cost-{cols}cols.raw"
    child = spawn([*CW, "run", "file", str(capture)], env, cols=cols)
    read_all(child)
    assert child.exitstatus == 0
    recs = journal(env)
    assert len(recs) == 2 and {r["source"] for r in recs} == {"pty"}
    assert shown(recs) == CC_SHOWN


@pytest.mark.parametrize("cols", [80, 60])
def test_real_claude_code_in_a_narrow_terminal_records_each_models_cost_block_row(
        env: dict[str, str], tmp_path: Path, cols: int, claude_cli: Path) -> None:  # noqa: F811
    """Two prompts (two models: the prompts' and the title request's), then
    `/cost`: each row is wider than the terminal and Claude Code wraps it."""
    api = FakeAnthropic(usage=Usage(2345, 1234, 17890, 4567, text=REPLY)).start()
    try:
        s = make_setup(env, tmp_path, api, claude_cli)
        child = pexpect.spawn(CW[0], [*CW[1:], "run"], env=s.env, cwd=str(s.work),
                              dimensions=(40, cols), timeout=20)
        try:
            child.expect(READY)
            for n, prompt in enumerate(("first question", "second question"), 1):
                child.send(prompt)
                # Enter only once the prompt is on screen: on a loaded CI machine
                # Claude Code had not taken the typed text yet and the Enter was
                # lost (no answer in 20 s).
                child.expect(drawn(prompt))
                time.sleep(0.3)
                child.send("\r")
                child.expect(drawn(REPLY))
                wait_for(lambda n=n: len(api.answers) >= n)
                time.sleep(0.5)
            # In one write: typed key by key, the panel is drawn over the
            # command menu (see test_block_drawn_over_the_command_menu...).
            child.send("/cost\r")
            child.expect([words("Esc", "to", "cancel"), words("Esc", "to", "close")])
            time.sleep(0.6)  # idle: the wrapper parses what it batched
            child.send("\x1b")
            time.sleep(0.5)
            child.send("/exit\r")
            child.expect(pexpect.EOF, timeout=20)
        finally:
            child.close(force=True)
    finally:
        api.stop()
    newest = {r.model: r for r in records(s, "pty") if r.kind == "total"}
    exact = {re.sub(r"-\d{8}$", "", m): v for m, v in api.totals().items()}
    assert set(newest) == set(exact), newest
    costs: dict[str, float] = {}
    for r in records(s, "otel"):
        model = re.sub(r"-\d{8}$", "", r.model or "")
        costs[model] = costs.get(model, 0.0) + (r.cost_usd or 0.0)
    for model, row in newest.items():
        for c in COUNTERS:  # /cost rounds to 0.1k
            assert abs(getattr(row, c) - exact[model][c]) <= 50, (model, c)
        assert row.cost_usd == pytest.approx(costs[model], abs=0.00005), model
