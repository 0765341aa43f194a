"""The launch path stays light: what `claudewrap run -- ARGS` (the shell's
`claude`) loads before and after the child, and how its fast entry behaves.

Start-up time itself is measured by bench/passthrough.py, not here; these
tests pin the structure that keeps it low, so a stray import fails loudly.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from conftest import cw, read_all, spawn

from claudewrap.wrap.capture import PRELOAD_SECONDS

# Loaded only when there is output to parse, a record to write, a report to
# make, or a command other than `run --`.
HEAVY = ("click", "dataclasses", "typing", "inspect", "claudewrap.store.records",
         "claudewrap.store.journal", "claudewrap.parse.patterns", "claudewrap.parse.scanner",
         "claudewrap.usage.report", "claudewrap.sources.transcripts", "claudewrap.api", "http.server",
         # Each a few ms of every start (issue 14): the folders without platformdirs
         # (config.user_dir), paths as strings (pathlib pulls urllib.parse and
         # ipaddress), launcher.which and a forked child (shutil, subprocess),
         # _socket for the OTel port, the live marker without json.
         "platformdirs", "pathlib", "shutil", "subprocess", "tempfile", "contextlib",
         "socket", "json")

# Modules the interpreter had before claudewrap (site's .pth files may load
# typing, say) are not claudewrap's doing.
# A run ends with os._exit (main.exit_now), past atexit: report from there.
DRIVER = """
import os, sys, time
began = time.monotonic()
heavy = [m for m in {heavy!r} if m not in sys.modules]
real_exit = os._exit
wrapper = os.getpid()  # not the pty's session leader, a fork of it
def report_and_exit(status):
    if os.getpid() == wrapper:
        took = int((time.monotonic() - began) * 1000)
        os.write(2, ("LOADED[" + ",".join(m for m in heavy if m in sys.modules) + "]"
                     + "TOOK[%d]\\n" % took).encode())
    real_exit(status)
