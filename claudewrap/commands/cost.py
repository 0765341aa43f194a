"""`claudewrap cost`: what one wrapped session cost, in one line (or JSON)."""

from __future__ import annotations

import json

import click

from claudewrap.views.display import row_money, short_count


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

    try:
        if which is None:
            try:
                found = api.session_usage("current", journal_path)
            except api.SessionNotFound:
                found = api.session_usage("last", journal_path)
        else:
            found = api.session_usage(which, journal_path)
    except api.SessionNotFound as exc:
        raise click.ClickException(str(exc)) from None
    except JournalError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(found.to_json(), sort_keys=False))
        return
    u = found.usage
    money = row_money(u, places=4)
    models = ", ".join(sorted(found.by_model)) or "no usage yet"
    state = "running, " if found.running else ""
    project = f", project {found.project}" if found.project else ""
    click.echo(f"{money} {short_count(u.input_tokens)} in, {short_count(u.output_tokens)} out, "
               f"{short_count(u.cache_read_tokens)} cache read, {short_count(u.cache_write_tokens)} "
               f"cache write ({models}; {state}session {found.session}{project})")


__all__ = ["cost"]
