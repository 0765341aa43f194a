"""`claudewrap run`: the launch path. Keep its imports light."""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

import click

from claudewrap import launcher

if TYPE_CHECKING:
    from claudewrap.capture import Capture
    from claudewrap.config import UserPattern
    from claudewrap.otel import Receiver


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
    try:
        launcher.check_depth()
        real = launcher.find_claude(claude_path)
    except launcher.LaunchError as exc:
        click.echo(str(exc), err=True)
        sys.exit(exc.status)

    capture = None
    if not no_capture:
        capture = _make_capture(journal_path, config_path, project, tags)
    exact = _ExactSources(capture, journal_path, use_otel=not no_otel)

    try:
        result = launcher.run([real, *claude_args], capture, env=exact.child_env())
    except launcher.LaunchError as exc:
        exact.abort()
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
    warnings.extend(exact.finish())
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


class _ExactSources:
    """Claude Code's exact usage beside the screen capture: its OpenTelemetry,
    received live (claudewrap.otel), and at the end the session's transcript
    (claudewrap.transcripts) for whatever OpenTelemetry did not deliver."""

    def __init__(self, capture: Capture | None, journal_path: str | None,
                 use_otel: bool) -> None:
        self.capture = capture
        self.journal_path = journal_path
        self.receiver: Receiver | None = None
        self.started = time.time()
        if capture is None or not use_otel:
            return
        from claudewrap import otel

        if otel.user_configured(os.environ):
            return  # the user's own OpenTelemetry settings pass through untouched
        try:
            self.receiver = otel.Receiver(session=capture.session, journal=journal_path,
                                          attribution=capture.attribution).start()
        except OSError:
            self.receiver = None  # no loopback port: run on with the screen capture only

    def child_env(self) -> dict[str, str] | None:
        if self.receiver is None:
            return None
        return {**os.environ, **self.receiver.child_env()}

    def abort(self) -> None:
        if self.receiver is not None:
            self.receiver.close(grace=0)

    def finish(self) -> list[str]:
        """After the child exited: last OpenTelemetry export, then the transcript."""
        warnings: list[str] = []
        if self.capture is None:
            return warnings
        sessions: set[str] = set()
        known: set[str] = set()
        try:
            if self.receiver is not None:
                warning = self.receiver.close()
                if warning:
                    warnings.append(warning)
                sessions |= self.receiver.claude_sessions
                known |= self.receiver.request_ids
            sessions |= {r.claude_session for r in self.capture.records if r.claude_session}
            from claudewrap import transcripts

            warning = transcripts.reconcile(
                session=self.capture.session, attribution=self.capture.attribution,
                journal=self.journal_path, claude_sessions=sessions, known_request_ids=known,
                started=self.started)
            if warning:
                warnings.append(warning)
        except Exception as exc:  # noqa: BLE001 - never turn claude's status into ours
            warnings.append(f"claudewrap: exact usage (OpenTelemetry/transcript) failed at "
                            f"exit: {type(exc).__name__}: {exc}")
        return warnings


def _user_patterns(config_path: str | None) -> list[UserPattern]:
    """The user's patterns, checked now: a bad one is an error before claude starts."""
    from pathlib import Path

    from claudewrap.config import PatternError, default_config_path, load_user_patterns

    path = Path(config_path) if config_path else default_config_path()
    if config_path is None and not path.exists():
        return []
    try:
        return load_user_patterns(path)
    except PatternError as exc:
        raise click.UsageError(str(exc)) from exc
