"""`claudewrap advise`: suggestions from the journal, each with its evidence and dollars."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import click


@click.command("advise")
@click.option("--since", metavar="WHEN", default="30d", show_default=True,
              help="Look at usage from WHEN (today, 7d, 2026-07-01, ...). The cache"
                   " comparison always looks at the last 7 days and the 28 before them.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (keys are stable).")
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path),
              help="The journal to read [default: $CLAUDEWRAP_JOURNAL or the user data dir].")
@click.option("--no-cache", is_flag=True, help="Read the whole journal; do not use the rollup.")
def advise(since: str, as_json: bool, journal: Path | None, no_cache: bool) -> None:
    """A few ways to spend less, only where the journal shows them, with the dollars
    at stake; one line when there is nothing to say.

    \b
    claudewrap advise
    claudewrap advise --since 7d --json | jq '.suggestions[].usd_at_stake'
    """
    from claudewrap.store.journal import JournalError, resolve_path
    from claudewrap.usage.pricing import PriceFileError, default_table
    from claudewrap.views import advice
    from claudewrap.views.usage_view import parse_when, warn_skipped

    now = datetime.now(timezone.utc)
    try:
        start = parse_when(since, tz=None, now=now).at.astimezone().date()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    try:
        found, report = advice.advise(resolve_path(journal), since=start,
                                      today=now.astimezone().date(), tz=None,
                                      table=default_table(), use_cache=not no_cache)
    except (JournalError, PriceFileError) as exc:
        raise click.ClickException(str(exc)) from None
    warn_skipped(report.skipped_lines, report.first_bad_lines)
    if as_json:
        click.echo(json.dumps(found.to_json(), indent=2))
    else:
        click.echo(advice.render(found), nl=False)
