"""`claudewrap import`: Claude Code's session transcripts, and the last session's
totals in its config file (``~/.claude.json``), into the journal."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click

from claudewrap import claude_json, transcripts
from claudewrap.journal import JournalError, resolve_path


@click.command("import")
@click.option("--since", metavar="WHEN",
              help="Only requests from WHEN on: today, yesterday, 7d, 24h, a date "
                   "(2026-07-01) or an ISO time.")
@click.option("--journal", "journal_path", metavar="PATH",
              help="Journal file (default: $CLAUDEWRAP_JOURNAL, else the user data folder).")
@click.option("--dry-run", is_flag=True, help="Say what would be added; write nothing.")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
def import_cmd(since: str | None, journal_path: str | None, dry_run: bool,
               paths: tuple[Path, ...]) -> None:
    """Add the exact usage in Claude Code's transcripts and config file to the journal.

    PATHS are transcript files or folders, or Claude Code config files (*.json)
    (default: the `projects` folder of each Claude Code config dir:
    $CLAUDE_CONFIG_DIR, comma separated, else ~/.config/claude and ~/.claude;
    and the config file: $CLAUDE_CONFIG_DIR/.claude.json, else ~/.claude.json).
    One record per API request from transcripts; from the config file, each
    project's last session's totals per model. Running it again adds nothing
    that is already in the journal.
    """
    since_epoch = None
    if since:
        from claudewrap.commands.usage import parse_when

        try:
            since_epoch = parse_when(since, tz=None, now=datetime.now(timezone.utc)).at.timestamp()
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--since") from None
    if paths:
        configs = [p for p in paths if p.is_file() and p.suffix == ".json"]
        roots = [p for p in paths if p not in configs]
    else:
        roots, configs = transcripts.default_roots(), claude_json.config_files()
    if not roots and not configs:
        dirs = ", ".join(str(d / "projects") for d in transcripts.config_dirs())
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


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
