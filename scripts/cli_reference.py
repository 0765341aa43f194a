#!/usr/bin/env python3
"""Write docs/commands.md: every claudewrap command's --help, from the click tree.

    python3 scripts/cli_reference.py            # rewrite docs/commands.md
    python3 scripts/cli_reference.py --check    # exit 1 if it is out of date

Run it after adding or changing a command, an option or a help text;
tests/test_docs.py fails while docs/commands.md differs from what this prints.
The help is rendered as in an 80-column terminal whatever the terminal, so the file is the
same on every machine.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "commands.md"
WIDTH = 78  # what click uses in an 80-column terminal (2 less)

HEADER = """\
# Command reference

Every command's `--help`, as `claudewrap` prints it. This page is generated:
after changing a command, run `python3 scripts/cli_reference.py`
(`tests/test_docs.py` fails while it is out of date). What the commands are for,
with examples, is on the topic pages listed in [the docs](README.md).
"""


def context(cmd: click.Command, name: str, parent: click.Context | None) -> click.Context:
    """The context `claudewrap ... NAME --help` would run ``cmd`` in (its own
    context settings, e.g. -h), WIDTH columns wide, parsing no arguments."""
    return cmd.make_context(name, [], parent=parent, resilient_parsing=True,
                            terminal_width=WIDTH, max_content_width=WIDTH)


def walk(cmd: click.Command, ctx: click.Context) -> Iterator[tuple[click.Command, click.Context]]:
    """``cmd`` and every subcommand under it, depth first, in name order."""
    yield cmd, ctx
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, context(sub, name, ctx))


def commands() -> Iterator[tuple[str, click.Command, click.Context]]:
    """(full name, command, context) of every command, `claudewrap` first."""
    sys.path.insert(0, str(ROOT))  # this checkout's claudewrap, installed or not
    from claudewrap.cli import cli

    for cmd, ctx in walk(cli, context(cli, "claudewrap", None)):
        yield ctx.command_path, cmd, ctx


def render() -> str:
    from claudewrap.cli import ALIASES

    parts = [HEADER]
    for path, cmd, ctx in commands():
        parts.append(f"\n## `{path}`\n")
        aliases = [a for a, target in ALIASES.items() if f"claudewrap {target}" == path]
        if aliases:
            parts.append("\nAlso: " + ", ".join(f"`claudewrap {a}`" for a in aliases) + ".\n")
        parts.append("\n```text\n" + cmd.get_help(ctx).rstrip() + "\n```\n")
    return "".join(parts)


def main(argv: list[str]) -> int:
    text = render()
    if argv[1:] == ["--check"]:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run python3 scripts/cli_reference.py",
                  file=sys.stderr)
            return 1
        return 0
    if argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
