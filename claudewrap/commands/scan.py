"""`claudewrap scan`: record usage found in tmux or GNU screen scrollback, once."""

from __future__ import annotations

import os
from pathlib import Path

import click

from claudewrap.parse.patterns import PatternError, load_user_patterns
from claudewrap.sources.scan import (
    ScanError,
    Target,
    scan_targets,
    screen_capture,
    screen_targets,
    tmux_capture,
    tmux_targets,
)
from claudewrap.store.journal import JournalError, append_records, read_records, resolve_path


@click.command("scan")
@click.option("--tmux", "use_tmux", is_flag=True, help="Scan tmux panes (all, or --pane).")
@click.option("--pane", metavar="%N", help="Only this tmux pane (an id such as %3).")
@click.option("--socket", "socket_name", metavar="NAME",
              help="The tmux server of `tmux -L NAME` (default: $TMUX's, else the default one).")
@click.option("--screen", "screen_session", is_flag=False, flag_value="", default=None,
              metavar="[SESSION]",
              help="Scan GNU screen windows: of SESSION (pid.name, name or pid), else of $STY, "
                   "else of every session.")
@click.option("--window", metavar="N", help="Only this screen window.")
@click.option("--dry-run", is_flag=True, help="Show what would be recorded; write nothing.")
@click.option("--config", "config_path", metavar="PATH", help="TOML file with user patterns.")
@click.option("--journal", "journal_path", metavar="PATH",
              help="Journal file (default: $CLAUDEWRAP_JOURNAL, else the user data folder).")
def scan(use_tmux: bool, pane: str | None, socket_name: str | None,
         screen_session: str | None, window: str | None, dry_run: bool,
         config_path: str | None, journal_path: str | None) -> None:
    """Record the usage shown in tmux/screen scrollback by `claude` runs that were
    not started through claudewrap.

    Reads each pane's (window's) whole scrollback, finds what `claudewrap run`
    would have found, and records it with source "scan". Run it as often as
    you like: what is already recorded (by an earlier scan, or by a wrapped
    run in the same pane) is not recorded again. Without --tmux or --screen,
    scans the multiplexer it runs in.

    \b
    claudewrap scan --tmux              # every pane of the tmux server
    claudewrap scan --tmux --pane %3
    claudewrap scan --screen            # $STY's windows, else every session's
    claudewrap scan --screen work --window 1
    """
    if pane or socket_name:
        use_tmux = True
    if window is not None and screen_session is None:
        screen_session = ""
    use_screen = screen_session is not None
    if not use_tmux and not use_screen:
        if os.environ.get("TMUX"):
            use_tmux = True
        elif os.environ.get("STY"):
            use_screen = True
            screen_session = ""
        else:
            raise click.UsageError("not inside tmux or screen: choose --tmux or --screen")
    try:
        patterns = load_user_patterns(Path(config_path) if config_path else None)
    except PatternError as exc:
        raise click.ClickException(str(exc)) from None

    try:
        path = resolve_path(journal_path)
        journal = list(read_records(path))
        targets: list[Target] = []
        if use_tmux:
            targets += tmux_targets(socket_name, pane)
        if use_screen:
            targets += screen_targets(screen_session or None, window)

        def capture(target: Target) -> bytes:
            return tmux_capture(target) if target.kind == "tmux" else screen_capture(target)

        results = scan_targets(targets, capture, journal, patterns)
    except (ScanError, JournalError) as exc:
        raise click.ClickException(str(exc)) from None

    new = [r for result in results for r in result.records]
    for result in results:
        if result.records or result.known:
            click.echo(f"{result.target.label}: {len(result.records)} new, "
                       f"{result.known} already recorded")
    verb = "would record" if dry_run else "recorded"
    click.echo(f"{verb} {len(new)} usage record{'' if len(new) == 1 else 's'} "
               f"from {len(targets)} {'pane' if use_tmux and not use_screen else 'window'}"
               f"{'' if len(targets) == 1 else 's'}" + ("" if dry_run or not new else f" to {path}"))
    if new and not dry_run:
        try:
            append_records(path, new)
        except JournalError as exc:
            raise click.ClickException(str(exc)) from None
