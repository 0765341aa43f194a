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


def own_command() -> str:
    """This claudewrap as a shell command with an absolute path: the console script
    that is running, else ``python -m claudewrap`` with this interpreter."""
    import os
    import shlex
    import sys

    # Not shutil.which: PATH may hold another claudewrap, or a version manager's
    # shim that needs the manager on PATH too.
    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.basename(script) == "claudewrap" and os.access(script, os.X_OK):
        return shlex.quote(script)
    return f"{shlex.quote(sys.executable)} -m claudewrap"


def tmux_lines() -> str:
    """Lines for ~/.tmux.conf: today's cost and token rate in the status bar."""
    command = own_command()
    if "'" in command:
        raise click.ClickException(f"cannot write a tmux line for {command}: its path has a"
                                   " single quote; use a path without one")
    return ("# claudewrap: today's cost and token rate. An absolute path: the tmux server\n"
            "# may not have claudewrap on its PATH (a segment with no command shows nothing).\n"
            f"set -g status-right '#({command} status --format tmux) %H:%M'\n"
            "set -g status-interval 15\n")


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
    click.echo(tmux_lines() if shell == "tmux" else snippet(shell), nl=False)
