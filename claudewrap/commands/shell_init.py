"""`claudewrap shell-init bash|zsh|tmux`: print the shell integration (claudewrap.install.integration)."""

from __future__ import annotations

import click

from claudewrap.install.integration import SHELLS, snippet, tmux_lines


@click.command("shell-init")
@click.argument("shell", type=click.Choice([*SHELLS, "tmux"]))
def shell_init(shell: str) -> None:
    """Print the integration for SHELL: `claude`, `claude_usage`, `claude_metrics`;
    or, for tmux, the status-bar lines.

    \b
    bash (~/.bashrc):  eval "$(claudewrap shell-init bash)"
    zsh  (~/.zshrc):   eval "$(claudewrap shell-init zsh)"
    tmux:              claudewrap shell-init tmux >> ~/.tmux.conf

    Load it after anything else that defines `claude`. `command claude` and
    `\\claude` still run the real binary; CLAUDEWRAP_DISABLE=1 turns it off.
    The tmux lines name this claudewrap by its absolute path, so the segment works
    whatever PATH the tmux server has.
    """
    try:
        text = tmux_lines() if shell == "tmux" else snippet(shell)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(text, nl=False)