os._exit = report_and_exit
from claudewrap.main import main
main()
"""


def _driver(tmp_path: Path) -> Path:
    path = tmp_path / "driver.py"
    path.write_text(DRIVER.format(heavy=HEAVY))
    return path


def _plain(env: dict[str, str]) -> dict[str, str]:
    """The environment of an interpreter started with -S, its site-packages on
    PYTHONPATH, as a plain pip install runs: this machine's site .pth files
    (an editable install's finder, say) load pathlib, shutil, tempfile,
    contextlib and typing before any claudewrap code, which would hide them."""
    return dict(env, PYTHONPATH=os.pathsep.join([env["PYTHONPATH"], *site.getsitepackages()]))


def _loaded(out: bytes) -> list[str]:
    return [m for m in out.split(b"LOADED[")[1].split(b"]")[0].decode().split(",") if m]


def _took(out: bytes) -> float:
    """Seconds the wrapper ran, from the driver's start to its exit."""
    return int(out.split(b"TOOK[")[1].split(b"]")[0]) / 1000


# What a run loads while claude runs, once it has run for PRELOAD_SECONDS
# (capture.preload: the parser, the transcript reader; the OpenTelemetry HTTP
# server): ready before it exits, off the time after it (issue 14 item 3).
PRELOADED = {"dataclasses", "typing", "inspect", "claudewrap.store.records",
             "claudewrap.parse.patterns", "claudewrap.parse.scanner",
             "claudewrap.sources.transcripts", "http.server", "pathlib", "shutil",
             "contextlib", "socket", "json", "tempfile"}


def _nothing_heavy(run: Callable[[], bytes]) -> None:
    """A run shorter than PRELOAD_SECONDS loads nothing heavy; one that took
    longer (a loaded machine) only what preloading loads. Up to 5 runs, to
    see a short one."""
    for _ in range(5):
        out = run()
        loaded = _loaded(out)
        if _took(out) < PRELOAD_SECONDS:
            assert loaded == [], out
            return
        assert set(loaded) <= PRELOADED, out


def test_a_trivial_run_loads_nothing_heavy(env: dict[str, str], tmp_path: Path) -> None:
    """`true` in a real pty: no output, nothing recorded, so no parser, journal,
    click or dataclasses were needed, before the child or after it."""
    env = _plain(dict(env, CLAUDEWRAP_CLAUDE="/bin/true"))

    def run() -> bytes:
        child = spawn([sys.executable, "-S", str(_driver(tmp_path)), "run", "--"], env)
        out = read_all(child)
        assert child.exitstatus == 0, out
        return bytes(out)

    _nothing_heavy(run)


def test_a_trivial_run_through_pipes_loads_nothing_heavy(env: dict[str, str],
                                                         tmp_path: Path) -> None:
    """The same through pipes (`claude -p ... | jq`): the child forked and
    exec'd without subprocess; and with the folders from $XDG_* and $HOME, not
    $CLAUDEWRAP_JOURNAL: no platformdirs either."""
    env = _plain(dict(env, CLAUDEWRAP_CLAUDE="/bin/true"))
    del env["CLAUDEWRAP_JOURNAL"]

    def run() -> bytes:
        done = subprocess.run([sys.executable, "-S", str(_driver(tmp_path)), "run", "--"],
                              env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                              check=False)
        assert done.returncode == 0, done.stderr
        return done.stderr

    _nothing_heavy(run)


def test_a_claude_that_runs_a_while_has_its_end_of_run_modules_preloaded(
        env: dict[str, str], tmp_path: Path) -> None:
    """A `claude` that runs past PRELOAD_SECONDS (Claude Code takes ~300 ms to
    start) finds the parser, the transcript reader and the OpenTelemetry HTTP
    server loaded before it exits, though it printed nothing: none of it is
    left for after its exit, when the user waits for the prompt."""
    slow = tmp_path / "claude"
    slow.write_text("#!/bin/sh\nsleep 1\n")
    slow.chmod(0o755)
    env = _plain(dict(env, CLAUDEWRAP_CLAUDE=str(slow)))
    done = subprocess.run([sys.executable, "-S", str(_driver(tmp_path)), "run", "--"], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert {"claudewrap.parse.patterns", "claudewrap.sources.transcripts",
            "http.server"} <= set(_loaded(done.stderr)), done.stderr


def test_the_trivial_runs_check_something(env: dict[str, str], tmp_path: Path) -> None:
    """The driver sees what a run loads: the same run under site's .pth files
    (where they load any of HEAVY first) or with `--no-otel` (click) says so."""
    env = _plain(dict(env, CLAUDEWRAP_CLAUDE="/bin/true"))
    done = subprocess.run([sys.executable, "-S", str(_driver(tmp_path)), "run", "--no-otel",
                           "--"], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "click" in _loaded(done.stderr)


def test_find_project_is_pathlibs_answer(tmp_path: Path) -> None:
    """context.find_project walks cwd's folders as pathlib did (it no longer
    imports it): the same name for absolute, relative, odd and root paths."""
    from claudewrap.wrap.context import find_project

    def with_pathlib(cwd: str) -> str:
        path = Path(cwd)
        for candidate in (path, *path.parents):
            if (candidate / ".git").exists():
                return candidate.name or str(candidate)
        return path.name or str(path)

    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "a" / "b").mkdir(parents=True)
    (tmp_path / "plain" / "c").mkdir(parents=True)
    t = str(tmp_path)
    cases = [f"{t}/repo/a/b", f"{t}/repo/a/b/", f"{t}/repo", f"{t}/plain/c",
             f"{t}//plain/./c/", "/", "//", "///", ".", "", "./repo/a", "repo/a/b", "plain/c",
             "plain", "..", "../x", "repo", "a/../repo", "repo/./a//b"]
    here = os.getcwd()
    try:
        for cwd in (t, f"{t}/repo/a"):
            os.chdir(cwd)
            for case in [*cases, "b", "b/..", "../a"]:
                assert find_project(case) == with_pathlib(case), (cwd, case)
    finally:
        os.chdir(here)


def test_a_run_that_prints_usage_loads_the_parser(env: dict[str, str],
                                                  tmp_path: Path) -> None:
    """The other side of the test above: with usage on screen the parser and
    the journal do load (after the output was shown) and the record is written."""
    child = spawn([sys.executable, "-S", str(_driver(tmp_path)), "run", "--", "print",
                   "Tokens: 12 input, 34 output"],
                  _plain(env))
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
