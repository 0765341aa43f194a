"""Shared fixtures: a fake `claude` on PATH, a private HOME and journal, helpers
to run the real `claudewrap` in a real pty (pexpect)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pexpect
import pytest

ROOT = Path(__file__).resolve().parent.parent
FAKE = Path(__file__).resolve().parent / "fakes" / "fake_claude.py"
CW = [sys.executable, "-m", "claudewrap"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment with a fake `claude` first on PATH and everything private."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "claude").symlink_to(FAKE)
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "env-tmp").mkdir(exist_ok=True)
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("CLAUDEWRAP_", "TMUX", "STY", "OTEL_"))}
    e.update({
        "PATH": f"{bin_dir}{os.pathsep}{e.get('PATH', os.defpath)}",
        "HOME": str(home),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        # The wrapper's fallback files live in $TMPDIR/claudewrap-UID: private too,
        # or one test's saved records would show in another's doctor.
        "TMPDIR": str(tmp_path / "env-tmp"),
        "CLAUDEWRAP_JOURNAL": str(tmp_path / "journal.jsonl"),
        "PYTHONPATH": str(ROOT),
        "TERM": "xterm-256color",
        "LC_ALL": "C.UTF-8",
    })
    e.pop("NO_COLOR", None)
    return e


def cw(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `claudewrap ARGS` (no terminal), capturing its text output."""
    return subprocess.run([*CW, *args], env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def spawn(args: list[str], env: dict[str, str], *, rows: int = 24, cols: int = 80,
          timeout: float = 20) -> pexpect.spawn:
    """Start a command in a real pty of the given size."""
    return pexpect.spawn(args[0], args[1:], env=env, dimensions=(rows, cols),
                         timeout=timeout)


def read_all(child: pexpect.spawn, limit: float = 60) -> bytes:
    """Everything the pty shows until EOF (bounded by ``limit`` seconds)."""
    chunks = []
    child.timeout = limit
    while True:
        try:
            chunks.append(child.read_nonblocking(65536, timeout=limit))
        except pexpect.EOF:
            break
    child.close()
    return b"".join(chunks)


def wait_until(check: Callable[[], object], what: str, limit: float = 30) -> object:
    """Poll ``check`` until it returns something true; fail after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def gen_journal() -> Any:
    """bench/gen_journal.py, the generator of realistic journals, as a module."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import gen_journal
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return gen_journal


def unavailable(message: str) -> NoReturn:
    """Skip the test locally, fail it in CI (where scripts/test.sh installs everything)."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require(program: str) -> str:
    """Path of ``program``; a missing one skips locally but fails in CI, where
    scripts/test.sh must have installed it."""
    path = shutil.which(program)
    if path is None:
        unavailable(f"{program} not installed (scripts/test.sh installs it)")
    return path


@pytest.fixture
def tmux() -> Iterator[str]:
    """A private tmux server socket name; the server is killed afterwards."""
    require("tmux")
    # A new name per test: a server killed at the end of one test may still be
    # going away when the next starts, and a client that reaches it then fails
    # with "server exited unexpectedly" (seen in CI).
    name = f"cwtest{os.getpid()}-{os.urandom(3).hex()}"
    yield name
    os.system(f"tmux -L {name} kill-server >/dev/null 2>&1")


# The fast tier is `python3 -m pytest -m "not e2e"` (under a minute): tests that
# call claudewrap in-process. A test is e2e (the slow tier) when it
# - carries @pytest.mark.e2e, or lives in one of E2E_MODULES, or is named in E2E_TESTS;
# - asks for one of E2E_FIXTURES: the real Claude Code, tmux, or `env` (the real
#   claudewrap CLI in subprocesses and ptys, with a fake claude on PATH);
# - is a hypothesis property test (hundreds of random examples each).
E2E_FIXTURES = frozenset({"claude_cli", "tmux", "env"})
E2E_MODULES = frozenset({
    "test_claude_code", "test_job_control", "test_multiplexers", "test_scan_wrap",
    "test_prometheus_e2e", "test_term_modes", "test_shell", "test_shell_history",
    "test_launcher", "test_capture_e2e", "test_exporter", "test_cache_faults",
    "test_rule_readers",
})
E2E_TESTS = frozenset({  # big journals, many processes
    "test_journal.py::test_sixteen_processes_appending_never_interleave",
    "test_metrics.py::test_totals_equal_the_usage_report",
    "test_metrics.py::test_state_cache_gives_the_same_numbers",
    "test_metrics.py::test_textfile_is_never_seen_half_written",
    "test_monitor.py::test_a_big_journal_seeds_the_rate_from_its_tail",
})


def _is_e2e(item: pytest.Item) -> bool:
    path, _, name = item.nodeid.partition("::")
    module = path.rsplit("/", 1)[-1]
    return (module.removesuffix(".py") in E2E_MODULES
            or f"{module}::{name.split('[', 1)[0]}" in E2E_TESTS
            or bool(E2E_FIXTURES & set(getattr(item, "fixturenames", ())))
            or hasattr(getattr(item, "obj", None), "hypothesis"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _is_e2e(item):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _fresh_record_clock() -> None:
    """test_metrics.rec() dates records relative to test_metrics.NOW: the time this
    test starts, not the time the module was imported (a full run is 13 minutes)."""
    module = sys.modules.get("test_metrics")
    if module is not None:
        module.NOW = time.time()  # type: ignore[attr-defined]
