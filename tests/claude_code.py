"""The real Claude Code CLI for the tests: pinned npm installs the tests own,
an environment that keeps it on this machine, and first-run settings.

``python tests/claude_code.py install`` (run by scripts/test.sh) installs each
pinned version into ``.cache/claude-code/<version>/`` (skipping those already
there); the ``claude_cli`` fixture is parametrized by version, so every test
that drives the real CLI runs against each; a version that is missing skips
its tests (fails them under CI=true instead).

Pinned, both on purpose (bump the newest on purpose too):

- 2.1.197, the newest release whose npm package accepts Node 20 (2.1.198 and
  later declare Node >= 22). It ships a native binary (``bin/claude.exe``,
  hard-linked by its postinstall from the platform package
  ``@anthropic-ai/claude-code-<os>-<arch>``) and draws its TUI inline.
- 2.1.332, the newest on 2026-11-30, what people run. npm on Node 20 installs it
  with an EBADENGINE warning: its CLI is a native binary too (~400 MB) and needs
  no Node at run time. Its TUI runs in the alternate screen with mouse tracking;
  what else differs is in ../shared/CLAUDE_CODE_FORMATS.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

VERSIONS = ("2.1.197", "2.1.332")
NEWEST = VERSIONS[-1]
PACKAGE = "@anthropic-ai/claude-code"
ROOT = Path(__file__).resolve().parent.parent
INSTALL_DIR = Path(os.environ.get("CLAUDEWRAP_TEST_CLAUDE_DIR") or ROOT / ".cache" / "claude-code")
# A key the fake API accepts; Claude Code remembers approval by its last 20 characters.
API_KEY = "sk-ant-api03-claudewrap-test-key-0123456789abcdefghijKLMNOP"
INSTALL_HINT = ("bash scripts/test.sh (or: python tests/claude_code.py install) installs "
                + ", ".join(f"{PACKAGE}@{v}" for v in VERSIONS))
# The interactive prompt is ready: 2.1.197's footer says "? for shortcuts",
# 2.1.332's "(shift+tab to cycle)" (words placed with cursor moves).
READY = re.compile(rb"shortcuts|shift\+tab")


def drawn(text: str) -> re.Pattern[bytes]:
    """`text` as the TUI draws it: its renderer writes only the cells that
    changed, so letters already on screen at that spot are skipped with one
    cursor move along the line (``z\x1b[5Gbra-7`` draws "zebra-7" where an
    "e" already stood in column 4, ``z\x1b[6Gra-7`` where "eb" stood; both
    seen with CI=true). A letter after the first may be left out only right
    after such a move (the bytes before it end in one: the look-behind), and
    the last one is drawn."""
    assert len(text) > 1 and not re.search(r"[0-9\[][CG]", text), text  # the look-behind's limit
    skip = rb"\x1b\[[0-9]*[CG]"
    after_skip = rb"(?<=[0-9\[][CG])"
    letters = [re.escape(c.encode()) for c in text]
    return re.compile(b"(?:%s|%s)" % (letters[0], skip)
                      + b"".join(b"(?:%s|%s|%s)" % (c, skip, after_skip) for c in letters[1:-1])
                      + letters[-1])


def submit(child: Any, text: str, then: Any, wait: float = 10, tries: int = 3) -> int:
    """Type `text` into the real Claude Code, press Enter once it is drawn, and
    expect `then` (a pattern or list, as pexpect takes). On a loaded CI machine
    an Enter can be lost although the text is on screen (Claude Code had not
    taken the typed text yet; seen in CI for `/exit` after `fg`, and for a
    prompt): when `then` has not come in `wait` seconds, Enter is pressed again,
    at most `tries` times in all. Returns the index pexpect matched."""
    import pexpect
    child.send(text)
    child.expect(drawn(text))
    time.sleep(0.3)
    for attempt in range(tries):
        child.send("\r")
        try:
            return int(child.expect(then, timeout=wait))
        except pexpect.TIMEOUT:
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def release(version: str) -> tuple[int, ...]:
    """``"2.1.332"`` as ``(2, 1, 332)``, to compare versions."""
    return tuple(int(part) for part in version.split("."))


def folder(version: str) -> Path:
    return INSTALL_DIR / version


def _candidates(version: str) -> list[Path]:
    found = []
    # The flat folder is where 2.1.197 went before each version had its own.
    for modules in (folder(version) / "node_modules", INSTALL_DIR / "node_modules"):
        found.append(modules / ".bin" / "claude")
        # Without its postinstall (npm may refuse install scripts) the package's
        # bin is a stub; the platform package holds the same binary.
        scope = modules / "@anthropic-ai"
        if scope.is_dir():
            found += sorted(scope.glob("claude-code-*/claude"))
    return found


def installed_version(path: Path) -> str | None:
    try:
        out = subprocess.run([str(path), "--version"], check=False, capture_output=True,
                             text=True, timeout=30, env={**os.environ, "DISABLE_AUTOUPDATER": "1"})
    except (OSError, subprocess.SubprocessError):
        return None
    words = out.stdout.split()
    return words[0] if out.returncode == 0 and words else None


_found: dict[str, Path] = {}


def find(version: str) -> Path | None:
    """The CLI of that pinned version if it is installed and runs, else None."""
    if version in _found:
        return _found[version]
    for path in _candidates(version):
        if path.is_file() and os.access(path, os.X_OK) and installed_version(path) == version:
            _found[version] = path.resolve()
            return _found[version]
    return None


def version_of(claude: Path) -> str:
    """The pinned version ``claude`` (a path find() gave) is."""
    return next(v for v, p in _found.items() if p == claude)


def install(version: str) -> Path:
    """Install that pinned version unless it is there already; its path."""
    path = find(version)
    if path is not None:
        return path
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("claude_code.py: npm is missing (scripts/test.sh installs it)")
    folder(version).mkdir(parents=True, exist_ok=True)
    # --engine-strict=false: from 2.1.198 on the package asks for Node >= 22 and a
    # user's engine-strict npmrc would refuse it; the CLI itself is a native binary.
    subprocess.run([npm, "install", "--prefix", str(folder(version)), "--no-save", "--no-audit",
                    "--no-fund", "--engine-strict=false", "--loglevel=error",
                    f"{PACKAGE}@{version}"], check=True)
    path = find(version)
    if path is None:
        raise SystemExit(f"claude_code.py: installed {PACKAGE}@{version} into {folder(version)}"
                         f" but `claude --version` does not report {version}")
    return path


def claude_env(base: dict[str, str], api_url: str, home: Path) -> dict[str, str]:
    """``base`` plus what keeps the real CLI private and on this machine."""
    env = {k: v for k, v in base.items()
           if not k.startswith(("OTEL_", "ANTHROPIC_", "CLAUDE_CODE_", "CLAUDE_CONFIG_DIR"))}
    env.update({
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": api_url,
        "ANTHROPIC_API_KEY": API_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_TELEMETRY": "1",  # Anthropic's own (Statsig) telemetry, not OpenTelemetry
    })
    return env


def seed_home(home: Path, trusted: list[Path], version: str = NEWEST) -> None:
    """First-run settings so interactive mode starts straight at the prompt:
    onboarding done, a theme, the folders trusted, the API key approved.
    (2.1.332 on a fresh HOME asks about trust and the key in two dialogs.)"""
    config: dict[str, Any] = {
        "hasCompletedOnboarding": True,
        "lastOnboardingVersion": version,
        "theme": "dark",
        "numStartups": 1,
        "projects": {str(p): {"hasTrustDialogAccepted": True, "allowedTools": []}
                     for p in trusted},
        "customApiKeyResponses": {"approved": [API_KEY[-20:]], "rejected": []},
    }
    home.mkdir(parents=True, exist_ok=True)
    (home / ".claude.json").write_text(json.dumps(config))


@pytest.fixture(scope="session", params=VERSIONS)
def claude_cli(request: pytest.FixtureRequest) -> Path:
    """The real CLI, once per pinned version: a test that uses it runs against
    each. Skipped when that version is not installed (a failure under CI=true)."""
    from conftest import unavailable

    version = str(request.param)
    path = find(version)
    if path is None:
        unavailable(f"Claude Code {version} is not installed in {folder(version)}: "
                    f"{INSTALL_HINT}")
    return path


@pytest.fixture(scope="session")
def claude_version(claude_cli: Path) -> str:
    """The version ``claude_cli`` is, for a driver that must tell them apart."""
    return version_of(claude_cli)


if __name__ == "__main__":
    if sys.argv[1:] == ["install"]:
        for v in VERSIONS:
            print(f"claude_code.py: {PACKAGE}@{v} at {install(v)}", flush=True)
    elif sys.argv[1:2] == ["path"] and len(sys.argv) <= 3:
        found = [find(v) for v in (sys.argv[2:] or VERSIONS)]
        print("\n".join(str(p or "") for p in found))
        sys.exit(0 if all(found) else 1)
    else:
        sys.exit("usage: python tests/claude_code.py install | path [VERSION]")
