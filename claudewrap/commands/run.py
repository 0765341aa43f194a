"""`claudewrap run`: the launch path. Keep its imports light."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from claudewrap import launcher

if TYPE_CHECKING:
    from claudewrap.capture import Capture
    from claudewrap.patterns import UserPattern


def _new_session_id() -> str:
    return os.urandom(8).hex()


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
@click.argument("claude_args", nargs=-1, type=click.UNPROCESSED)
def run(claude_path: str | None, journal_path: str | None, config_path: str | None,
        project: str | None, tags: tuple[str, ...], no_capture: bool,
        claude_args: tuple[str, ...]) -> None:
    """Run the real `claude` with CLAUDE_ARGS, recording the usage it prints.

    Put `--` before claude's own arguments: `claudewrap run -- -p "hi"`.
    Every byte and keystroke passes through unchanged; the exit status is
    claude's (128+N when a signal N killed it; 127 when claude is not found).
    """
    try:
        launcher.check_depth()
        real = launcher.find_claude(claude_path)
    except launcher.LaunchError as exc:
        click.echo(str(exc), err=True)
        sys.exit(exc.status)

    capture = None
    if not no_capture:
        capture = _make_capture(journal_path, config_path, project, tags)

    try:
        result = launcher.run([real, *claude_args], capture)
    except launcher.LaunchError as exc:
        click.echo(str(exc), err=True)
        sys.exit(exc.status)

    warnings = []
    if capture is not None:
        try:
            warning = capture.close()
        except Exception as exc:  # noqa: BLE001 - never turn claude's status into ours
            warning = f"claudewrap: usage capture failed at exit: {exc}"
        if warning:
            warnings.append(warning)
    if result.tap_error:
        warnings.append(f"claudewrap: usage capture stopped after an internal error "
                        f"({result.tap_error}); claude ran on unaffected")
    for line in warnings:
        click.echo(line, err=True)
    sys.exit(result.exit_status)


def _make_capture(journal_path: str | None, config_path: str | None, project: str | None,
                  tags: tuple[str, ...]) -> Capture:
    from claudewrap import context
    from claudewrap.capture import Capture

    bad = [t for t in tags if "=" not in t or not t.partition("=")[0].strip()]
    if bad:
        raise click.BadParameter(f"{bad[0]!r}: use KEY=VALUE", param_hint="--tag")
    return Capture(session=_new_session_id(), journal=journal_path,
                   user_patterns=_user_patterns(config_path),
                   attribution=context.collect(project=project,
                                               tags=context.parse_tags(",".join(tags))))


def _user_patterns(config_path: str | None) -> list[UserPattern]:
    """The user's patterns, checked now: a bad one is an error before claude starts."""
    from pathlib import Path

    from claudewrap.patterns import PatternError, default_config_path, load_user_patterns

    path = Path(config_path) if config_path else default_config_path()
    if config_path is None and not path.exists():
        return []
    try:
        return load_user_patterns(path)
    except PatternError as exc:
        raise click.UsageError(str(exc)) from exc
