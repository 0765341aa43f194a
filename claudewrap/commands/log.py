"""`claudewrap log`: record usage typed by hand."""

from __future__ import annotations

import click

from claudewrap.commands import JOURNAL_HELP, append_or_fail
from claudewrap.parse.patterns import parse_cost, parse_count
from claudewrap.store.records import MAX_COST_USD, MAX_TOKENS, UsageEvent, UsageRecord
from claudewrap.wrap import context


def _tags(tags: tuple[str, ...]) -> dict[str, str]:
    try:
        return context.tag_items(tags)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tag") from None


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
    path = append_or_fail(journal_path, [record])
    click.echo(f"logged {record.input_tokens:,} input, {record.output_tokens:,} output"
               + (f", ${cost_usd:.4f}" if cost_usd is not None else "") + f" to {path}")
