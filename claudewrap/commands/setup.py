"""`claudewrap setup`: the shell line, the status line, the tmux segment and a
config file, once; `setup --undo` takes them out again (claudewrap/setup.py)."""

from __future__ import annotations

import os
import sys

import click


@click.command("setup")
@click.option("--shell", type=click.Choice(["bash", "zsh"]),
              help="The shell whose rc file gets the line (default: $SHELL's).")
@click.option("--dry-run", is_flag=True, help="Show every change; change nothing.")
@click.option("-y", "--yes", is_flag=True, help="Make every change without asking.")
@click.option("--no-statusline", is_flag=True,
              help="Leave Claude Code's settings.json alone.")
@click.option("--no-tmux", is_flag=True, help="Leave the tmux config alone.")
@click.option("--undo", is_flag=True,
              help="Take out exactly what setup added, and put back what it replaced.")
def setup(shell: str | None, dry_run: bool, yes: bool, no_statusline: bool, no_tmux: bool,
          undo: bool) -> None:
    """Set claudewrap up once: add the shell line to ~/.bashrc or ~/.zshrc, offer
    Claude Code's status line (a status line of your own keeps showing, below ours)
    and the tmux segment, write a config file of commented examples, then run
    `claudewrap doctor`.

    Each change is shown as a diff and asked for (default: yes) when stdin is a
    terminal; without one, --yes makes them. A file is copied beside itself
    (NAME.claudewrap-backup-STAMP) before it is changed. What setup adds sits
    between `# >>> claudewrap setup >>>` and `# <<< claudewrap setup <<<`, and
    is listed in setup.json in claudewrap's data folder, so --undo takes out
    exactly that and nothing else. Running setup again adds nothing twice.
    """
    from claudewrap.install import setup as lib
    from claudewrap.install.integration import own_command

    def ask(question: str, default: bool) -> bool:
        return click.confirm(question, default=default)

    try:
        if undo:
            code = lib.undo(os.environ, click.echo, dry_run=dry_run)
        else:
            code = lib.setup(os.environ, own_command(), click.echo,
                             ask if sys.stdin.isatty() else None, shell=shell, yes=yes,
                             dry_run=dry_run, statusline=not no_statusline,
                             tmux=not no_tmux)
    except lib.SetupError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or 'setup'}: {exc.strerror or exc}; "
                                   "nothing after that was changed") from None
    sys.exit(code)
