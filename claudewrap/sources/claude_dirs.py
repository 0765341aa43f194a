"""Where Claude Code keeps its settings and session transcripts, and which
transcripts belong to a run.

Only ``os``, ``re`` and ``pathlib``: :mod:`claudewrap.sources.otel` asks here before
every wrapped run whether the user's settings configure OpenTelemetry, and
:mod:`claudewrap.wrap.exact` at the end of it whether there is a transcript to
reconcile at all (it loads :mod:`claudewrap.sources.transcripts`, records and the
journal, only when there is).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

MAX_FILES = 8  # transcripts read at the end of one run
_SLUG_RE = re.compile(r"[^A-Za-z0-9]")


def config_dirs(env: Mapping[str, str] | None = None) -> list[Path]:
    """Claude Code's config folders: ``$CLAUDE_CONFIG_DIR`` (comma separated),
    else ``$XDG_CONFIG_HOME/claude`` (when set), ``~/.config/claude`` and
    ``~/.claude``. The one list: settings and transcripts are looked for here."""
    env = os.environ if env is None else env
    listed = [d.strip() for d in (env.get("CLAUDE_CONFIG_DIR") or "").split(",") if d.strip()]
    if listed:
        return [Path(d).expanduser() for d in listed]
    home = Path(env.get("HOME") or Path.home())
    xdg = env.get("XDG_CONFIG_HOME")
    dirs = [Path(xdg) / "claude"] if xdg else []
    dirs += [home / ".config" / "claude", home / ".claude"]
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def default_roots(env: Mapping[str, str] | None = None) -> list[Path]:
    """The ``projects`` folders that exist."""
    return [d / "projects" for d in config_dirs(env) if (d / "projects").is_dir()]


def project_slug(cwd: str) -> str:
    """The folder name Claude Code gives a working directory under ``projects``."""
    return _SLUG_RE.sub("-", cwd)


def session_files(claude_sessions: Iterable[str], roots: Iterable[Path],
                  cwd: str | None = None, started: float | None = None) -> list[Path]:
    """The transcripts of ``claude_sessions`` (with their subagent files); when
    none is known, the newest transcript of ``cwd``'s project folder written
    since ``started``."""
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
