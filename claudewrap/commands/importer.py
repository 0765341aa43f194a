"""`claudewrap import`: Claude Code's session transcripts into the journal."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click

from claudewrap import transcripts
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
    """Add the exact usage in Claude Code's transcripts to the journal.

    PATHS are transcript files or folders (default: the `projects` folder of
    each Claude Code config dir: $CLAUDE_CONFIG_DIR, comma separated, else
    ~/.config/claude and ~/.claude). One record per API request; running it
    again adds nothing that is already in the journal.
    """
    since_epoch = None
    if since:
        from claudewrap.commands.usage import parse_when

        try:
            since_epoch = parse_when(since, tz=None, now=datetime.now(timezone.utc)).at.timestamp()
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--since") from None
    roots = list(paths) or transcripts.default_roots()
    if not roots:
        dirs = ", ".join(str(d / "projects") for d in transcripts.config_dirs())
        raise click.ClickException(f"no Claude Code transcripts found in {dirs}; "
                                   f"pass the folder or files to import as PATHS")
    try:
        journal = resolve_path(journal_path)
        result = transcripts.import_paths(roots, journal, since=since_epoch, dry_run=dry_run)
    except JournalError as exc:
        raise click.ClickException(str(exc)) from exc
    verb = "would add" if dry_run else "added"
    plural = "" if result.added == 1 else "s"
    click.echo(f"{result.files} transcript file{'' if result.files == 1 else 's'}, "
               f"{result.requests} request{'' if result.requests == 1 else 's'}: "
               f"{verb} {result.added} record{plural} to {journal}")
