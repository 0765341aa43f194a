"""`claudewrap doctor`: check the set-up, one line per check, each with its fix."""

from __future__ import annotations

import json
import sys

import click


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="The checks as a JSON list.")
@click.option("--journal", "journal_path", metavar="PATH",
              help="Journal file (default: $CLAUDEWRAP_JOURNAL, else the user data folder).")
def doctor(as_json: bool, journal_path: str | None) -> None:
    """Check the set-up: the real claude, the journal, config and prices, the shell
    integration, tmux/screen, OpenTelemetry, the exporter.

    Exit status 1 when a check failed (marked with a cross and its fix).
    """
    from claudewrap.install.doctor import FAIL, render, run_checks

    checks = run_checks(journal=journal_path)
    if as_json:
        click.echo(json.dumps([c.to_json() for c in checks], indent=2))
    else:
        click.echo(render(checks))
    sys.exit(1 if any(c.status == FAIL for c in checks) else 0)


__all__ = ["doctor"]
