"""`claudewrap parse`: what the usage patterns make of some lines, and `--write` to record it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from claudewrap.commands import JOURNAL_HELP, append_or_fail
from claudewrap.parse.patterns import Matcher, PatternError, load_user_patterns
from claudewrap.parse.scanner import Scanner
from claudewrap.plain import fields
from claudewrap.store.records import UsageEvent, UsageRecord
from claudewrap.wrap import context


@click.command()
@click.argument("lines", nargs=-1)
@click.option("--write", is_flag=True, help="Append the events to the journal as records.")
@click.option("--config", "config_path", metavar="PATH", help="TOML file with user patterns.")
@click.option("--project", help="Project for --write (default: git top-level or folder name).")
@click.option("--journal", "journal_path", metavar="PATH", help=JOURNAL_HELP)
def parse(lines: tuple[str, ...], write: bool, config_path: str | None, project: str | None,
          journal_path: str | None) -> None:
    """Show the usage events LINES yield, one JSON object per event; with
    --write, also record them (without it, a last line on stderr says so
    when stderr is a terminal).

    With no LINES (or `-`), reads standard input, so a saved session log can be
    checked: `claudewrap parse < session.log`. Escape sequences are handled as
    in a live session. Events whose numbers no record can hold are not shown;
    a line on stderr counts them and says why the first was dropped.
    """
    try:
        matcher = Matcher(load_user_patterns(Path(config_path) if config_path else None))
    except PatternError as exc:
        raise click.ClickException(str(exc)) from exc
    scanner = Scanner()
    events: list[UsageEvent] = []
    if not lines or lines == ("-",):
        if sys.stdin.isatty() and not lines:
            raise click.UsageError("give LINES to parse, or pipe text in (use - for stdin)")
        stream = sys.stdin.buffer
        while chunk := stream.read(1 << 16):
            events += matcher.feed(scanner.feed(chunk))
    else:
        for line in lines:
            events += matcher.feed(scanner.feed(line.encode("utf-8", "surrogateescape") + b"\n"))
    events += matcher.feed(scanner.flush()) + matcher.flush()
    for event in events:
        click.echo(json.dumps({n: getattr(event, n) for n in fields(event)}, ensure_ascii=False))
    if write and events:
        attribution = context.collect(project=project)
        session = "parse-" + os.urandom(6).hex()
        records = [UsageRecord.from_event(e, session=session, source="manual",
                                          attribution=attribution) for e in events]
        path = append_or_fail(journal_path, records)
        click.echo(f"wrote {len(records)} records to {path}", err=True)
    elif not events:
        click.echo("no usage found", err=True)
    if matcher.rejected:
        click.echo(f"skipped {matcher.rejected} event{'' if matcher.rejected == 1 else 's'}"
                   f" that could not be recorded (first: {matcher.first_rejection})", err=True)
    if matcher.switched_off:  # user patterns too slow to run (issue 13): one line
        click.echo("claudewrap: " + "; ".join(matcher.switched_off), err=True)
    if events and not write and sys.stderr.isatty():
        # The last line, for a person at a terminal: stdout stays one JSON object a
        # line, and scripts reading stderr see no more lines than before.
        them = "it" if len(events) == 1 else "them"
        click.echo(f"(not recorded: add --write to record {them})", err=True)
