"""The `claudewrap` command line.

The group loads each command's module only when that command runs, so
`claudewrap run` (the launch path) never imports what reports or metrics need.
Command modules live in ``claudewrap/commands/``; each is a thin layer of click
options over one library function.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from claudewrap import __version__

# command name -> "module:attribute" (relative to claudewrap.commands)
COMMANDS: dict[str, str] = {
    "run": "run:run",
    "log": "log:log",
    "parse": "parse:parse",
    "journal": "journal:journal",
    "usage": "usage:usage",
    "export": "export:export",
    "import": "import_:import_cmd",
    "shell-init": "shell_init:shell_init",
    "scan": "scan:scan",
    "status": "status:status",
    "statusline": "statusline:statusline",
    "metrics": "metrics:metrics",
    "serve": "serve:serve",
    "monitor": "monitor:monitor",
    "cost": "cost:cost",
    "doctor": "doctor:doctor",
    "prices": "prices:prices",
    "advise": "advise:advise",
    "setup": "setup:setup",
}

ALIASES: dict[str, str] = {"stats": "usage"}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(super().list_commands(ctx)))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd_name = ALIASES.get(cmd_name, cmd_name)
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attr = target.split(":")
        module = importlib.import_module(f"claudewrap.commands.{module_name}")
        cmd = getattr(module, attr)
        assert isinstance(cmd, click.Command)
        return cmd


CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="claudewrap")
def cli() -> None:
    """See what your `claude` CLI use costs.

    `claudewrap run -- ARGS` runs the real `claude` in a pseudo-terminal,
    passing every byte and keystroke through unchanged, and records the usage
    it prints (tokens, cache, cost, model) to a JSONL journal.
    """


def main(args: list[str] | None = None) -> None:
    """The click command line; :func:`claudewrap.main.main` comes first."""
    cli(args, prog_name="claudewrap")
