"""`claudewrap run`: the launch path. Keep its imports light."""

from __future__ import annotations

import sys

import click


@click.command(context_settings={"ignore_unknown_options": True,
                                 "allow_interspersed_args": False,
                                 "help_option_names": ["-h", "--help"]})
@click.option("--claude", "claude_path", metavar="PATH",
              help="The real claude to run (default: $CLAUDEWRAP_CLAUDE, else the first "
                   "`claude` on PATH that is not claudewrap).")
@click.option("--journal", "journal_path", metavar="PATH",
              help="Journal file to append usage to (default: $CLAUDEWRAP_JOURNAL, else "
                   "the user data folder; see `claudewrap journal path`).")
@click.option("--config", "config_path", metavar="PATH",
              help="TOML file with extra usage patterns (default: the user config folder).")
@click.option("--project", metavar="NAME",
              help="Project to attribute usage to (default: $CLAUDEWRAP_PROJECT, else the "
                   "git top-level folder's name, else the current folder's name).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE",
              help="Free-form tag stored on this run's records (repeatable); also "
                   "$CLAUDEWRAP_TAGS=\"k=v,k2=v2\".")
@click.option("--no-capture", is_flag=True,
              help="Only relay: parse nothing, write nothing.")
@click.option("--no-otel", is_flag=True,
              help="Do not receive Claude Code's OpenTelemetry (exact per-request usage); "
                   "it is also off when you configured OpenTelemetry yourself.")
@click.argument("claude_args", nargs=-1, type=click.UNPROCESSED)
def run(claude_path: str | None, journal_path: str | None, config_path: str | None,
        project: str | None, tags: tuple[str, ...], no_capture: bool, no_otel: bool,
        claude_args: tuple[str, ...]) -> None:
    """Run the real `claude` with CLAUDE_ARGS, recording the usage it prints.

    Put `--` before claude's own arguments: `claudewrap run -- -p "hi"`.
    Every byte and keystroke passes through unchanged; the exit status is
    claude's (128+N when a signal N killed it; 127 when claude is not found).
    """
    from claudewrap import api
    from claudewrap.main import exit_now
    from claudewrap.store.config import PatternError

    try:
        outcome = api.run_claude(claude_args, project=project, tags=tags, journal=journal_path,
                                 claude=claude_path, config=config_path,
                                 capture=not no_capture, otel=not no_otel)
    except api.LaunchError as exc:
        click.echo(str(exc), err=True)
        sys.exit(exc.status)
    except api.TagError as exc:
        raise click.BadParameter(str(exc), param_hint="--tag") from exc
    except PatternError as exc:  # one line: the shell's `claude` shows it, then runs claude
        click.echo(f"claudewrap: {exc}", err=True)
        sys.exit(2)
    exit_now(outcome.exit_status)
