#!/usr/bin/env bash
# The one test command: installs what the tests need, then runs pytest.
# On a fresh Debian machine this does all set-up: the system packages the tests
# drive for real (bash, zsh, tmux, GNU screen, script(1), node/npm, prometheus),
# this package with its test extras (pytest, ruff, mypy, ...), then ruff, mypy
# and the whole suite (python3 -m pytest -m "not e2e" is the fast tier alone).
#   bash scripts/test.sh [PYTEST ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1; }
# A system Python that refuses pip (PEP 668: Debian 12, Ubuntu 23.04 and later)
# gets a virtualenv in .venv for this package and its test extras.
managed() {
  python3 -c 'import os, sys, sysconfig
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
sys.exit(0 if sys.prefix == sys.base_prefix and os.path.exists(marker) else 1)'
}
have python3 || need+=(python3 python3-venv)
if have python3; then
  if managed; then
    [ -x .venv/bin/python3 ] || python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
  else
    python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
  fi
fi
have bash || need+=(bash)
have zsh || need+=(zsh)
have tmux || need+=(tmux)
have screen || need+=(screen)
have script || need+=(bsdutils)
have ps || need+=(procps)
have node || need+=(nodejs)
have npm || need+=(npm)
have prometheus || need+=(prometheus)
have prometheus-pushgateway || need+=(prometheus-pushgateway)
if [ "${#need[@]}" -gt 0 ]; then
  echo "scripts/test.sh: installing system packages: ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if managed; then
  [ -x .venv/bin/python3 ] || python3 -m venv .venv
  export PATH="$PWD/.venv/bin:$PATH"  # python3 and claudewrap from .venv from here on
  echo "scripts/test.sh: the system Python is externally managed: using .venv"
fi
python3 -m pip install -q --disable-pip-version-check -e ".[test]"

# The real Claude Code CLI, each version pinned in tests/claude_code.py (2.1.197
# and the newest, 2.1.332: ~620 MB together), into .cache/claude-code/<version>/;
# a version already there is skipped. 2.1.332 asks for Node >= 22 but is a native
# binary: npm on Node 20 installs it anyway (engine-strict off).
python3 tests/claude_code.py install ||
  echo "scripts/test.sh: Claude Code not installed: its tests skip (and fail under CI=true)"

# Lint and types first: a few seconds, and they name the line to fix.
python3 -m ruff check .
python3 -m mypy --strict claudewrap

exec python3 -m pytest "$@"
