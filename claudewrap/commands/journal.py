"""`claudewrap journal path|check|recover`: where the journal is, what is wrong in it, records saved elsewhere."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from claudewrap.commands import JOURNAL_HELP
from claudewrap.store.config import recover_advice
from claudewrap.store.journal import (
    JournalError,
    check,
    recover,
    resolve_path,
    saved_in,
    saved_records,
    skipped_lines,
)
from claudewrap.views.display import count


@click.group()
def journal() -> None:
    """Where the journal is, whether every line of it reads, and moving in
    the records runs saved elsewhere when they could not write it."""


@journal.command("path")
@click.option("--journal", "journal_path", metavar="PATH", help=JOURNAL_HELP)
def journal_path_cmd(journal_path: str | None) -> None:
    """Print the journal's path."""
    try:
        click.echo(str(resolve_path(journal_path)))
    except JournalError as exc:
        raise click.ClickException(str(exc)) from None


@journal.command("check")
@click.option("--journal", "journal_path", metavar="PATH", help=JOURNAL_HELP)
def journal_check(journal_path: str | None) -> None:
    """Count good and unreadable lines, and say why each of the first ten is
    skipped (not JSON, impossible numbers, ...); exit status 1 when some are."""
    try:
        path = resolve_path(journal_path)
        if not path.exists():
            click.echo(f"{path}: no journal yet (nothing recorded)")
            _say_saved(path)
            return
        stats = check(path)
        reasons = skipped_lines(path, stats)
    except JournalError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{path}: {stats.good:,} good records, {stats.skipped:,} unreadable lines")
    _say_saved(path)
    if stats.skipped:
        where = ", ".join(str(n) for n in stats.first_bad_lines)
        click.echo(f"unreadable lines (first {len(stats.first_bad_lines)}): {where}"
                   + ("; the last line is incomplete" if stats.incomplete_tail else ""))
        for lineno, why in reasons:
            click.echo(f"  line {lineno}: {why}")
        click.echo("every report skips these lines: they count nothing")
        sys.exit(1)


def _say_saved(journal: Path) -> None:
    """One line when runs left records in the fallback files (see `journal recover`)."""
    lines, files = saved_records()
    if lines:
        click.echo(f"{count(lines)} record{'' if lines == 1 else 's'} that runs could not write"
                   f" to a journal wait in {saved_in(files)} \N{EM DASH} add them once with:"
                   f" {recover_advice(journal)}")


@journal.command("recover")
@click.option("--journal", "journal_path", metavar="PATH", help=JOURNAL_HELP)
@click.option("--dry-run", is_flag=True, help="Only say what would be added; change nothing.")
def journal_recover(journal_path: str | None, dry_run: bool) -> None:
    """Move the records runs saved elsewhere into the journal, once.

    A run that cannot write the journal (a read-only folder or file, a full
    disk, a file-size limit) keeps the records in private files in the temp
    folder (claudewrap-UID/journal-unsaved*.jsonl) and says so at exit. This
    appends them to the journal and empties those files. A record the journal
    already holds (the same time, session, source, model, counts, cost and
    request id) is not added again, so running it twice, or again after it was
    interrupted, never counts anything twice; the files are emptied only after
    the journal took the records. Those files serve every journal: run it with
    the --journal the records belong to.
    """
    try:
        path = resolve_path(journal_path)
        done = recover(path, dry_run=dry_run)
    except JournalError as exc:
        raise click.ClickException(f"{exc}; nothing was moved") from None
    if not done.files:
        click.echo("nothing to recover: no run saved records elsewhere")
        return
    where = saved_in(done.files)
    already = (f"; {count(done.present)} {'was' if done.present == 1 else 'were'} in it"
               " already" if done.present else "")
    torn = (f"; {count(done.unreadable)} unreadable line{'' if done.unreadable == 1 else 's'}"
            " (torn by a crash) counted nothing" if done.unreadable else "")
    records = f"record{'' if done.added == 1 else 's'}"
    if dry_run:
        click.echo(f"would add {count(done.added)} {records} from {where} to {path}{already}"
                   f"{torn} (--dry-run: nothing changed)")
    else:
        click.echo(f"added {count(done.added)} {records} from {where} to {path}{already}"
                   f"{torn}; the saved files are empty now")
