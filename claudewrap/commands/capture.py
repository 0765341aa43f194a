"""`claudewrap log`, `claudewrap parse`, `claudewrap journal`: manual entry and the journal."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

import click

from claudewrap import context
from claudewrap.config import recover_advice
from claudewrap.display import count
from claudewrap.journal import (
    JournalError,
    append_records,
    check,
    recover,
    resolve_path,
    saved_in,
    saved_records,
    skipped_lines,
)
from claudewrap.patterns import Matcher, PatternError, load_user_patterns, parse_cost, parse_count
from claudewrap.records import MAX_COST_USD, MAX_TOKENS, UsageEvent, UsageRecord
from claudewrap.scanner import Scanner

JOURNAL_HELP = ("Journal file (default: $CLAUDEWRAP_JOURNAL, else the user data folder; "
                "see `claudewrap journal path`).")


def _tags(tags: tuple[str, ...]) -> dict[str, str]:
    try:
        return context.tag_items(tags)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tag") from None


def _write(path_option: str | None, records: list[UsageRecord]) -> Path:
    try:
        path = resolve_path(path_option)
        append_records(path, records)
    except JournalError as exc:
        raise click.ClickException(str(exc)) from exc
    return path


def _count(value: str, name: str) -> tuple[int, bool]:
    try:
        count, approx = parse_count(value)
    except ValueError as exc:
        if str(exc).startswith("not a plausible"):
            raise click.BadParameter(f"{value!r} is more than one record can hold"
                                     f" ({MAX_TOKENS:,} tokens)", param_hint=name) from None
        raise click.BadParameter(f"{value!r} is not a token count (e.g. 1234, 1,234, 1.2k)",
                                 param_hint=name) from None
    if count < 0:
        raise click.BadParameter("must not be negative", param_hint=name)
    return count, approx


@click.command()
@click.argument("input_tokens", metavar="INPUT")
@click.argument("output_tokens", metavar="OUTPUT")
@click.argument("cost", required=False, metavar="[COST]")
@click.argument("model_arg", required=False, metavar="[MODEL]")
@click.option("--model", "-m", help="Model name, e.g. claude-sonnet-4-6 (or the 4th argument).")
@click.option("--project", help="Project (default: git top-level or current folder name).")
@click.option("--cache-read", default="0", show_default=True, metavar="N",
              help="Cache read tokens.")
@click.option("--cache-write", default="0", show_default=True, metavar="N",
              help="Cache write (creation) tokens.")
@click.option("--session", default="manual", show_default=True,
              help="Session id to file the entry under.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Tag (repeatable).")
@click.option("--journal", "journal_path", metavar="PATH", help=JOURNAL_HELP)
def log(input_tokens: str, output_tokens: str, cost: str | None, model_arg: str | None,
        model: str | None,
        project: str | None, cache_read: str, cache_write: str, session: str,
        tags: tuple[str, ...], journal_path: str | None) -> None:
    """Record usage by hand: INPUT and OUTPUT tokens, and optionally the COST in dollars
    and the MODEL (as `claude-token-logger.sh log <in> <out> <cost> [model]`).

    Without COST, reports price the entry from the model's list price (shown
    as estimated). Example: `claudewrap log 1200 350 0.02 claude-sonnet-4-6`
    (or `--model claude-sonnet-4-6`).
    """
    if model_arg is not None:
        if model is not None and model != model_arg:
            raise click.UsageError(f"two models given: {model_arg!r} (4th argument) and"
                                   f" {model!r} (--model); give one")
        model = model_arg
    counts = [_count(v, n) for v, n in ((input_tokens, "INPUT"), (output_tokens, "OUTPUT"),
                                        (cache_read, "--cache-read"),
                                        (cache_write, "--cache-write"))]
    cost_usd = None
    if cost is not None:
        try:
            cost_usd = parse_cost(cost)
        except ValueError as exc:
            if str(exc).startswith("not a plausible"):
                raise click.BadParameter(f"{cost!r} is more than one record can hold"
                                         f" (${MAX_COST_USD:,})", param_hint="COST") from None
            raise click.BadParameter(f"{cost!r} is not an amount (e.g. 0.02 or $0.02)",
                                     param_hint="COST") from None
        if cost_usd < 0:
            raise click.BadParameter("must not be negative", param_hint="COST")
    event = UsageEvent(kind="delta", model=model, input_tokens=counts[0][0],
                       output_tokens=counts[1][0], cache_read_tokens=counts[2][0],
                       cache_write_tokens=counts[3][0], cost_usd=cost_usd,
                       approximate=any(approx for _, approx in counts), pattern="manual")
    attribution = context.collect(project=project, tags=_tags(tags))
    record = UsageRecord.from_event(event, session=session, source="manual",
                                    attribution=attribution)
    path = _write(journal_path, [record])
    click.echo(f"logged {record.input_tokens:,} input, {record.output_tokens:,} output"
               + (f", ${cost_usd:.4f}" if cost_usd is not None else "") + f" to {path}")


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
        click.echo(json.dumps(asdict(event), ensure_ascii=False))
    if write and events:
        attribution = context.collect(project=project)
        session = "parse-" + os.urandom(6).hex()
        records = [UsageRecord.from_event(e, session=session, source="manual",
                                          attribution=attribution) for e in events]
        path = _write(journal_path, records)
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
