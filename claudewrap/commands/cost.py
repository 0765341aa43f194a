"""`claudewrap cost`: what one wrapped session cost, in one line (or JSON)."""

from __future__ import annotations

import click


@click.command("cost")
@click.option("--session", "which", metavar="ID|last|current",
              help="Which session [default: the one running here, else the last one].")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (keys are stable).")
@click.option("--journal", "journal_path", metavar="PATH",
              help="Journal file (default: $CLAUDEWRAP_JOURNAL, else the user data folder).")
def cost(which: str | None, as_json: bool, journal_path: str | None) -> None:
    """The cost of the current or last wrapped claude session.

    \b
    claudewrap cost                    # $0.42 12.3k in, 4.5k out, ... (session 1a2b...)
    claudewrap cost --json | jq .cost_usd
    """
    from claudewrap import api
    from claudewrap.store.journal import JournalError
    from claudewrap.views.cost_view import cost_text

    try:
        click.echo(cost_text(which, as_json, journal_path))
    except (api.SessionNotFound, JournalError) as exc:
        raise click.ClickException(str(exc)) from None


__all__ = ["cost"]
