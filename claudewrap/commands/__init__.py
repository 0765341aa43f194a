"""The click commands, one file per command (claudewrap.cli maps names to them);
what several of them share is here. Loaded with every command: nothing heavy."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from claudewrap.store.records import UsageRecord

JOURNAL_HELP = ("Journal file (default: $CLAUDEWRAP_JOURNAL, else the user data folder; "
                "see `claudewrap journal path`).")


def append_or_fail(path_option: str | None, records: list[UsageRecord]) -> Path:
    """Append ``records`` to the journal ``--journal`` names (or the default one);
    a journal that cannot take them is the command's one-line error."""
    import click

    from claudewrap.store.journal import JournalError, append_records, resolve_path

    try:
        path = resolve_path(path_option)
        append_records(path, records)
    except JournalError as exc:
        raise click.ClickException(str(exc)) from exc
    return path
