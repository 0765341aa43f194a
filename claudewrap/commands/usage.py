"""`claudewrap usage` (alias `stats`): what the journal adds up to."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone, tzinfo
from pathlib import Path

import click

from claudewrap.store.journal import JournalError, resolve_path
from claudewrap.store.records import iso_utc
from claudewrap.usage.filters import DIMENSIONS, NO_COMMAND, Filters
from claudewrap.usage.pricing import PriceFileError, default_table
from claudewrap.usage.report import STANDARD_GROUPS, Report, parse_dimension
from claudewrap.views.usage_view import (
    VIEW_GROUPS,
    When,
    describe_selection,
    parse_when,
    render_csv,
    render_default,
    render_grouped,
    summary,
    summary_json,
    use_color,
    warn_skipped,
    width,
)


def _zone(name: str | None) -> tzinfo | None:
    if not name:
        return None
    if name.upper() == "UTC":
        return timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown time zone {name!r}: use a name such as"
                                 f" Europe/Paris or UTC", param_hint="--tz") from None


def _parse_tags(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    from claudewrap.wrap.context import tag_items

    try:
        return tuple(tag_items(values).items())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tag") from None


def _command_names(values: Sequence[str]) -> tuple[str, ...]:
    """``--command`` values as reports label commands: ``/review`` is ``review``;
    ``none`` (or ``(none)``) is a typed prompt."""
    return tuple(NO_COMMAND if v.strip().lower() in ("none", NO_COMMAND) else v.strip().lstrip("/")
                 for v in values)


def _by_block(ctx: click.Context, path: Path, *, since: When | None, until: When | None,
              since_text: str | None, until_text: str | None, filters: Filters,
              tz: tzinfo | None, as_json: bool, as_csv: bool) -> None:
    """`usage --by block`: 5-hour blocks as ccusage makes them (claudewrap.views.blocks).

    Text labels a block by its local start; JSON and CSV by its UTC start
    (``2026-11-30T10:00:00Z``)."""
    from claudewrap.usage.report import Report
    from claudewrap.views.blocks import read_blocks

    try:
        result = read_blocks(path, filters=filters, table=default_table(),
                             since=iso_utc(since.at) if since else None,
                             until=iso_utc(until.at) if until else None)
    except (JournalError, PriceFileError) as exc:
        raise click.ClickException(str(exc)) from None
    whole = result.report
    warn_skipped(whole.skipped_lines, whole.first_bad_lines)

    def utc(when: datetime) -> str:
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")

    def local(when: datetime) -> str:
        return (when.astimezone(tz) if tz is not None else when.astimezone()).strftime(
            "%Y-%m-%d %H:%M")

    label = local if not (as_json or as_csv) else utc
    dims = ("block",)
    report = Report(total=result.total,
                    groups={dims: {(label(b.start),): b.row for b in result.blocks}},
                    periods={}, skipped_lines=whole.skipped_lines,
                    first_bad_lines=whole.first_bad_lines, records_read=whole.records_read,
                    table=whole.table)
    if as_json:
        click.echo(json.dumps({"total": report.total.to_json(),
                               "by_block": {k[0]: r.to_json() for k, r in report.groups[dims].items()},
                               "skipped_lines": report.skipped_lines}, indent=2))
    elif as_csv:
        click.echo(render_csv(report, dims), nl=False)
    else:
        color = use_color(ctx.color)
        selection = describe_selection(since_text, until_text, filters.projects,
                                       filters.models, filters.tags, filters.agents,
                                       filters.commands)
        click.echo(render_grouped(report, dims, width=width(), color=color, journal=path,
                                  selection=selection), nl=False, color=color)


def _show_analysis(ctx: click.Context, report: Report, dims: tuple[str, ...], *, path: Path,
                   as_json: bool, selection: str) -> None:
    """`usage --analysis` (claudewrap.views.analysis) as JSON or text."""
    from claudewrap.views.analysis import analyze
    from claudewrap.views.usage_view import render_analysis

    result = analyze(report, dims, default_table())
    if as_json:
        click.echo(json.dumps({**result.to_json(), "skipped_lines": report.skipped_lines},
                              indent=2))
        return
    color = use_color(ctx.color)
    click.echo(render_analysis(report, result, width=width(), color=color, journal=path,
                               selection=selection), nl=False, color=color)


@click.command("usage")
@click.option("--by", "by", multiple=True, metavar="DIM",
              help=f"Group by {', '.join(DIMENSIONS)}, tag:KEY or block (5-hour blocks from"
                   " the first request after a gap, as ccusage makes them); several --by"
                   " group by all of them together.")
@click.option("--since", metavar="WHEN",
              help="From WHEN: today, yesterday, 7d (today and the 6 days before), 24h,"
                   " a date (2026-07-01) or an ISO time.")
@click.option("--until", metavar="WHEN", help="Up to WHEN (a date includes that day).")
@click.option("--project", "projects", multiple=True, help="Only this project (repeatable).")
@click.option("--model", "models", multiple=True,
              help="Only models whose id contains this text, e.g. opus (repeatable).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE",
              help="Only records with this tag (repeatable: all must match).")
@click.option("--agent", "agents", multiple=True, metavar="NAME",
              help="Only requests of this agent: main (the main thread), a subagent's name"
                   " (general-purpose, ...) or a side request (compact, ...) (repeatable).")
@click.option("--command", "commands", multiple=True, metavar="NAME",
              help="Only requests of turns started by this slash command or skill (review"
                   " for /review), or none for typed prompts (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (keys are stable).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV rows (by day unless --by).")
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path),
              help="The journal to read [default: $CLAUDEWRAP_JOURNAL or the user data dir].")
@click.option("--no-cache", is_flag=True, help="Read the whole journal; do not use the rollup.")
@click.option("--tz", "tz_name", metavar="ZONE", help="Time zone for days (default: local).")
@click.option("--analysis", "--cost-analysis", "analysis", is_flag=True,
              help="Per group (--by, default model): cost share, cost per 1k output tokens,"
                   " cache read ratio and saving, the cost on each current model; the most"
                   " expensive sessions.")
@click.pass_context
def usage(ctx: click.Context, by: tuple[str, ...], since: str | None, until: str | None,
          projects: tuple[str, ...], models: tuple[str, ...], tags: tuple[str, ...],
          agents: tuple[str, ...], commands: tuple[str, ...],
          as_json: bool, as_csv: bool, journal: Path | None, no_cache: bool,
          tz_name: str | None, analysis: bool) -> None:
    """Tokens and cost of your `claude` use: today, this week, this month, all time.

    Costs Claude Code printed are exact; others are estimated from list prices
    (shown as ~$) and can be overridden in prices.toml in the claudewrap config
    folder ($CLAUDEWRAP_PRICES).
    """
    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    blocks = any(d.strip().lower() == "block" for d in by)
    if blocks and len(by) > 1:
        raise click.BadParameter("block cannot be combined with other dimensions:"
                                 " use --by block alone", param_hint="--by")
    try:
        dims = tuple(parse_dimension(d) for d in by if not blocks)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--by") from None
    tz = _zone(tz_name)
    now = datetime.now(timezone.utc)
    try:
        since_w = parse_when(since, tz=tz, now=now) if since else None
        until_w = parse_when(until, tz=tz, now=now, end=True) if until else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since/--until") from None
    filters = Filters(projects=projects, models=models, tags=_parse_tags(tags),
                      agents=agents, commands=_command_names(commands))
    if analysis and (blocks or as_csv):
        raise click.UsageError("--analysis works with --json and with --by dimensions"
                               " other than block: leave out --csv and --by block")
    if blocks:
        try:
            path = resolve_path(journal)
        except JournalError as exc:
            raise click.ClickException(str(exc)) from None
        _by_block(ctx, path, since=since_w, until=until_w, since_text=since,
                  until_text=until, filters=filters, tz=tz, as_json=as_json, as_csv=as_csv)
        return
    windowed = (since_w is not None and not since_w.midnight) or (
        until_w is not None and not until_w.midnight)
    if not windowed:
        def day_of(w: When) -> str:
            return (w.at.astimezone(tz) if tz is not None else w.at.astimezone()).strftime(
                "%Y-%m-%d")
        filters.since_day = day_of(since_w) if since_w else None
        filters.until_day = day_of(until_w) if until_w else None
    if as_json and not analysis:
        extra: list[tuple[str, ...]] = [(d,) for d in dims if (d,) not in STANDARD_GROUPS]
        if len(dims) > 1:
            extra.append(dims)
        try:
            path = resolve_path(journal)
            data, skipped, first_bad = summary_json(
                path, tz=tz, use_cache=not no_cache,
                since=iso_utc(since_w.at) if windowed and since_w else None,
                until=iso_utc(until_w.at) if windowed and until_w else None,
                extra_dims=extra, filters=filters, table=default_table())
        except (JournalError, PriceFileError) as exc:
            raise click.ClickException(str(exc)) from None
        warn_skipped(skipped, first_bad)
        click.echo(data)  # bytes: as they are (ASCII, as json.dumps writes it)
        return
    groupings: list[tuple[str, ...]] = list(VIEW_GROUPS)
    if analysis:
        from claudewrap.views.analysis import groupings as analysis_groupings

        dims = dims or ("model",)
        groupings = analysis_groupings(dims)
    elif dims:
        groupings.append(dims)
    elif as_csv:
        dims = ("day",)
        groupings.append(dims)

    try:
        path = resolve_path(journal)
        report = summary(path, tz=tz, use_cache=not no_cache,
                         since=iso_utc(since_w.at) if windowed and since_w else None,
                         until=iso_utc(until_w.at) if windowed and until_w else None,
                         dims=groupings, filters=filters, table=default_table(),
                         count_sessions=bool(as_json or as_csv or dims))
    except (JournalError, PriceFileError) as exc:
        raise click.ClickException(str(exc)) from None
    warn_skipped(report.skipped_lines, report.first_bad_lines)
    if analysis:
        _show_analysis(ctx, report, dims, path=path, as_json=as_json,
                       selection=describe_selection(since, until, projects, models,
                                                    filters.tags, agents, commands))
    elif as_csv:
        click.echo(render_csv(report, dims), nl=False)
    else:
        color = use_color(ctx.color)
        selection = describe_selection(since, until, projects, models, filters.tags,
                                       agents, commands)
        text = (render_grouped(report, dims, width=width(), color=color, journal=path,
                               selection=selection) if dims
                else render_default(report, width=width(), color=color, journal=path,
                                    selection=selection))
        click.echo(text, nl=False, color=color)
