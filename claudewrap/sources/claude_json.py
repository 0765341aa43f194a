"""``~/.claude.json`` as a source: the exact totals of each project's last session.

When an interactive session ends, Claude Code stores in its global config file,
under ``projects[<cwd>]``: ``lastSessionId``, ``lastCost``, ``lastTotal…Tokens``
and ``lastModelUsage`` (per model: ``inputTokens``, ``outputTokens``,
``cacheReadInputTokens``, ``cacheCreationInputTokens``, ``costUSD``). These are
the session's exact running totals, so :func:`import_files` writes one
``source="claude_json"``, ``kind="total"`` record per model of it (``session``
= ``claude_session`` = ``lastSessionId``, project from the cwd). The summing
rule (claudewrap/usage/rule.py) counts them as that session's totals where nothing
else recorded it, and lets per-request records of the session (OTel,
transcripts) count instead, holding those to it (rule 4). Importing again adds
nothing while the journal has the same totals for the session; nor does a
session whose running cost the status line (claudewrap/statusline.py) recorded:
two summaries of one session would both count.

Which file: Claude Code reads ``$CLAUDE_CONFIG_DIR/.claude.json``, else
``~/.claude.json`` (``.claude-custom-oauth.json`` with
``$CLAUDE_CODE_CUSTOM_OAUTH_URL``), and before that a legacy ``.config.json``
in its config folder (``$CLAUDE_CONFIG_DIR``, else ``~/.claude``) when that is
not empty (seen in the 2.1.332 binary: ``process.env.CLAUDE_CONFIG_DIR ||
homedir()``, ``.claude${suffix}.json``). claudewrap takes ``$CLAUDE_CONFIG_DIR``
as a comma-separated list, as claudewrap/claude_dirs.py does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from claudewrap.sources import statusline
from claudewrap.store.records import UsageRecord, cost_value, count_value, iso_utc
from claudewrap.wrap.context import hostname

SOURCE = "claude_json"
# lastModelUsage's keys, in the journal's order of counts.
_COUNTS = ("inputTokens", "outputTokens", "cacheReadInputTokens", "cacheCreationInputTokens")
_TOTALS = ("lastTotalInputTokens", "lastTotalOutputTokens", "lastTotalCacheReadInputTokens",
           "lastTotalCacheCreationInputTokens")

Values = tuple[int, int, int, int, float]  # in, out, cache read, cache write, cost


def config_files(env: Mapping[str, str] | None = None) -> list[Path]:
    """The Claude Code config files that exist (see the module's docstring)."""
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home())
    listed = [Path(d.strip()).expanduser()
              for d in (env.get("CLAUDE_CONFIG_DIR") or "").split(",") if d.strip()]
    names = [".claude.json"]
    if env.get("CLAUDE_CODE_CUSTOM_OAUTH_URL"):
        names.insert(0, ".claude-custom-oauth.json")
    found: list[Path] = []
    for folder in listed or [home / ".claude"]:
        legacy = folder / ".config.json"
        try:
            if legacy.is_file() and legacy.stat().st_size > 0:
                found.append(legacy)
        except OSError:
            pass
    for folder in listed or [home]:
        for name in names:
            path = folder / name
            if path.is_file() and path not in found:
                found.append(path)
    return found


@dataclass
class SessionTotals:
    """One project's last session as a config file stored it."""

    claude_session: str
    cwd: str
    ts: str
    models: dict[str | None, Values] = field(default_factory=dict)


def _counts(entry: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[int, int, int, int]:
    """ValueError for a count no record can hold; a missing count is 0."""
    values = [entry.get(k, 0) for k in keys]
    return tuple(count_value(k, v) for k, v in zip(keys, values))  # type: ignore[return-value]


def _ts(project: Mapping[str, Any], mtime: float) -> str:
    """When the session ended: ``lastStartTime`` + ``lastDuration`` (ms) where
    Claude Code stored them (2.1.332), else the file's modification time."""
    start, duration = project.get("lastStartTime"), project.get("lastDuration")
    epoch = mtime
    if (all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (start, duration))
            and 0 < start + duration < 1e14):  # type: ignore[operator]
        epoch = (start + duration) / 1000  # type: ignore[operator]
    return iso_utc(datetime.fromtimestamp(min(epoch, mtime), timezone.utc))


