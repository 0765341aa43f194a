"""claudewrap's own folders without platformdirs on the launch path: the
answer of ``config.user_dir`` is platformdirs' own, whatever the environment.

Each case runs in a fresh interpreter with exactly that environment (XDG and
HOME values set, empty, relative, padded, with trailing slashes, or unset), so
platformdirs (the installed version, whatever it is) computes its answer from
the same environment as ours; and a plain case must not import platformdirs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBE = """
import json, sys
from claudewrap.store import config
ours = {k: config.user_dir(k) for k in ("config", "data", "cache", "state")}
paths = [config.config_file(), config.journal_file(), str(config.default_config_path()),
         str(config.default_journal_path())]
loaded = "platformdirs" in sys.modules
import platformdirs
theirs = {k: getattr(platformdirs, "user_%s_dir" % k)("claudewrap", appauthor=False)
          for k in ("config", "data", "cache", "state")}
print(json.dumps({"ours": ours, "theirs": theirs, "loaded": loaded, "paths": paths}))
"""

VARS = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")

CASES = {
    "plain home": {"HOME": "/home/ann"},
    "home with a trailing slash": {"HOME": "/home/ann/"},
    "home is /": {"HOME": "/"},
    "home is //": {"HOME": "//"},
    "home with a space": {"HOME": "/home/a nn"},
    "absolute xdg": {"HOME": "/home/ann", **{v: f"/x/{v.lower()}" for v in VARS}},
    "xdg with a trailing slash": {"HOME": "/home/ann", **{v: "/x/y/" for v in VARS}},
    "empty xdg": {"HOME": "/home/ann", **{v: "" for v in VARS}},
    "relative xdg": {"HOME": "/home/ann", **{v: "rel/dir" for v in VARS}},
    "padded xdg": {"HOME": "/home/ann", **{v: " /x/y " for v in VARS}},
    "xdg with ~": {"HOME": "/home/ann", **{v: "~/conf" for v in VARS}},
    "relative home": {"HOME": "rel"},
    "no home": {},
    "no home, absolute xdg": {v: "/x/y" for v in VARS},
}
# Where the answer is plain XDG: platformdirs need not be asked.
PLAIN = {"plain home", "home with a trailing slash", "home is /", "home is //",
         "home with a space", "absolute xdg", "xdg with a trailing slash", "empty xdg",
         "no home, absolute xdg"}


def probe(env: dict[str, str]) -> dict[str, object]:
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": ROOT, **env}
    done = subprocess.run([sys.executable, "-c", PROBE], env=full, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("name", sorted(CASES))
def test_user_dirs_are_platformdirs_answers(name: str) -> None:
    got = probe(CASES[name])
    assert got["ours"] == got["theirs"]
    if sys.platform.startswith("linux"):
        assert got["loaded"] is (name not in PLAIN)


def test_the_files_are_in_those_folders() -> None:
    got = probe({"HOME": "/home/ann", "XDG_DATA_HOME": "/d"})
    theirs = got["theirs"]
    assert isinstance(theirs, dict)
    config_toml = os.path.join(theirs["config"], "config.toml")
    journal = os.path.join(theirs["data"], "journal.jsonl")
    assert got["paths"] == [config_toml, journal, config_toml, journal]
    assert got["loaded"] is False or not sys.platform.startswith("linux")


def test_the_environment_names_the_files() -> None:
    got = probe({"HOME": "/home/ann", "CLAUDEWRAP_CONFIG": "~/c.toml",
                 "CLAUDEWRAP_JOURNAL": "~/j.jsonl"})
    assert got["paths"] == ["/home/ann/c.toml", "/home/ann/j.jsonl"] * 2
    assert got["loaded"] is False
