"""`claudewrap import`: Claude Code's session transcripts, and the last session's
totals in its config file (``~/.claude.json``), into the journal."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click

from claudewrap.sources import claude_dirs, claude_json, transcripts
from claudewrap.store.journal import JournalError, append_records, resolve_path


@click.command("import")
@click.option("--since", metavar="WHEN",
              help="Only requests from WHEN on: today, yesterday, 7d, 24h, a date "
                   "(2026-07-01) or an ISO time.")
@click.option("--journal", "journal_path", metavar="PATH",
              help="Journal file (default: $CLAUDEWRAP_JOURNAL, else the user data folder).")
@click.option("--dry-run", is_flag=True, help="Say what would be added; write nothing.")
@click.option("--shell-history", is_flag=True,
              help="PATHS are shell history files (default: $HISTFILE, ~/.bash_history, "
                   "~/.zsh_history): record the usage typed in them.")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
def import_cmd(since: str | None, journal_path: str | None, dry_run: bool,
               shell_history: bool, paths: tuple[Path, ...]) -> None:
    """Add the exact usage in Claude Code's transcripts and config file to the journal.

    PATHS are transcript files or folders, or Claude Code config files (*.json)
    (default: the `projects` folder of each Claude Code config dir:
    $CLAUDE_CONFIG_DIR, comma separated, else $XDG_CONFIG_HOME/claude,
    ~/.config/claude and ~/.claude;
    and the config file: $CLAUDE_CONFIG_DIR/.claude.json, else ~/.claude.json).
    One record per API request from transcripts; from the config file, each
    project's last session's totals per model. Running it again adds nothing
    that is already in the journal.

    With --shell-history: bash history (dated with HISTTIMEFORMAT set) and zsh
    history (dated with EXTENDED_HISTORY): each command the usage patterns
    match, or the seed script's `claude-token-logger.sh log IN OUT COST
    [MODEL]`, is recorded once, dated when it was typed (source manual,
    session shell-history). Commands that run claudewrap are skipped: they
    recorded themselves.
    """
    since_epoch = None
    if since:
        from claudewrap.views.usage_view import parse_when

        try:
            since_epoch = parse_when(since, tz=None, now=datetime.now(timezone.utc)).at.timestamp()
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--since") from None
    if shell_history:
        _import_history(list(paths), journal_path, dry_run, since_epoch)
        return
    if paths:
        configs = [p for p in paths if p.is_file() and p.suffix == ".json"]
        roots = [p for p in paths if p not in configs]
    else:
        roots, configs = claude_dirs.default_roots(), claude_json.config_files()
    if not roots and not configs:
        dirs = ", ".join(str(d / "projects") for d in claude_dirs.config_dirs())
        raise click.ClickException(f"no Claude Code transcripts found in {dirs}, nor a "
                                   f"~/.claude.json; pass the folder or files to import as PATHS")
    verb = "would add" if dry_run else "added"
    try:
        journal = resolve_path(journal_path)
        if roots:
            result = transcripts.import_paths(roots, journal, since=since_epoch,
                                              dry_run=dry_run)
            click.echo(f"{_n(result.files, 'transcript file')}, "
                       f"{_n(result.requests, 'request')}: "
                       f"{verb} {_n(result.added, 'record')} to {journal}")
        if configs:
            totals = claude_json.import_files(configs, journal, dry_run=dry_run, since=since_epoch)
            click.echo(f"{_n(totals.files, 'Claude Code config file')}, "
                       f"{_n(totals.sessions, 'last session')}: "
                       f"{verb} {_n(totals.added, 'record')} to {journal}"
                       + (f" ({_n(totals.skipped, 'session')} the status line recorded"
                          f" already)" if totals.skipped else ""))
    except JournalError as exc:
        raise click.ClickException(str(exc)) from exc


def _import_history(paths: list[Path], journal_path: str | None, dry_run: bool,
                    since: float | None) -> None:
    from claudewrap.sources import shell_history
    from claudewrap.wrap import context

    files = paths or shell_history.default_files()
    if not files:
        raise click.ClickException("no shell history found ($HISTFILE, ~/.bash_history,"
                                   " ~/.zsh_history); pass the history files as PATHS")
    attribution = context.collect()
    try:
        journal = resolve_path(journal_path)
        found = [shell_history.scan_file(p, attribution) for p in files]
        if since is not None:
            for f in found:
                f.records = [r for r in f.records if _epoch(r.ts) >= since]
        new = shell_history.new_records(found, journal)
        if new and not dry_run:
            append_records(journal, new)
    except (JournalError, shell_history.HistoryError) as exc:
        raise click.ClickException(str(exc)) from None
    verb = "would add" if dry_run else "added"
    commands = sum(f.commands for f in found)
    matched = sum(len(f.records) for f in found)
    click.echo(f"{_n(len(found), 'history file')}, {_n(commands, 'command')},"
               f" {matched} with usage: {verb}"
               f" {_n(len(new), 'record')} to {journal}")
    for f in found:
        if f.undated:
            when = datetime.fromtimestamp(f.path.stat().st_mtime).astimezone()
            click.echo(f"{f.path} keeps no times: {_n(f.undated, 'command')} dated"
                       f" {when:%Y-%m-%d %H:%M %Z}, when it was last written (bash:"
                       f" set HISTTIMEFORMAT; zsh: setopt EXTENDED_HISTORY)")


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