def session_totals(data: Any, mtime: float) -> list[SessionTotals]:
    """The last session of each project in a parsed config file (those with
    usage); entries with numbers no record can hold are left out."""
    projects = data.get("projects") if isinstance(data, dict) else None
    out: list[SessionTotals] = []
    if not isinstance(projects, dict):
        return out
    for cwd, project in projects.items():
        if not isinstance(project, dict):
            continue
        sid = project.get("lastSessionId")
        if not isinstance(sid, str) or not sid or len(sid) > 200:
            continue
        found = SessionTotals(sid, str(cwd), _ts(project, mtime))
        usage = project.get("lastModelUsage")
        for model, entry in (usage.items() if isinstance(usage, dict) else ()):
            if not isinstance(entry, dict) or not isinstance(model, str) or not model:
                continue
            try:
                counts = _counts(entry, _COUNTS)
                cost = cost_value(entry.get("costUSD", 0))
            except ValueError:
                continue
            from claudewrap.parse.patterns import normalise_model

            name = normalise_model(model)
            have = found.models.get(name)
            if have is not None:  # "claude-opus-4-8" and "claude-opus-4-8[1m]": one model
                counts = tuple(a + b for a, b in zip(have[:4], counts))  # type: ignore[assignment]
                cost += have[4]
            found.models[name] = (*counts, cost)
        if not found.models and "lastCost" in project:
            # No per-model numbers: the session's cost alone, like the status line's.
            try:
                found.models[None] = (0, 0, 0, 0, cost_value(project.get("lastCost")))
            except ValueError:
                continue
        if any(v[4] or any(v[:4]) for v in found.models.values()):
            out.append(found)
    return out


def read_file(path: Path) -> list[SessionTotals]:
    """:func:`session_totals` of a config file; empty when it cannot be read."""
    from claudewrap.store.files import read_regular

    try:
        mtime = path.stat().st_mtime
        return session_totals(json.loads(read_regular(path)), mtime)
    except (OSError, ValueError, RecursionError):
        return []


def to_records(totals: SessionTotals, host: str) -> list[UsageRecord]:
    """One ``total`` record per model of the session."""
    from claudewrap.store.records import UsageEvent
    from claudewrap.wrap.context import find_project

    attribution = {"host": host, "cwd": totals.cwd, "project": find_project(totals.cwd)}
    out = []
    for model, (i, o, cr, cw, cost) in totals.models.items():
        event = UsageEvent(kind="total", model=model, input_tokens=i, output_tokens=o,
                           cache_read_tokens=cr, cache_write_tokens=cw, cost_usd=cost,
                           pattern=SOURCE, claude_session=totals.claude_session)
        out.append(UsageRecord.from_event(event, session=totals.claude_session, source=SOURCE,
                                          attribution=attribution, ts=totals.ts))
    return out


def _values(r: UsageRecord) -> Values:
    return (r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens,
            r.cost_usd or 0.0)


def known_totals(journal: Path) -> tuple[dict[str, dict[str | None, Values]], set[str]]:
    """Claude session -> model -> the newest ``claude_json`` totals the journal has;
    and the Claude sessions whose running cost the status line recorded.
    Raises JournalError when the journal exists but cannot be read."""
    from claudewrap.store.files import open_regular
    from claudewrap.store.journal import parse_line, read_error

    try:
        fd = open_regular(journal, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return {}, set()
    except OSError as exc:
        raise read_error(journal, exc) from None
    out: dict[str, dict[str | None, Values]] = {}
    status: set[str] = set()
    with os.fdopen(fd, "rb") as fh:
        for line in fh:
            if b"claude_json" not in line and b"statusline" not in line:
                continue
            r = parse_line(line)
            if r is None or r.kind != "total":
                continue
            if r.source == SOURCE:
                out.setdefault(r.claude_session or r.session, {})[r.model] = _values(r)
            elif r.source == statusline.SOURCE:
                status.add(r.claude_session or r.session)
    return out, status


@dataclass
class ImportResult:
    files: int = 0
    sessions: int = 0
    added: int = 0
    records: list[UsageRecord] = field(default_factory=list)
    skipped: int = 0  # sessions the status line recorded already


def import_files(paths: Iterable[Path], journal: Path, *, dry_run: bool = False,
                 since: float | None = None) -> ImportResult:
    """Add the last-session totals of the config files ``paths`` to ``journal``
    (of sessions that ended at ``since``, epoch seconds, or later).

    A session whose totals the journal already has (the same numbers for each
    model) adds nothing; one whose numbers changed (resumed and continued) adds
    its new totals, which replace the old ones. Raises JournalError when the
    journal cannot be read or written.
    """
    from claudewrap.store.journal import append_records

    files = list(dict.fromkeys(paths))
    sessions: dict[str, SessionTotals] = {}
    for path in files:
        for totals in read_file(path):
            sessions[totals.claude_session] = totals  # the same session twice: the last file
    if since is not None:
        cutoff = iso_utc(datetime.fromtimestamp(since, timezone.utc))
        sessions = {k: t for k, t in sessions.items() if t.ts >= cutoff}
    have, live = known_totals(journal)
    host = hostname()
    new: list[UsageRecord] = []
    skipped = 0
    for sid, totals in sessions.items():
        if sid in live:
            # The status line recorded this session's exact running cost: the rule
            # would count both summaries of it (claudewrap/usage/rule.py rule 2 sets
            # summaries aside only for per-request records).
            skipped += 1
        elif have.get(sid) != totals.models:
            new.extend(to_records(totals, host))
    new.sort(key=lambda rec: rec.ts)
    result = ImportResult(files=len(files), sessions=len(sessions), added=len(new), records=new,
                          skipped=skipped)
    if new and not dry_run:
        append_records(journal, new)
    return result


__all__ = ["SOURCE", "ImportResult", "SessionTotals", "config_files", "import_files",
           "known_totals", "read_file", "session_totals", "to_records"]
