"""The launch path stays light: what `claudewrap run -- ARGS` (the shell's
`claude`) loads before and after the child, and how its fast entry behaves.

Start-up time itself is measured by bench/passthrough.py, not here; these
tests pin the structure that keeps it low, so a stray import fails loudly.
"""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import cw, read_all, spawn

# Loaded only when there is output to parse, a record to write, a report to
# make, or a command other than `run --`.
HEAVY = ("click", "dataclasses", "typing", "inspect", "claudewrap.store.records",
         "claudewrap.store.journal", "claudewrap.parse.patterns", "claudewrap.parse.scanner",
         "claudewrap.usage.report", "claudewrap.sources.transcripts", "claudewrap.api", "http.server")

# Modules the interpreter had before claudewrap (site's .pth files may load
# typing, say) are not claudewrap's doing.
# A run ends with os._exit (main.exit_now), past atexit: report from there.
DRIVER = """
import os, sys
heavy = [m for m in {heavy!r} if m not in sys.modules]
real_exit = os._exit
wrapper = os.getpid()  # not the pty's session leader, a fork of it
def report_and_exit(status):
    if os.getpid() == wrapper:
        os.write(2, ("LOADED[" + ",".join(m for m in heavy if m in sys.modules) + "]\\n").encode())
    real_exit(status)
os._exit = report_and_exit
from claudewrap.main import main
main()
"""


def _driver(tmp_path: Path) -> Path:
    path = tmp_path / "driver.py"
    path.write_text(DRIVER.format(heavy=HEAVY))
    return path


def test_a_trivial_run_loads_nothing_heavy(env: dict[str, str], tmp_path: Path) -> None:
    """`true` in a real pty: no output, nothing recorded, so no parser, journal,
    click or dataclasses were needed, before the child or after it."""
    env = dict(env, CLAUDEWRAP_CLAUDE="/bin/true")
    child = spawn([sys.executable, str(_driver(tmp_path)), "run", "--"], env)
    out = read_all(child)
    assert child.exitstatus == 0, out
    assert b"LOADED[]" in out, out


def test_a_run_that_prints_usage_loads_the_parser(env: dict[str, str],
                                                  tmp_path: Path) -> None:
    """The other side of the test above: with usage on screen the parser and
    the journal do load (after the output was shown) and the record is written."""
    child = spawn([sys.executable, str(_driver(tmp_path)), "run", "--", "print",
                   "Tokens: 12 input, 34 output"],
                  env)
    out = read_all(child)
    assert child.exitstatus == 0, out
    loaded = out.split(b"LOADED[")[1].split(b"]")[0].decode().split(",")
    assert {"claudewrap.parse.patterns", "claudewrap.store.journal", "claudewrap.store.records"} <= set(loaded)
    assert "click" not in loaded
    assert Path(env["CLAUDEWRAP_JOURNAL"]).read_text().count("\n") == 1


def test_run_without_options_reports_a_bad_config_like_click(env: dict[str, str],
                                                            tmp_path: Path) -> None:
    """The fast entry says a bad config as the click command does: the same one
    line, exit status 2, and claude never starts."""
    config = tmp_path / "bad.toml"
    config.write_text('[[patterns]]\nname = "x"\nregex = "(?P<input>[0-9]+"\n')
    marker = tmp_path / "ran"
    env = dict(env, CLAUDEWRAP_CONFIG=str(config), FAKE_ARGS_FILE=str(marker))
    fast = cw(["run", "--", "argsfile"], env)
    slow = cw(["run", "--no-otel", "--", "argsfile"], env)
    assert fast.returncode == slow.returncode == 2
    assert "bad regex" in fast.stderr and fast.stderr.startswith(f"claudewrap: {config}: line 1:")
    assert fast.stderr.count("\n") == 1
    assert fast.stderr == slow.stderr
    assert not marker.exists()


def test_run_help_and_options_still_go_through_click(env: dict[str, str]) -> None:
    done = cw(["run", "--help"], env)
    assert done.returncode == 0 and "--no-otel" in done.stdout
    # After `--`, --help is claude's (the fake prints its arguments).
    done = cw(["run", "--", "args", "--help"], env)
    assert done.returncode == 0 and done.stdout.strip() == '["--help"]'
