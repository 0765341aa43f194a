"""Where Claude Code keeps its settings and session transcripts, and which
transcripts belong to a run.

Only ``os`` and ``re`` (pathlib once there are transcripts): :mod:`claudewrap.sources.otel`
asks here before every wrapped run whether the user's settings configure
OpenTelemetry (:func:`config_dir_names`), and :mod:`claudewrap.wrap.exact` at the end of
it whether there is a transcript to reconcile at all (it loads
:mod:`claudewrap.sources.transcripts`, records and the journal, only when there is).
"""

from __future__ import annotations

import os
import re

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (launch path)
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

MAX_FILES = 8  # transcripts read at the end of one run
_SLUG_RE = re.compile(r"[^A-Za-z0-9]")


def config_dirs(env: Mapping[str, str] | None = None) -> list[Path]:
    """Claude Code's config folders: ``$CLAUDE_CONFIG_DIR`` (comma separated),
    else ``$XDG_CONFIG_HOME/claude`` (when set), ``~/.config/claude`` and
    ``~/.claude``. The one list: settings and transcripts are looked for here."""
    from pathlib import Path

    return [Path(d) for d in config_dir_names(env)]


def config_dir_names(env: Mapping[str, str] | None = None) -> list[str]:
    """:func:`config_dirs` as strings, each as ``str(Path)`` spells it (the
    launch path: no pathlib)."""
    env = os.environ if env is None else env
    listed = [d.strip() for d in (env.get("CLAUDE_CONFIG_DIR") or "").split(",") if d.strip()]
    if listed:
        return [_norm(os.path.expanduser(d)) for d in listed]
    home = env.get("HOME") or os.path.expanduser("~")
    xdg = env.get("XDG_CONFIG_HOME")
    dirs = [os.path.join(xdg, "claude")] if xdg else []
    dirs += [os.path.join(home, ".config", "claude"), os.path.join(home, ".claude")]
    unique: list[str] = []
    for d in map(_norm, dirs):
        if d not in unique:
            unique.append(d)
    return unique


def _norm(path: str) -> str:
    """``str(Path(path))``: no empty or ``.`` parts, no trailing slash; ``..``
    kept; a leading ``//`` kept (POSIX gives it a meaning), ``///`` is ``/``."""
    if not path:
        return "."
    lead = "//" if path.startswith("//") and not path.startswith("///") else (
        "/" if path.startswith("/") else "")
    parts = [p for p in path.split("/") if p and p != "."]
    return lead + "/".join(parts) if parts or lead else "."


def default_roots(env: Mapping[str, str] | None = None) -> list[Path]:
    """The ``projects`` folders that exist (pathlib loaded only then)."""
    found = [os.path.join(d, "projects") for d in config_dir_names(env)]
    found = [d for d in found if os.path.isdir(d)]
    if not found:
        return []
    from pathlib import Path

    return [Path(d) for d in found]


def project_slug(cwd: str) -> str:
    """The folder name Claude Code gives a working directory under ``projects``."""
    return _SLUG_RE.sub("-", cwd)


def session_files(claude_sessions: Iterable[str], roots: Iterable[Path],
                  cwd: str | None = None, started: float | None = None) -> list[Path]:
    """The transcripts of ``claude_sessions`` (with their subagent files); when
    none is known, the newest transcript of ``cwd``'s project folder written
    since ``started``."""
    from pathlib import Path

    roots = list(roots)
    files: list[Path] = []
    for sid in sorted(set(claude_sessions)):
        if not sid or "/" in sid or sid.startswith("."):
            continue
        for root in roots:
            files.extend(p for p in root.glob(f"*/{sid}.jsonl") if p.is_file())
            for sub in root.glob(f"*/{sid}/subagents"):
                files.extend(sorted(p for p in sub.glob("*.jsonl") if p.is_file()))
    if files or claude_sessions or cwd is None:
        return files[:MAX_FILES]
    newest: tuple[float, Path] | None = None
    for root in roots:
        folder = root / project_slug(cwd)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.endswith(".jsonl"):
                continue
            try:
                mtime = entry.stat().st_mtime
            except OSError:
                continue
            if (started is None or mtime >= started) and (newest is None or mtime > newest[0]):
                newest = (mtime, Path(entry.path))
    return [newest[1]] if newest else []


def run_transcripts(claude_sessions: Iterable[str], started: float, *,
                    env: Mapping[str, str] | None = None, cwd: str | None = None) -> list[Path]:
    """The transcripts of a wrapped run that started at ``started`` (epoch
    seconds): those of its Claude sessions, else the newest one of ``cwd``
    written since it started. Empty when Claude Code has no transcripts."""
    roots = default_roots(env)
    if not roots:
        return []
    return session_files(claude_sessions, roots, cwd or os.getcwd(), started)
