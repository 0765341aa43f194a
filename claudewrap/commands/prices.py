"""`claudewrap prices`: the price of every model, and where each rate came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from claudewrap.views.display import count, money

_COLUMNS = (("input", "input"), ("output", "output"), ("cache_read", "cache read"),
            ("cache_write_5m", "cache write"), ("cache_write_1h", "1h write"))
_SHIPPED = "the prices built into claudewrap (claudewrap/data/prices.toml)"


def _rate(value: float | None) -> str:
    if value is None:
        return "-"
    return money(value, places=2 if round(value, 2) == value else 4)


def _plural(n: int, word: str) -> str:
    return f"{count(n)} {word}{'' if n == 1 else 's'}"


def _origin(entry: dict[str, Any]) -> str:
    """``shipped``; ``yours``; ``yours (input), shipped``; ``learned from ...``."""
    fit = entry["learned"]
    if fit is not None:
        return (f"learned from {_plural(fit['records'], 'record')} of the journal "
                f"({_plural(fit['samples'], 'sample')}, within {fit['error']:.1%})")
    origins = entry["from"]
    mine = [label for key, label in _COLUMNS if origins.get(key) == "user"]
    if not mine:
        return "shipped"
    if len(mine) == len(origins):
        return "yours"
    return f"yours ({', '.join(mine)}), shipped"


def _family_names(entries: list[dict[str, Any]]) -> str | None:
    """``opus = claude-opus-5-5, sonnet = ...``: the bare names and what they cost as."""
    bare = sorted((a, str(e["model"])) for e in entries for a in e["aliases"]
                  if not a.startswith("claude"))
    return ", ".join(f"{a} = {m}" for a, m in bare) or None


def _table(rows: list[list[str]]) -> list[str]:
    """The model column left-aligned, rates right-aligned, the origin left."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    last = len(widths) - 1
    return ["  ".join(c.ljust(w) if i in (0, last) else c.rjust(w)
                      for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]


@click.command("prices")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (keys are stable).")
@click.option("--journal", "journal_path", metavar="PATH",
              help="Journal to learn from (default: $CLAUDEWRAP_JOURNAL, else the user "
                   "data folder).")
def prices(as_json: bool, journal_path: str | None) -> None:
    """List every model's price in USD per million tokens and where each rate came
    from: shipped with claudewrap, your prices file, or learned from the journal.

    A cost Claude Code printed is used as printed; these rates price the rest
    (transcripts, `--no-otel`, your own patterns), shown as estimated (`~$`).
    Your file is ~/.config/claudewrap/prices.toml (or $CLAUDEWRAP_PRICES), in the
    shipped file's format; it overrides rates one by one and adds models.

    A bare family name (opus, sonnet, haiku) is priced as the model Claude
    Code's newest version runs for it; a line under the table says which
    (`Priced as: haiku = claude-haiku-5-5, ...`); an `aliases = ["opus"]` line
    in your file moves it.

    A model with no price of its own is priced with rates learned from the
    journal's exact records of it (Claude Code's printed cost with its token
    counts), when they are enough to determine the rates and agree with them.

    \b
    claudewrap prices
    claudewrap prices --json | jq '.models[] | select(.learned)'
    """
    from claudewrap.store.journal import JournalError, resolve_path
    from claudewrap.usage.price_fit import journal_prices
    from claudewrap.usage.pricing import PriceFileError, user_prices_path

    user_file = user_prices_path()
    try:
        journal = resolve_path(journal_path)
        table, unpriced = journal_prices(journal)
    except (JournalError, PriceFileError) as exc:
        raise click.ClickException(str(exc)) from None
    entries = table.entries()
    if as_json:
        click.echo(json.dumps({
            "user_file": str(user_file), "user_file_exists": user_file.is_file(),
            "journal": str(journal), "models": entries,
            "unpriced_records": {m or "(no model)": n for m, n in sorted(
                unpriced.items(), key=lambda kv: kv[0] or "")},
        }, indent=2))
        return
    rows = [["model", *[label for _, label in _COLUMNS], "from"]]
    rows += [[e["model"], *[_rate(e["rates"][key]) for key, _ in _COLUMNS], _origin(e)]
             for e in entries]
    click.echo("\n".join(_table(rows)))
    where = "" if user_file.is_file() else " (none yet)"
    click.echo(f"\nUSD per million tokens. shipped: {_SHIPPED}; yours: {user_file}{where}.")
    names = _family_names(entries)
    if names:
        click.echo(f"Priced as: {names} (the models Claude Code runs for --model opus, ...).")
    _say_unpriced(unpriced, user_file)


def _say_unpriced(unpriced: dict[str | None, int], user_file: Path) -> None:
    """What the journal holds that no rate prices, and what to do about it."""
    no_model = unpriced.pop(None, 0)
    if unpriced:
        names = ", ".join(f"{m} ({_plural(n, 'record')})" for m, n in sorted(unpriced.items()))
        click.echo(f"No price for {names}: add [models.\"ID\"] with input = ..., "
                   f"output = ... to {user_file}.")
    if no_model:
        click.echo(f"{_plural(no_model, 'journal record')} without a model: no price "
                   "applies to them. To price such records, give their model "
                   "(`claudewrap log --model ID`, a `model` group in your pattern).")


__all__ = ["prices"]
