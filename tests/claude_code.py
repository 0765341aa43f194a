"""The real Claude Code CLI for the tests: a pinned npm install the tests own,
an environment that keeps it on this machine, and first-run settings.

``python tests/claude_code.py install`` (run by scripts/test.sh) installs the
pinned version into ``.cache/claude-code/`` (skipped when it is there already);
the ``claude_cli`` fixture finds it, skips the test when it is missing (fails
under CI=true instead).

Pinned: 2.1.197, the newest release whose npm package accepts Node 20 (2.1.198
and later declare Node >= 22; they are native binaries and work anyway, but a
plain ``npm install`` there warns EBADENGINE). It ships a native binary
(``bin/claude.exe``, hard-linked by its postinstall from the platform package
``@anthropic-ai/claude-code-<os>-<arch>``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

VERSION = "2.1.197"
PACKAGE = "@anthropic-ai/claude-code"
ROOT = Path(__file__).resolve().parent.parent
INSTALL_DIR = Path(os.environ.get("CLAUDEWRAP_TEST_CLAUDE_DIR") or ROOT / ".cache" / "claude-code")
# A key the fake API accepts; Claude Code remembers approval by its last 20 characters.
API_KEY = "sk-ant-api03-claudewrap-test-key-0123456789abcdefghijKLMNOP"
INSTALL_HINT = (f"bash scripts/test.sh (or: python tests/claude_code.py install) installs "
                f"{PACKAGE}@{VERSION}")


def _candidates() -> list[Path]:
    modules = INSTALL_DIR / "node_modules"
    found = [modules / ".bin" / "claude"]
    # Without its postinstall (npm may refuse install scripts) the package's bin
    # is a stub; the platform package holds the same binary.
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


def find() -> Path | None:
    """The pinned CLI if it is installed and runs, else None."""
    for path in _candidates():
        if path.is_file() and os.access(path, os.X_OK) and installed_version(path) == VERSION:
            return path.resolve()
    return None


def install() -> Path:
    """Install the pinned version unless it is there already; its path."""
    path = find()
    if path is not None:
        return path
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("claude_code.py: npm is missing (scripts/test.sh installs it)")
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "--prefix", str(INSTALL_DIR), "--no-save", "--no-audit",
                    "--no-fund", "--loglevel=error", f"{PACKAGE}@{VERSION}"], check=True)
    path = find()
    if path is None:
        raise SystemExit(f"claude_code.py: installed {PACKAGE}@{VERSION} into {INSTALL_DIR}"
                         f" but `claude --version` does not report {VERSION}")
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


def seed_home(home: Path, trusted: list[Path]) -> None:
    """First-run settings so interactive mode starts straight at the prompt:
    onboarding done, a theme, the folders trusted, the API key approved."""
    config: dict[str, Any] = {
        "hasCompletedOnboarding": True,
        "lastOnboardingVersion": VERSION,
        "theme": "dark",
        "numStartups": 1,
        "projects": {str(p): {"hasTrustDialogAccepted": True, "allowedTools": []}
                     for p in trusted},
        "customApiKeyResponses": {"approved": [API_KEY[-20:]], "rejected": []},
    }
    home.mkdir(parents=True, exist_ok=True)
    (home / ".claude.json").write_text(json.dumps(config))


@pytest.fixture(scope="session")
def claude_cli() -> Path:
    """The pinned real CLI; skipped when not installed (a failure under CI=true)."""
    from conftest import unavailable

    path = find()
    if path is None:
        unavailable(f"Claude Code {VERSION} is not installed in {INSTALL_DIR}: {INSTALL_HINT}")
    return path


if __name__ == "__main__":
    if sys.argv[1:] == ["install"]:
        print(f"claude_code.py: {PACKAGE}@{VERSION} at {install()}")
    elif sys.argv[1:] == ["path"]:
        found = find()
        print(found or "")
        sys.exit(0 if found else 1)
    else:
        sys.exit("usage: python tests/claude_code.py install|path")
