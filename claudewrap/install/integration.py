"""The shell and tmux integration: the snippets `claude`, `claude_usage` and
`claude_metrics` come from, this claudewrap as an absolute command, and the tmux
status-bar lines. The text of a snippet is the packaged file
``shell/claudewrap.<shell>`` itself, so ``eval "$(claudewrap shell-init bash)"``
and sourcing the file never drift apart."""

from __future__ import annotations

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
    """Lines for ~/.tmux.conf: today's cost and token rate in the status bar.
    Raises ValueError for a path tmux's quoting cannot hold."""
    command = own_command()
    if "'" in command:
        raise ValueError(f"cannot write a tmux line for {command}: its path has a"
                         " single quote; use a path without one")
    return ("# claudewrap: today's cost and token rate. An absolute path: the tmux server\n"
            "# may not have claudewrap on its PATH (a segment with no command shows nothing).\n"
            f"set -g status-right '#({command} status --format tmux) %H:%M'\n"
            "set -g status-interval 15\n")
