"""Who and where a record comes from: project, cwd, host, tmux pane, screen session.

Read from the environment only; nothing here starts a process on the launch
path except one short `tmux display-message` when inside tmux (for the session
name), bounded by a timeout. GNU screen needs no process: ``$STY`` and
``$WINDOW`` say it all. scan.py uses the same labels for scrollback it reads.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (launch path)
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any


def hostname() -> str:
    """This machine's name, as records carry it (``socket.gethostname()``'s answer,
    without importing socket: this module is on the launch path)."""
    return os.uname().nodename


def tag_items(items: Iterable[str]) -> dict[str, str]:
    """``["k=v", ...]`` (each ``--tag``) as a dict, keys and values stripped.
    Raises ValueError naming the first item that is not KEY=VALUE."""
    tags: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{item!r}: use KEY=VALUE, e.g. agent=coordinator")
        tags[key.strip()] = value.strip()
    return tags


def parse_tags(text: str | None) -> dict[str, str]:
    """``$CLAUDEWRAP_TAGS`` (``"k=v,k2=v2"``) as a dict; items without ``=`` are ignored
    (an environment variable is no place for an error)."""
    return tag_items(item for item in (text or "").split(",")
                     if item.partition("=")[1] and item.partition("=")[0].strip())


def find_project(cwd: str, override: str | None = None) -> str:
    """The project name: an override, else the git top-level folder's name, else cwd's name."""
    if override:
        return override
    # As pathlib.Path(cwd) and its parents would, without pathlib (~8 ms to
    # import, on the launch path): the launch path has no other use for it.
    lead = "//" if cwd.startswith("//") and not cwd.startswith("///") else (
        "/" if cwd.startswith("/") else "")
    parts = [p for p in cwd.split("/") if p and p != "."]
    for n in range(len(parts), -1, -1):
        candidate = lead + "/".join(parts[:n]) if n or lead else "."
        if os.path.exists(os.path.join(candidate, ".git")):
            return (parts[n - 1] if n else "") or candidate
    return (parts[-1] if parts else "") or (lead or ".")


def tmux_session_name(env: dict[str, str]) -> str | None:
    """Ask tmux for the session name of ``$TMUX_PANE`` (None outside tmux or on error).

    The session name is not in the environment (``$TMUX`` holds the socket,
    the server pid and the session's number) and may have been renamed, so
    ask the server that ``$TMUX`` names; a stuck server costs at most 0.5 s.
    """
    if not env.get("TMUX"):
        return None
    cmd = ["tmux", "display-message", "-p"]
    pane = env.get("TMUX_PANE")
    if pane:
        cmd += ["-t", pane]
    cmd.append("#{session_name}")
    import subprocess  # only inside tmux

    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=0.5, env=env,
                             stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    name = out.stdout.strip()
    return name if out.returncode == 0 and name else None


def screen_label(sty: str | None, window: str | None) -> str | None:
    """``screen_session`` for GNU screen's ``$STY`` (``pid.name``) and ``$WINDOW``:
    ``"pid.name:window"``, or just ``$STY`` without a window number."""
    if not sty:
        return None
    return f"{sty}:{window}" if window else sty


def collect(*, project: str | None = None, tags: dict[str, str] | None = None,
            env: dict[str, str] | None = None, cwd: str | None = None) -> dict[str, Any]:
    """Attribution fields for records written by this process."""
    env = dict(os.environ if env is None else env)
    cwd = cwd or os.getcwd()
    all_tags = parse_tags(env.get("CLAUDEWRAP_TAGS"))
    all_tags.update(tags or {})
    return {
        "project": find_project(cwd, project or env.get("CLAUDEWRAP_PROJECT")),
        "cwd": cwd,
        "host": hostname(),
        "tmux_pane": env.get("TMUX_PANE") or None,
        "tmux_session": tmux_session_name(env),
        "screen_session": screen_label(env.get("STY"), env.get("WINDOW")),
        "tags": all_tags,
    }
