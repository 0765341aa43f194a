"""`claudewrap shell-init bash|zsh`: print the shell integration snippet.

The text is the packaged file ``shell/claudewrap.<shell>`` itself, so
``eval "$(claudewrap shell-init bash)"`` and sourcing the file never drift apart.
"""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh")


def snippet(shell: str) -> str:
    """The integration snippet for ``shell`` (``bash`` or ``zsh``)."""
    if shell not in SHELLS:
        raise ValueError(f"no snippet for {shell!r}; choose one of {', '.join(SHELLS)}")
    from importlib.resources import files

    return (files("claudewrap.shell") / f"claudewrap.{shell}").read_text(encoding="utf-8")


@click.command("shell-init")
@click.argument("shell", type=click.Choice(SHELLS))
def shell_init(shell: str) -> None:
    """Print the integration for SHELL: `claude`, `claude_usage`, `claude_metrics`.

    \b
    bash (~/.bashrc):  eval "$(claudewrap shell-init bash)"
    zsh  (~/.zshrc):   eval "$(claudewrap shell-init zsh)"

    Load it after anything else that defines `claude`. `command claude` and
    `\\claude` still run the real binary; CLAUDEWRAP_DISABLE=1 turns it off.
    """
    click.echo(snippet(shell), nl=False)
